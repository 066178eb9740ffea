"""Run requests for the folders that changed since their last successful import.

Both sensors end their tick here, so a folder gets at most one run per tick whichever sensor saw
the change, and runs are asked for from the stored folder state rather than from what one tick
saw: a change seen by a tick that failed before requesting is requested by the next one.

Run keys are `<partition>@<generation>`, plus `#<attempt>` after failures. The generation
moves with every change of the folder, so a new change always gets a new key; a failed run is
retried by a later tick under the next attempt's key (a used key never blocks a retry), up to
MAX_ATTEMPTS per generation, after which the folder waits for its next change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import psycopg

from media_import.core.partition_keys import folder_to_partition_key
from media_import.db.watch import DirtyFolder, dirty_folders
from media_import.defs.importing.jobs import IMPORT_JOB_NAME
from media_import.defs.importing.partitions import folder_partitions

MAX_ATTEMPTS = 3
GENERATION_TAG = "media_import/generation"
TRIGGER_TAG = "media_import/trigger"
PARTITION_TAG = "dagster/partition"
# Sensor-triggered imports go ahead of backfills (priority 0) in the run queue.
SENSOR_RUN_PRIORITY = "10"

_FAILED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
# Queued runs count: the run queue may hold a folder's run for a while.
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass
class FolderRuns:
    """A tick's run requests, the partitions to register first, and why others waited."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)  # folder -> reason

    def dynamic_partitions_requests(self) -> list[dg.AddDynamicPartitionsRequest]:
        if not self.new_partitions:
            return []
        return [folder_partitions.build_add_request(self.new_partitions)]

    def summary(self) -> str:
        asked = ", ".join(r.partition_key or "" for r in self.run_requests) or "none"
        waits = "; ".join(f"{f}: {why}" for f, why in sorted(self.waiting.items()))
        return f"runs requested: {asked}" + (f"; waiting: {waits}" if waits else "")


def plan_folder_runs(
    instance: dg.DagsterInstance, conn: psycopg.Connection, bucket: str, trigger: str
) -> FolderRuns:
    plan = FolderRuns()
    dirty = dirty_folders(conn, bucket)
    known = set(instance.get_dynamic_partitions(folder_partitions.name or "folders"))
    for folder in dirty:
        key = folder_to_partition_key(folder.folder)
        request, reason = _request_for(instance, folder, key, trigger)
        if request is None:
            plan.waiting[folder.folder] = reason
            continue
        if key not in known:
            plan.new_partitions.append(key)
        plan.run_requests.append(request)
    return plan


def _request_for(
    instance: dg.DagsterInstance, folder: DirtyFolder, key: str, trigger: str
) -> tuple[dg.RunRequest | None, str]:
    in_flight = instance.get_runs_count(
        dg.RunsFilter(job_name=IMPORT_JOB_NAME, tags={PARTITION_TAG: key}, statuses=_IN_FLIGHT)
    )
    if in_flight:
        return None, "a run of this folder is queued or running"
    this_generation = {PARTITION_TAG: key, GENERATION_TAG: str(folder.generation)}
    if instance.get_runs_count(
        dg.RunsFilter(tags=this_generation, statuses=[dg.DagsterRunStatus.SUCCESS])
    ):
        # Succeeded without marking the folder imported: a dry run. Wait for the next change.
        return None, f"generation {folder.generation} already ran (dry run?)"
    failures = instance.get_runs_count(dg.RunsFilter(tags=this_generation, statuses=_FAILED))
    if failures >= MAX_ATTEMPTS:
        return None, f"gave up after {failures} failed runs; waiting for the next change"
    run_key = f"{key}@{folder.generation}" + (f"#{failures}" if failures else "")
    tags = {GENERATION_TAG: str(folder.generation), TRIGGER_TAG: trigger}
    tags["dagster/priority"] = SENSOR_RUN_PRIORITY
    return dg.RunRequest(run_key=run_key, partition_key=key, tags=tags), ""
