"""`media-import`: the command a cron-launched deployment (or an engineer) calls.

    media-import run [--folder F ...] [--dry-run] [--safe-run]
    media-import backfill [--folder F ...]
    media-import demo
    media-import demo-upload FOLDER | demo-remove KEY   (while the demo runs)

`run` materialises the import of the given folders (all discovered folders when none) through
Dagster, against the instance in DAGSTER_HOME, so every run shows in the UI's run history.
`backfill` queues the same imports as a Dagster backfill, for the daemon to run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from media_import.settings import ServiceUnavailable, SettingsError


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
    backfill = commands.add_parser(
        "backfill", help="queue imports of folders for the daemon (one run per folder)"
    )
    backfill.add_argument(
        "--folder",
        action="append",
        default=[],
        metavar="F",
        help="top-level folder to backfill (repeatable); default: every folder of the bucket",
    )
    backfill.add_argument(
        "--workspace", default="workspace.yaml", help="the Dagster workspace file to load"
    )
    commands.add_parser(
        "demo", help="start a local PostgreSQL, S3 server and the Dagster UI with a sample archive"
    )
    upload = commands.add_parser(
        "demo-upload", help="upload a new complete sample asset into the running demo's bucket"
    )
    upload.add_argument("folder", help="top-level folder, e.g. BRD (its name is the code type)")
    upload.add_argument("--code-type", help="code type when it differs from the folder's name")
    remove = commands.add_parser("demo-remove", help="remove an object from the demo's bucket")
    remove.add_argument("key", help="the object's key, e.g. BRD/VO-BRD-01234.mp4")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from media_import.demo.run import run_demo

            return run_demo()
        if args.command == "backfill":
            return _backfill(args.folder, args.workspace)
        if args.command in ("demo-upload", "demo-remove"):
            return _operate(args)
        return _run(args.folder, args.dry_run, args.safe_run)
    except SettingsError as exc:
        print(f"media-import: {exc}", file=sys.stderr)
        return 2
    except ServiceUnavailable as exc:
        print(f"media-import: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _backfill(folders: list[str], workspace: str) -> int:
    from pathlib import Path

    from dotenv import load_dotenv

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    from media_import.cli.backfill import submit_backfill

    return submit_backfill(folders, Path(workspace).resolve())


def _operate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from media_import.demo.operator import remove_object, upload_asset

    if args.command == "demo-upload":
        for key in upload_asset(Path.cwd(), args.folder.strip("/"), args.code_type):
            print(f"uploaded {key}")
    else:
        remove_object(Path.cwd(), args.key)
        print(f"removed {args.key}")
    return 0


def _run(folders: list[str], dry_run: bool | None, safe_run: bool | None) -> int:
    from dotenv import load_dotenv

    # The original importer read a .env file; an existing one keeps working unchanged.
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    from media_import.cli.importing import import_folders

    summaries = import_folders(folders, dry_run=dry_run, safe_run=safe_run)
    return 0 if summaries and all(s.success for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
