"""One benchmark measurement, run in its own process so that its peak memory is its own.

    python -m benchmarks.scenario import          the import job over every folder, one run
    python -m benchmarks.scenario sensor KEY      reconciliation ticks until KEY's folder is
                                                  requested, then that run
    python -m benchmarks.scenario reconcile       one whole reconciliation pass (nothing changed)
    python -m benchmarks.scenario baseline        the original importer's approach

The bucket and catalog come from the usual environment variables (S3_ENDPOINT_URL,
BUCKET_NAME, AWS_*, DATABASE_URL). Prints one JSON object on its last line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg

PHASES = ("s3_objects", "validated_inventory", "new_media_files", "catalog_records")


class TreePeak:
    """The largest resident set of this process and its children together (the planning
    worker processes of media_import.planning are children of the run process), sampled
    from /proc every quarter second in a thread."""

    def __init__(self, interval: float = 0.25) -> None:
        self.peak_kb = 0
        self._interval = interval
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(os.getpid()))
            time.sleep(self._interval)


def _tree_rss_kb(pid: int) -> int:
    """The process's resident set with its children's. A child is listed under the thread
    that started it (the planning workers are started from worker threads)."""
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children.update(int(c) for c in (task / "children").read_text().split())
        except OSError:  # the thread ended
            continue
    return _rss_kb(pid) + sum(_rss_kb(c) for c in children)


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1])


_TREE = TreePeak() if Path("/proc/self/status").exists() else None


def peak_rss_mb() -> float:
    """The run's peak memory: its process's, or with its worker processes' if larger."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    return max(own, _TREE.peak_kb if _TREE else 0) / 1024


def _defs() -> dg.Definitions:
    from media_import.definitions import build_definitions

    return build_definitions()


def _folders() -> list[str]:
    from media_import.core.storage import Bucket
    from media_import.preflight import preflight

    config, _ = preflight(os.environ)
    return Bucket(config).top_level_folders()


def step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's start and end (Unix time), from the run's event log (STEP_START to
    STEP_SUCCESS)."""
    started: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value == "STEP_SUCCESS":
            windows[event.step_key] = (started[event.step_key], entry.timestamp)
    return windows


def run_import() -> dict[str, Any]:
    """Every folder of the bucket in one run (what a single-run backfill does)."""
    from media_import.core.partition_keys import folder_to_partition_key
    from media_import.defs.importing.partitions import register_folders

    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    folders = _folders()
    register_folders(instance, folders)
    keys = [folder_to_partition_key(f) for f in folders]
    job = _defs().resolve_job_def("import_folder")
    ready = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
        raise_on_error=False,
    )
    finished = time.perf_counter()
    windows = step_windows(instance, result.run_id)
    steps = {step: end - start for step, (start, end) in windows.items()}
    return {
        "success": result.success,
        "folders": len(folders),
        "load_seconds": ready - started,
        "run_seconds": finished - ready,
        "phases": {p: steps.get(p) for p in PHASES},
        # Unix times, for the CPU by phase that the parent samples (benchmarks.cpu).
        "phase_windows": {p: windows[p] for p in PHASES if p in windows},
        "dagster_overhead_seconds": (finished - ready) - sum(steps.values()),
        "metadata": _metadata(result),
        "peak_rss_mb": peak_rss_mb(),
    }


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The run's figures: each folder's partition carries its own counts (summed here), and
    `folders_planned_in_processes` is about the run, the same on every partition."""
    wanted = {
        "s3_objects": ("found", "considered"),
        "new_media_files": ("new", "ready_assets", "deferred", "rejected_files", "sidecars_read"),
        "catalog_records": ("inserted_assets", "inserted_files", "soft_deleted_files"),
    }
    out: dict[str, Any] = {}
    for node, names in wanted.items():
        mats = result.asset_materializations_for_node(node)
        for name in names:
            values = [m.metadata[name].value for m in mats if name in m.metadata]
            if values:
                out[name] = sum(values)  # type: ignore[arg-type]
    planning = result.asset_materializations_for_node("new_media_files")
    if planning and "folders_planned_in_processes" in planning[0].metadata:
        out["folders_planned_in_processes"] = (
            planning[0].metadata["folders_planned_in_processes"].value
        )
    return out


def _reconciliation_ticker(instance: dg.DagsterInstance) -> Any:
    """A function ticking the reconciliation sensor from a cursor, as the daemon does
    (dynamic partitions it asks for are added before its runs would be launched)."""
    from media_import.defs.automation.resources import event_queue_from_env
    from media_import.defs.automation.sensors import build_reconciliation_sensor
    from media_import.defs.importing.resources import resources_from_env

    resources = {**resources_from_env(), "s3_events": event_queue_from_env()}
    sensor = build_reconciliation_sensor()

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources
        ) as context:
            result = sensor(context)
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        return result

    return tick


def run_sensor_path(key: str) -> dict[str, Any]:
    """From an uploaded object to its catalog row: reconciliation ticks (continuing the pass
    until the key's folder is requested), then the requested run."""
    instance = dg.DagsterInstance.ephemeral()
    tick = _reconciliation_ticker(instance)
    folder = key.split("/", 1)[0]
    started = time.perf_counter()
    cursor, ticks, requests = None, 0, []
    while not requests and ticks < 50:
        result = tick(cursor)
        ticks += 1
        cursor = result.cursor
        requests = [r for r in result.run_requests or [] if r.partition_key == folder]
    detected = time.perf_counter()
    job = _defs().resolve_job_def("import_folder")
    runs = [
        job.execute_in_process(
            instance=instance,
            partition_key=r.partition_key,
            tags=dict(r.tags),
            raise_on_error=False,
        )
        for r in requests
    ]
    finished = time.perf_counter()
    return {
        "success": bool(runs) and all(r.success for r in runs),
        "ticks": ticks,
        "detect_seconds": detected - started,
        "run_seconds": finished - detected,
        "total_seconds": finished - started,
        "metadata": _metadata(runs[0]) if runs else {},
        "peak_rss_mb": peak_rss_mb(),
    }


def run_reconciliation_pass() -> dict[str, Any]:
    """The cost of noticing that nothing changed: one whole reconciliation pass over the
    bucket (as many ticks as its key and time budgets need) and the run requests it makes."""
    tick = _reconciliation_ticker(dg.DagsterInstance.ephemeral())
    started = time.perf_counter()
    cursor: str | None = None
    ticks, requested, listed = 0, 0, 0
    while True:
        result = tick(cursor)
        ticks += 1
        requested += len(result.run_requests or [])
        state = json.loads(result.cursor)
        if state["start_after"] is None:  # the pass reached the end of the bucket
            break
        listed = state["listed_in_pass"]
        cursor = result.cursor
    return {
        "success": True,
        "ticks": ticks,
        "runs_requested": requested,
        "listed_before_last_tick": listed,
        "total_seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_baseline_scenario() -> dict[str, Any]:
    from benchmarks.baseline import run_baseline

    started = time.perf_counter()
    result = run_baseline(
        os.environ.get("S3_ENDPOINT_URL"),
        os.environ["BUCKET_NAME"],
        os.environ["DATABASE_URL"],
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_REGION", "us-east-1"),
    )
    return {
        "total_seconds": time.perf_counter() - started,
        **result.to_dict(),
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "import"
    if what == "import":
        out = run_import()
    elif what == "sensor":
        out = run_sensor_path(argv[1])
    elif what == "reconcile":
        out = run_reconciliation_pass()
    elif what == "baseline":
        out = run_baseline_scenario()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
