"""Run the import job for folders, in-process, recording the runs in the configured instance."""

from __future__ import annotations

import os
import time
from typing import Any

import dagster as dg

from media_import.cli.console import console_log_config, plain_stderr_unless_terminal
from media_import.cli.summary import FolderSummary, render, render_json, summarize
from media_import.core.partition_keys import folder_to_partition_key
from media_import.core.storage import Bucket
from media_import.preflight import check_instance, preflight
from media_import.settings import SettingsError, excluded_folders


def run_config(
    dry_run: bool | None, safe_run: bool | None, verbose: bool = False
) -> dict[str, Any]:
    """Per-run overrides of the import settings (unset flags keep the environment's values),
    and the console logger's level."""
    overrides = {k: v for k, v in (("dry_run", dry_run), ("safe_run", safe_run)) if v is not None}
    resources = {"resources": {"import_settings": {"config": overrides}}} if overrides else {}
    return {**resources, **console_log_config(verbose)}


def instance_from_env() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, its settings checked first (one message, no traceback)."""
    # Dagster wants an absolute path; a .env written for a checkout may hold ./dagster_home.
    os.environ["DAGSTER_HOME"] = str(check_instance(os.environ))
    try:
        return dg.DagsterInstance.get()
    except dg.DagsterError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettingsError(
            f"the Dagster instance in DAGSTER_HOME={os.environ['DAGSTER_HOME']} cannot be "
            f"loaded: {first}"
        ) from None


def choose_folders(folders: list[str], echo: bool = True) -> list[str]:
    """The folders asked for (all the bucket's top-level folders when none), less the
    excluded ones; checks the settings first."""
    config, _ = preflight(os.environ)
    excluded = {f.strip("/") for f in excluded_folders()}
    chosen = [f.strip("/") for f in folders] or Bucket(config).top_level_folders()
    skipped = [f for f in chosen if f in excluded]
    chosen = [f for f in chosen if f not in excluded]
    if echo and skipped:
        print(f"skipping excluded folders: {', '.join(skipped)}")
    if not chosen:
        raise SettingsError(f"bucket {config.bucket!r} holds no folder to import")
    return chosen


def import_folders(
    folders: list[str],
    dry_run: bool | None = None,
    safe_run: bool | None = None,
    echo: bool = True,
    verbose: bool = False,
    as_json: bool = False,
) -> list[FolderSummary]:
    """Import the folders one run each; prints a progress line per folder and the summary
    (or, `as_json`, only the summary as JSON)."""
    chosen = choose_folders(folders, echo and not as_json)
    instance = instance_from_env()

    from media_import.definitions import build_definitions
    from media_import.defs.importing.jobs import IMPORT_JOB_NAME
    from media_import.defs.importing.partitions import register_folders

    job = build_definitions().resolve_job_def(IMPORT_JOB_NAME)
    register_folders(instance, chosen)
    progress = echo and not as_json
    summaries = []
    for number, folder in enumerate(chosen, 1):
        if progress:
            # Dagster's logs (verbose) start on a line of their own.
            end = "\n" if verbose else ""
            print(f"[{number}/{len(chosen)}] {folder}: importing...", end=end, flush=True)
        started = time.monotonic()
        with plain_stderr_unless_terminal():
            result = job.execute_in_process(
                instance=instance,
                partition_key=folder_to_partition_key(folder),
                run_config=run_config(dry_run, safe_run, verbose),
                raise_on_error=False,
                tags={"media_import/launched_by": "cli"},
            )
        summaries.append(summarize(folder, result))
        if progress:
            took = time.monotonic() - started
            print(f" {summaries[-1].status} ({took:.1f}s)", flush=True)
    if echo:
        print(render_json(summaries) if as_json else render(summaries))
    return summaries


def count_bucket(echo: bool = True, verbose: bool = False) -> bool:
    """Materialise `bucket_inventory` (the bucket counted by folder and extension)."""
    from media_import.definitions import build_definitions

    job = build_definitions().resolve_job_def("bucket_inventory_job")
    with plain_stderr_unless_terminal():
        result = job.execute_in_process(
            instance=instance_from_env(),
            run_config=console_log_config(verbose),
            raise_on_error=False,
        )
    if echo:
        print(f"bucket_inventory: {'materialised' if result.success else 'FAILED'}")
    return result.success
