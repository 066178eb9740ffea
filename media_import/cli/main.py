"""`media-import`: the command a cron-launched deployment (or an engineer) calls.

    media-import run [--folder F ...] [--dry-run] [--safe-run]
    media-import demo

`run` materialises the import of the given folders (all discovered folders when none) through
Dagster, against the instance in DAGSTER_HOME, so every run shows in the UI's run history.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from media_import.settings import SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="media-import", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="import folders of the bucket into the catalog")
    run.add_argument(
        "--folder",
        action="append",
        default=[],
        metavar="F",
        help="top-level folder to import (repeatable); default: every folder of the bucket",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="run every phase, report what would be inserted, write nothing",
    )
    run.add_argument(
        "--safe-run",
        action="store_true",
        default=None,
        help="abort with nothing written on any rejection or incomplete asset",
    )
    commands.add_parser(
        "demo", help="start a local PostgreSQL, S3 server and the Dagster UI with a sample archive"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from media_import.demo.run import run_demo

            return run_demo()
        return _run(args.folder, args.dry_run, args.safe_run)
    except SettingsError as exc:
        print(f"media-import: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(folders: list[str], dry_run: bool | None, safe_run: bool | None) -> int:
    from dotenv import load_dotenv

    # The original importer read a .env file; an existing one keeps working unchanged.
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    from media_import.cli.importing import import_folders

    summaries = import_folders(folders, dry_run=dry_run, safe_run=safe_run)
    return 0 if summaries and all(s.success for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
