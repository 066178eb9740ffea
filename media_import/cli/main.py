"""`media-import`: the command a cron-launched deployment (or an engineer) calls.

    media-import run [--folder F ...] [--dry-run] [--safe-run] [--json] [--verbose]
    media-import backfill [--folder F ...] [--verbose]
    media-import demo [--verbose]
    media-import demo-upload FOLDER | demo-remove KEY-OR-CODE   (while the demo runs)

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
    run.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    run.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
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
    backfill.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    demo = commands.add_parser(
        "demo", help="start a local PostgreSQL, S3 server and the Dagster UI with a sample archive"
    )
    demo.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    upload = commands.add_parser(
        "demo-upload", help="upload a new complete sample asset into the running demo's bucket"
    )
    upload.add_argument("folder", help="top-level folder, e.g. BRD (its name is the code type)")
    upload.add_argument("--code-type", help="code type when it differs from the folder's name")
    upload.add_argument(
        "--force",
        action="store_true",
        help="upload even where the import would reject or ignore the files",
    )
    remove = commands.add_parser(
        "demo-remove", help="remove an object, or all objects of a code, from the demo's bucket"
    )
    remove.add_argument(
        "target", help="a key (BRD/VO-BRD-01234.json) or an inventory code (VO-BRD-01234)"
    )
    return parser


VERBOSE_HELP = "also print Dagster's own logs (always kept with the runs, in the UI)"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from media_import.demo.run import run_demo

            return run_demo(verbose=args.verbose)
        if args.command == "backfill":
            return _backfill(args.folder, args.workspace, args.verbose)
        if args.command in ("demo-upload", "demo-remove"):
            return _operate(args)
        return _run(args)
    except SettingsError as exc:
        print(f"media-import: {exc}", file=sys.stderr)
        return 2
    except ServiceUnavailable as exc:
        print(f"media-import: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _backfill(folders: list[str], workspace: str, verbose: bool) -> int:
    from pathlib import Path

    from dotenv import load_dotenv

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    from media_import.cli.backfill import submit_backfill

    return submit_backfill(folders, Path(workspace).resolve(), verbose)


def _operate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from media_import.demo.operator import remove_objects, upload_asset

    if args.command == "demo-upload":
        keys = upload_asset(Path.cwd(), args.folder.strip("/"), args.code_type, args.force)
        print(f"uploaded {_files_text(keys)}")
    else:
        print(f"removed {_files_text(remove_objects(Path.cwd(), args.target))}")
    return 0


def _files_text(keys: list[str]) -> str:
    """`BRD/VO-BRD-01234.mp4, .json, .md5, .pdf`: the first key, then the others' suffixes."""
    first, *others = keys
    stem = first.rsplit(".", 1)[0]
    rest = [k[len(stem) :] if k.startswith(stem) else k for k in others]
    return ", ".join([first, *rest])


def _run(args: argparse.Namespace) -> int:
    from dotenv import load_dotenv

    # The original importer read a .env file; an existing one keeps working unchanged.
    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    from media_import.cli.importing import import_folders

    summaries = import_folders(
        args.folder,
        dry_run=args.dry_run,
        safe_run=args.safe_run,
        verbose=args.verbose,
        as_json=args.json,
    )
    return 0 if summaries and all(s.success for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
