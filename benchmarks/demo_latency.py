"""Upload to catalog in the demo's setting: how long an operator waits for an upload to show.

    .venv/bin/python -m benchmarks.demo_latency [--uploads 20]

Starts the demo's stack (embedded PostgreSQL, moto's S3 and SQS server, `dg dev` with its
daemon, sensors every 5 s) with its state in a temporary folder, waits for the seeded
folders' imports, then uploads complete assets into BRD/ one at a time, each at a random
moment of the sensors' cycle, and times each from the start of its upload to its `asset` row.
Each wait is split by the run that imported it (Dagster's run record): *detect* until the
sensor's run request (the run's creation), *queue + launch* until the run started in its own
process, *run* until the row was there. Writes docs/demo_latency.json and the section of
docs/benchmarks.md drawn from it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "demo_latency.json"
FOLDER = "BRD"
LOAD: list[float] = []  # the machine's 1-minute load average before and after the uploads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.demo_latency", description=__doc__)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--seed", type=int, default=23, help="of the moments uploads start at")
    args = parser.parse_args(argv)
    samples = measure(args.uploads, random.Random(args.seed))
    result = summarise(samples)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    from benchmarks.run import rerender

    rerender(ROOT / "docs" / "benchmarks.md")
    print(json.dumps(result["summary"], indent=2))
    return 0


def measure(uploads: int, rng: random.Random) -> list[dict[str, float]]:
    from media_import.cli.importing import instance_from_env
    from media_import.demo.operator import upload_asset
    from media_import.demo.run import demo_stack

    with (
        tempfile.TemporaryDirectory(prefix="media-import-latency-") as state,
        demo_stack(ROOT, echo=False, state_root=Path(state)) as stack,
    ):
        _wait(lambda: _imported(stack.database_url) >= stack.folders, 300, "the seeded imports")
        instance = instance_from_env()
        interval = float(_sensor_interval())
        LOAD.append(os.getloadavg()[0])
        samples = []
        for number in range(1, uploads + 1):
            time.sleep(rng.uniform(0, interval))  # a random moment of the sensors' cycle
            started = time.time()
            code = upload_asset(Path(state), FOLDER)[0].split("/")[1][:12]
            _wait(lambda c=code: _catalogued(stack.database_url, c), 120, code)  # type: ignore[misc]
            done = time.time()
            run = _run_of(instance, started)
            samples.append(_sample(started, done, run))
            print(f"{number}/{uploads} {code}: {done - started:.2f} s", flush=True)
        LOAD.append(os.getloadavg()[0])
        return samples


def _sensor_interval() -> str:
    return os.environ["MEDIA_IMPORT_SENSOR_INTERVAL"]


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f}s")
        time.sleep(0.05)


def _imported(database_url: str) -> set[str]:
    from media_import.demo.run import _imported_folders

    return _imported_folders(database_url)


def _catalogued(database_url: str, code: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT 1 FROM asset WHERE inventory_code = %s AND deleted_at IS NULL", (code,)
        ).fetchone()
    return row is not None


def _run_of(instance: dg.DagsterInstance, since: float) -> dg.RunRecord:
    """The first import run of the folder created after the upload started (it catalogued it:
    the runs of one folder never overlap)."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": FOLDER}, job_name="import_folder"), limit=10
    )
    after = [r for r in records if r.create_timestamp.timestamp() >= since]
    return min(after, key=lambda r: r.create_timestamp)


def _sample(started: float, done: float, run: dg.RunRecord) -> dict[str, float]:
    created = run.create_timestamp.timestamp()
    launched = run.start_time or created
    return {
        "total": done - started,
        "detect": created - started,
        "queue_launch": launched - created,
        "run": done - launched,
    }


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    summary = {
        part: {
            "median": round(statistics.median(s[part] for s in samples), 2),
            "p95": round(_percentile([s[part] for s in samples], 95), 2),
            "max": round(max(s[part] for s in samples), 2),
        }
        for part in ("total", "detect", "queue_launch", "run")
    }
    return {
        "measured": _measured(),
        "uploads": len(samples),
        "sensor_interval_seconds": float(_sensor_interval()),
        "load_average": [round(x, 2) for x in LOAD],
        "summary": summary,
        "samples": [{k: round(v, 3) for k, v in s.items()} for s in samples],
    }


def _measured() -> str:
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC} at commit {commit}"


if __name__ == "__main__":
    sys.exit(main())
