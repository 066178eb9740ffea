"""The event sensor, against real S3 notifications delivered by the S3 server into SQS."""

from __future__ import annotations

import json

import dagster as dg

from media_import_tests.automation.conftest import requested
from media_import_tests.pipeline.conftest import make_asset


def _record(bucket: str, key: str, name: str, time: str, sequencer: str | None) -> dict:
    obj: dict = {"key": key, "size": 3, "eTag": "0cc175b9c0f1b6a831c399e269772661"}
    if sequencer:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": time,
        "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }


def _send(sqs, queue_url: str, *records: dict) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": list(records)}))


def _queue_depth(sqs, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def test_uploads_request_one_run_per_folder_and_are_imported(event_watch, put_many, sqs, queue_url):
    vhs = [make_asset("VHS", f"VO-VHS-{n:05d}") for n in (1, 2)]
    brd = make_asset("BRD", "VO-BRD-00001")
    put_many([item for a in [*vhs, brd] for item in a.items()])

    tick = event_watch.events()

    assert requested(tick) == {"VHS": "VHS@1", "BRD": "BRD@1"}  # 12 events, 2 runs
    assert tick.run_requests[0].tags["media_import/trigger"] == "s3_event"
    assert set(event_watch.instance.get_dynamic_partitions("folders")) == {"VHS", "BRD"}
    assert _queue_depth(sqs, queue_url) == 0  # stored, then deleted
    assert event_watch.query("SELECT count(*), count(applied_at) FROM ingest.s3_event") == [
        (12, 12)
    ]
    assert all(r.success for r in event_watch.run_all(tick))
    assert event_watch.query("SELECT count(*) FROM asset_file WHERE deleted_at IS NULL") == [(12,)]
    # The reconciliation sensor shares what the events recorded: no second run.
    assert requested(event_watch.reconcile()) == {}


def test_a_removal_event_soft_deletes(event_watch, put_many, s3, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    event_watch.run_all(event_watch.events())

    s3.delete_object(Bucket=bucket, Key=asset.key(".json"))
    tick = event_watch.events()

    assert requested(tick) == {"VHS": "VHS@2"}
    event_watch.run_all(tick)
    assert event_watch.query("SELECT deleted_reason FROM asset") == [("metadata removed",)]


def test_duplicate_messages_are_stored_once_and_change_nothing_twice(
    event_watch, sqs, queue_url, bucket
):
    record = _record(bucket, "VHS/VO-VHS-00001.pdf", "ObjectCreated:Put",
                     "2026-11-22T10:00:00.000Z", "0055AED6DCD90281E5")  # fmt: skip
    for _ in range(3):
        _send(sqs, queue_url, record)

    tick = event_watch.events()

    assert requested(tick) == {"VHS": "VHS@1"}
    assert event_watch.query("SELECT count(*), min(outcome) FROM ingest.s3_event") == [
        (1, "changed")
    ]
    # Delivered again later (at least once means any time): stale-or-same, no new generation.
    _send(sqs, queue_url, record)
    event_watch.events()
    assert event_watch.query("SELECT generation FROM ingest.folder_state") == [(1,)]


def test_a_removal_delivered_before_its_creation_wins(event_watch, sqs, queue_url, bucket):
    key = "VHS/VO-VHS-00001.pdf"
    created = _record(bucket, key, "ObjectCreated:Put", "2026-11-22T10:00:00.000Z", "0A")
    removed = _record(bucket, key, "ObjectRemoved:Delete", "2026-11-22T10:00:00.000Z", "00B")
    _send(sqs, queue_url, removed)
    event_watch.events()
    _send(sqs, queue_url, created)

    event_watch.events()

    # "0A" < "00B" once padded: the creation is the older event.
    assert event_watch.query("SELECT kind, outcome FROM ingest.s3_event ORDER BY id") == [
        ("removed", "changed"),
        ("created", "stale"),
    ]
    assert event_watch.query("SELECT present, sequencer FROM ingest.bucket_object") == [
        (False, "0" * 29 + "00b")
    ]


def test_both_in_one_batch_are_ordered_by_sequencer(event_watch, sqs, queue_url, bucket):
    key = "VHS/VO-VHS-00001.pdf"
    _send(
        sqs,
        queue_url,
        _record(bucket, key, "ObjectRemoved:Delete", "2026-11-22T10:00:01.000Z", "0000C"),
        _record(bucket, key, "ObjectCreated:Put", "2026-11-22T10:00:02.000Z", "0000B"),
    )
    event_watch.events()
    assert event_watch.query("SELECT present FROM ingest.bucket_object") == [(False,)]


def test_encoded_and_unicode_keys_are_decoded(event_watch, put_many, s3, bucket):
    keys = ["VHS/VO-VHS-00001 caf\u00e9.pdf", "VHS/VO-VHS-00002+plus.pdf"]
    put_many([(k, b"%PDF-1.4\n") for k in keys])

    event_watch.events()

    seen = {k for (k,) in event_watch.query("SELECT key FROM ingest.bucket_object")}
    assert seen == set(keys)


def test_a_malformed_message_is_kept_and_the_others_processed(
    event_watch, sqs, queue_url, put_many
):
    sqs.send_message(QueueUrl=queue_url, MessageBody="this is not an S3 event")
    put_many(make_asset("VHS", "VO-VHS-00001").items())

    tick = event_watch.events()

    assert requested(tick) == {"VHS": "VHS@1"}
    kept = event_watch.query("SELECT body, error FROM ingest.s3_event_malformed")
    assert len(kept) == 1
    assert kept[0][0] == "this is not an S3 event"
    assert kept[0][1].startswith("not JSON")
    assert _queue_depth(sqs, queue_url) == 0


def test_events_for_other_keys_and_types_are_ignored(event_watch, sqs, queue_url, bucket):
    _send(
        sqs,
        queue_url,
        _record(bucket, "top-level.mp4", "ObjectCreated:Put", "2026-11-22T10:00:00Z", None),
        _record(bucket, "VHS/notes.txt", "ObjectCreated:Put", "2026-11-22T10:00:00Z", None),
        _record(bucket, "VHS/VO-VHS-00001.pdf", "ObjectTagging:Put", "2026-11-22T10:00:00Z", None),
        _record("another-bucket", "VHS/VO-VHS-00001.pdf", "ObjectCreated:Put",
                "2026-11-22T10:00:00Z", None),
    )  # fmt: skip

    tick = event_watch.events()

    assert requested(tick) == {}
    assert event_watch.query("SELECT key, outcome FROM ingest.s3_event ORDER BY key") == [
        ("VHS/notes.txt", "ignored"),
        ("top-level.mp4", "ignored"),
    ]


def test_without_a_queue_the_sensor_skips_and_says_why(watch):
    result = watch.events()
    assert isinstance(result, dg.SkipReason)
    assert "S3_EVENTS_QUEUE_URL is not set" in (result.skip_message or "")
