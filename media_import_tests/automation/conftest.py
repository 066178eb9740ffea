"""Sensor fixtures: the real sensors ticked with build_sensor_context against the test's bucket,
database and Dagster instance, and the runs they request executed for real in process."""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
import pytest

from media_import.defs.automation.resources import S3EventQueue
from media_import.defs.automation.sensors import build_event_sensor, build_reconciliation_sensor
from media_import.defs.importing.jobs import IMPORT_JOB_NAME
from media_import.defs.importing.resources import CatalogDatabase, ImportSettings, S3BucketResource
from media_import.devstack.events import make_queue, notify_bucket_to_queue, sqs_client


class Watch:
    """Ticks the sensors the way the daemon does, and runs what they request."""

    def __init__(self, instance: dg.DagsterInstance, env: dict[str, str], queue_url: str | None):
        self.instance = instance
        self.env = env
        self.queue_url = queue_url
        self.cursor: str | None = None
        self.resources: dict[str, Any] = {
            "s3": S3BucketResource(
                bucket=env["BUCKET_NAME"],
                endpoint_url=env["S3_ENDPOINT_URL"],
                region_name=env["AWS_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                list_page_size=5,  # many pages from few objects: chunking is visible
            ),
            "catalog": CatalogDatabase(url=env["DATABASE_URL"]),
            "import_settings": ImportSettings(),
            "s3_events": S3EventQueue(
                queue_url=queue_url,
                endpoint_url=env["S3_ENDPOINT_URL"],
                region_name=env["AWS_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            ),
        }
        self._defs: dg.Definitions | None = None

    def reconcile(self, sensor: dg.SensorDefinition | None = None) -> dg.SensorResult:
        """One reconciliation tick, continuing from the previous tick's cursor."""
        sensor = sensor or build_reconciliation_sensor(interval=1)
        result = self._tick(sensor, self.cursor)
        self.cursor = result.cursor
        return result

    def events(self) -> dg.SensorResult | dg.SkipReason:
        return self._tick(build_event_sensor(interval=1), None)

    def _tick(self, sensor: dg.SensorDefinition, cursor: str | None) -> Any:
        with dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources=self.resources
        ) as context:
            result = sensor(context)
        # What the daemon does with the result before launching runs.
        if isinstance(result, dg.SensorResult):
            for request in result.dynamic_partitions_requests or []:
                self.instance.add_dynamic_partitions(
                    request.partitions_def_name, list(request.partition_keys or [])
                )
        return result

    def run(self, request: dg.RunRequest, **settings: Any) -> dg.ExecuteInProcessResult:
        """Execute a requested run for real, with its tags (so its generation is recorded);
        `settings` override ImportSettings fields."""
        if self._defs is None:
            from media_import.definitions import build_definitions

            self._defs = build_definitions()
        return self._defs.resolve_job_def(IMPORT_JOB_NAME).execute_in_process(
            instance=self.instance,
            partition_key=request.partition_key,
            tags=dict(request.tags),
            run_config={"resources": {"import_settings": {"config": settings}}}
            if settings
            else None,
            raise_on_error=False,
        )

    def run_all(self, result: Any) -> list[dg.ExecuteInProcessResult]:
        return [self.run(r) for r in getattr(result, "run_requests", None) or []]

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()


def requested(result: Any) -> dict[str, str]:
    """partition key -> run key of a tick's run requests."""
    return {r.partition_key: r.run_key for r in getattr(result, "run_requests", None) or []}


@pytest.fixture
def watch(s3_env: dict[str, str]) -> Watch:
    return Watch(dg.DagsterInstance.ephemeral(), s3_env, None)


@pytest.fixture
def queue_url(s3_server: Any, bucket: str) -> str:
    """A fresh SQS queue receiving the test bucket's ObjectCreated/ObjectRemoved events."""
    t = s3_server
    url = make_queue(t.endpoint_url, f"events-{bucket}", t.region, t.access_key, t.secret_key)
    notify_bucket_to_queue(t.endpoint_url, bucket, url, t.region, t.access_key, t.secret_key)
    return url


@pytest.fixture
def event_watch(s3_env: dict[str, str], queue_url: str) -> Watch:
    return Watch(dg.DagsterInstance.ephemeral(), s3_env, queue_url)


@pytest.fixture
def sqs(s3_server: Any) -> Any:
    t = s3_server
    return sqs_client(t.endpoint_url, t.region, t.access_key, t.secret_key)
