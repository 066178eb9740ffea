"""The shipped Dagster instance (dagster_home/dagster.yaml): queued runs within limits,
monitoring and retries of crashed runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.run_coordinator import QueuedRunCoordinator

DAGSTER_HOME = Path(__file__).resolve().parents[2] / "dagster_home"


@pytest.fixture
def shipped_instance(tmp_path, monkeypatch, database_url):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_HOME / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", database_url)
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_runs_are_queued_within_limits(shipped_instance):
    assert isinstance(shipped_instance.run_coordinator, QueuedRunCoordinator)
    queue = shipped_instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 4
    limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
    # One run per folder at a time, and backfills leave a slot to the sensors' imports.
    assert limits["dagster/partition"] == {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }
    assert limits["dagster/backfill"]["limit"] < queue.max_concurrent_runs
    # A sensor's run starts within a second of being queued (docs/benchmarks.md: the demo's
    # upload-to-catalog latency).
    assert shipped_instance.run_coordinator.dequeue_interval_seconds == 1


def test_crashed_and_overlong_runs_are_failed_and_retried(shipped_instance):
    assert shipped_instance.run_monitoring_enabled
    assert shipped_instance.run_monitoring_max_runtime_seconds == 3600
    assert shipped_instance.run_retries_enabled
    assert shipped_instance.run_retries_max_retries == 2
    # Step failures are not re-run wholesale: transient errors are retried by the steps.
    assert not shipped_instance.run_retries_retry_on_asset_or_op_failure
