"""The two bucket watchers. Both record what they see in the catalog database and request one
run per changed folder; they can run together (events are fast, the listing is the safety net
for events S3 or MinIO never delivered).
"""

import os

import dagster as dg

from media_import.core.s3_events import MalformedMessage, parse_message
from media_import.db import inbox
from media_import.defs.automation.requests import plan_folder_runs
from media_import.defs.automation.resources import QUEUE_URL_VAR, S3EventQueue
from media_import.defs.importing.jobs import import_job
from media_import.defs.importing.resources import CatalogDatabase, ImportSettings, S3BucketResource
from media_import.watch.reconcile import (
    DEFAULT_CHUNK_KEYS,
    DEFAULT_TICK_KEYS,
    DEFAULT_TICK_SECONDS,
    ScanCursor,
    scan,
)

RECONCILE_SENSOR = "bucket_reconciliation_sensor"
EVENT_SENSOR = "s3_event_sensor"


# Dagster's sensor daemon looks at its sensors every 5 s and ticks one whose last tick started
# at least its minimum interval ago. Its looks land a little before or after each multiple of
# the interval, so a minimum of exactly N s ticked every N or N + 5 s (with N = 5, every 10 s
# half of the time, doubling the demo's upload-to-catalog wait). A minimum this much shorter
# than the interval asked for ticks every N s.
DAEMON_JITTER_SECONDS = 2


def sensor_interval(default: int = 30) -> int:
    """Seconds between ticks (MEDIA_IMPORT_SENSOR_INTERVAL)."""
    return int(os.environ.get("MEDIA_IMPORT_SENSOR_INTERVAL", default))


def minimum_interval(interval: int | None = None) -> int:
    """The sensors' `minimum_interval_seconds` for ticks `interval` seconds apart."""
    return max(1, (interval or sensor_interval()) - DAEMON_JITTER_SECONDS)


def build_reconciliation_sensor(
    *,
    max_keys: int = DEFAULT_TICK_KEYS,
    max_seconds: float = DEFAULT_TICK_SECONDS,
    chunk_keys: int = DEFAULT_CHUNK_KEYS,
    interval: int | None = None,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=RECONCILE_SENSOR,
        job=import_job,
        minimum_interval_seconds=minimum_interval(interval),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lists the bucket in bounded key ranges and diffs each against the objects "
        "seen so far (key, ETag, size): new, overwritten and removed objects mark their folder "
        "changed. Registers new folders as partitions and requests one import per changed "
        "folder. A tick stops after a key or time budget; the JSON cursor says where the "
        "current pass goes on.",
    )
    def bucket_reconciliation_sensor(
        context: dg.SensorEvaluationContext,
        s3: S3BucketResource,
        catalog: CatalogDatabase,
        import_settings: ImportSettings,
    ) -> dg.SensorResult:
        cursor = ScanCursor.from_json(context.cursor)
        with catalog.connect() as conn:
            report, next_cursor = scan(
                s3.open(),
                conn,
                import_settings.rules(),
                cursor,
                max_keys=max_keys,
                max_seconds=max_seconds,
                chunk_keys=chunk_keys,
            )
            runs = plan_folder_runs(context.instance, conn, s3.bucket, trigger="reconcile")
        text = f"pass {cursor.pass_number}: {report.summary()}; {runs.summary()}"
        context.log.info(text)
        return dg.SensorResult(
            run_requests=runs.run_requests,
            dynamic_partitions_requests=runs.dynamic_partitions_requests(),
            cursor=next_cursor.to_json(),
            skip_reason=None if runs.run_requests else text,
        )

    return bucket_reconciliation_sensor


def build_event_sensor(interval: int | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=EVENT_SENSOR,
        job=import_job,
        minimum_interval_seconds=minimum_interval(interval),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Consumes the bucket's S3 event notifications from SQS "
        f"({QUEUE_URL_VAR}). Events are stored in ingest.s3_event before their messages are "
        "deleted; events on one key are ordered by sequencer; one import is requested per "
        "affected folder. Malformed messages are kept in ingest.s3_event_malformed.",
    )
    def s3_event_sensor(
        context: dg.SensorEvaluationContext,
        s3: S3BucketResource,
        catalog: CatalogDatabase,
        import_settings: ImportSettings,
        s3_events: S3EventQueue,
    ) -> dg.SensorResult | dg.SkipReason:
        if not s3_events.enabled:
            return dg.SkipReason(f"{QUEUE_URL_VAR} is not set: S3 events are not consumed")
        queue = s3_events.open()
        messages = queue.receive(max_messages=s3_events.max_messages_per_tick)
        events, malformed, others, ignored = [], [], 0, 0
        for m in messages:
            try:
                parsed = parse_message(m.body)
            except MalformedMessage as exc:
                malformed.append((m.message_id, m.body, str(exc), m.receive_count))
                context.log.error(
                    f"malformed S3 event message {m.message_id}: {exc} "
                    "(kept in ingest.s3_event_malformed; the other messages were processed)"
                )
                continue
            ignored += parsed.ignored
            for event in parsed.events:
                if event.bucket == s3.bucket:
                    events.append((event, m.message_id))
                else:
                    others += 1
        with catalog.connect() as conn:
            stored = inbox.store_events(conn, events)
            inbox.store_malformed(conn, malformed)
            # Only now, with every event stored, may the messages go.
            undeleted = queue.delete(messages)
            applied = inbox.apply_pending(conn, s3.bucket, import_settings.rules())
            runs = plan_folder_runs(context.instance, conn, s3.bucket, trigger="s3_event")
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(applied.fold.by_outcome.items()))
        text = (
            f"received {len(messages)} message(s): {len(events)} event(s) on {s3.bucket} "
            f"({stored} new), {len(malformed)} malformed, {ignored} of other types, {others} for "
            f"other buckets; applied {applied.events} ({outcomes or 'none'}); {runs.summary()}"
        )
        if undeleted:
            text += f"; {len(undeleted)} message(s) could not be deleted and will come back"
        context.log.info(text)
        return dg.SensorResult(
            run_requests=runs.run_requests,
            dynamic_partitions_requests=runs.dynamic_partitions_requests(),
            skip_reason=None if runs.run_requests else text,
        )

    return s3_event_sensor
