"""Run the import job for folders, in-process, recording the runs in the configured instance."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from media_import.cli.summary import FolderSummary, render, summarize
from media_import.core.partition_keys import folder_to_partition_key
from media_import.core.storage import Bucket
from media_import.preflight import preflight
from media_import.settings import SettingsError, excluded_folders


def run_config(dry_run: bool | None, safe_run: bool | None) -> dict[str, Any]:
    """Per-run overrides of the import settings; unset flags keep the environment's values."""
    overrides = {k: v for k, v in (("dry_run", dry_run), ("safe_run", safe_run)) if v is not None}
    return {"resources": {"import_settings": {"config": overrides}}} if overrides else {}


def instance_from_env() -> dg.DagsterInstance:
    if not os.environ.get("DAGSTER_HOME"):
        raise SettingsError(
            "DAGSTER_HOME is not set: point it at the folder holding dagster.yaml "
            "(this repository's dagster_home/ for a local setup)"
        )
    # Dagster wants an absolute path; a .env written for a checkout may hold ./dagster_home.
    os.environ["DAGSTER_HOME"] = os.path.abspath(os.environ["DAGSTER_HOME"])
    return dg.DagsterInstance.get()


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
) -> list[FolderSummary]:
    chosen = choose_folders(folders, echo)
    instance = instance_from_env()

    from media_import.definitions import build_definitions
    from media_import.defs.importing.jobs import IMPORT_JOB_NAME
    from media_import.defs.importing.partitions import register_folders

    job = build_definitions().resolve_job_def(IMPORT_JOB_NAME)
    register_folders(instance, chosen)
    summaries = []
    for folder in chosen:
        result = job.execute_in_process(
            instance=instance,
            partition_key=folder_to_partition_key(folder),
            run_config=run_config(dry_run, safe_run),
            raise_on_error=False,
            tags={"media_import/launched_by": "cli"},
        )
        summaries.append(summarize(folder, result))
    if echo:
        print(render(summaries))
    return summaries


def count_bucket(echo: bool = True) -> bool:
    """Materialise `bucket_inventory` (the bucket counted by folder and extension)."""
    from media_import.definitions import build_definitions

    job = build_definitions().resolve_job_def("bucket_inventory_job")
    result = job.execute_in_process(instance=instance_from_env(), raise_on_error=False)
    if echo:
        print(f"bucket_inventory: {'materialised' if result.success else 'FAILED'}")
    return result.success
