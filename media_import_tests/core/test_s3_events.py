"""S3 event notifications: envelopes, key decoding, ordering, and clear errors for bad messages."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from media_import.core.s3_events import (
    SEQUENCER_WIDTH,
    EventKind,
    MalformedMessage,
    ObjectEvent,
    ParsedMessage,
    event_kind,
    is_newer,
    newest_per_key,
    normalise_sequencer,
    parse_event_time,
    parse_message,
)

# The example record of AWS's "Event message structure" page (S3 -> SQS, one record).
AWS_SAMPLE = """
{
  "Records": [
    {
      "eventVersion": "2.1",
      "eventSource": "aws:s3",
      "awsRegion": "us-west-2",
      "eventTime": "1970-01-01T00:00:00.000Z",
      "eventName": "ObjectCreated:Put",
      "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
      "requestParameters": {"sourceIPAddress": "127.0.0.1"},
      "responseElements": {
        "x-amz-request-id": "C3D13FE58DE4C810",
        "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
      },
      "s3": {
        "s3SchemaVersion": "1.0",
        "configurationId": "testConfigRule",
        "bucket": {
          "name": "amzn-s3-demo-bucket",
          "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
          "arn": "arn:aws:s3:::amzn-s3-demo-bucket"
        },
        "object": {
          "key": "HappyFace.jpg",
          "size": 1024,
          "eTag": "d41d8cd98f00b204e9800998ecf8427e",
          "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
          "sequencer": "0055AED6DCD90281E5"
        }
      }
    }
  ]
}
"""

T0 = datetime(2026, 11, 22, 10, 1, 2, 123000, tzinfo=UTC)


def record(
    key: str = "FILM/VO-FIL-00001.mp4",
    event_name: str = "ObjectCreated:Put",
    event_time: str = "2026-11-22T10:01:02.123Z",
    bucket: str = "archive",
    **object_fields: Any,
) -> dict[str, Any]:
    """An S3 notification record as AWS sends it (key already URL-encoded by the caller)."""
    obj: dict[str, Any] = {"key": key, "size": 5, "eTag": "b1946ac92492d2347c6235b4d2611184"}
    obj.update(object_fields)
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time,
        "eventName": event_name,
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket}, "object": obj},
    }


def message(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def only_event(body: str) -> ObjectEvent:
    parsed = parse_message(body)
    assert len(parsed.events) == 1, parsed
    return parsed.events[0]


def event(
    kind: EventKind = EventKind.CREATED,
    sequencer: str | None = None,
    at: datetime = T0,
    key: str = "FILM/a.mp4",
    bucket: str = "archive",
) -> ObjectEvent:
    return ObjectEvent(
        bucket=bucket,
        key=key,
        kind=kind,
        event_name="ObjectCreated:Put" if kind is EventKind.CREATED else "ObjectRemoved:Delete",
        event_time=at,
        sequencer=normalise_sequencer(sequencer),
        etag="abc" if kind is EventKind.CREATED else None,
        size=5 if kind is EventKind.CREATED else None,
        version_id=None,
    )


# -- the AWS documentation sample ------------------------------------------------------------


def test_aws_documentation_sample() -> None:
    parsed = parse_message(AWS_SAMPLE)
    assert parsed == ParsedMessage(
        events=(
            ObjectEvent(
                bucket="amzn-s3-demo-bucket",
                key="HappyFace.jpg",
                kind=EventKind.CREATED,
                event_name="ObjectCreated:Put",
                event_time=datetime(1970, 1, 1, tzinfo=UTC),
                sequencer="0" * 14 + "0055aed6dcd90281e5",
                etag="d41d8cd98f00b204e9800998ecf8427e",
                size=1024,
                version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
            ),
        ),
        ignored=0,
        test_event=False,
    )
    assert parsed.events[0].folder is None


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("FILM/VO-FIL-00001+copia.mp4", "FILM/VO-FIL-00001 copia.mp4"),  # "+" is a space
        ("FILM/C%2B%2B+notes.pdf", "FILM/C++ notes.pdf"),  # "%2B" is a plus
        ("FILM/VO-ABC-00001+caf%C3%A9.mp4", "FILM/VO-ABC-00001 café.mp4"),  # UTF-8 escapes
        ("FILM/VO-ABC-00001 caf%C3%A9.mp4", "FILM/VO-ABC-00001 café.mp4"),  # a literal space
        ("FILM%2FVO-ABC-00001+caf%C3%A9.mp4", "FILM/VO-ABC-00001 café.mp4"),  # MinIO, moto: %2F
        ("%E6%98%A0%E7%94%BB/%E9%9F%B3.wav", "映画/音.wav"),
        ("FILM/50%25+off.mp4", "FILM/50% off.mp4"),
    ],
)
def test_keys_are_url_decoded(encoded: str, decoded: str) -> None:
    assert only_event(message(record(key=encoded))).key == decoded


def test_folder_is_the_first_path_segment() -> None:
    assert only_event(message(record(key="FILM%2Fsub%2Fa.mp4"))).folder == "FILM"
    assert only_event(message(record(key="a.mp4"))).folder is None
    assert only_event(message(record(key="FILM/"))).folder == "FILM"


# -- fields -------------------------------------------------------------------------------


def test_event_time_with_milliseconds_is_aware_utc() -> None:
    assert only_event(message(record(event_time="2026-11-22T10:01:02.123Z"))).event_time == T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:01:02Z", datetime(2026, 11, 22, 10, 1, 2, tzinfo=UTC)),
        # MinIO: Go's RFC3339Nano; Python keeps microseconds.
        ("2026-11-22T10:01:02.123456789Z", datetime(2026, 11, 22, 10, 1, 2, 123456, tzinfo=UTC)),
        ("2026-11-22T12:01:02.123+02:00", T0),
        ("2026-11-22T10:01:02.123", T0),  # no offset: S3 times are UTC
    ],
)
def test_event_time_formats(text: str, expected: datetime) -> None:
    parsed = parse_event_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_etag_loses_its_quotes_and_removals_have_none() -> None:
    created = only_event(message(record(eTag='"d41d8cd98f00b204e9800998ecf8427e"')))
    assert created.etag == "d41d8cd98f00b204e9800998ecf8427e"
    # moto sends the removed object's eTag; a removal has no content to compare, so None.
    removed = only_event(message(record(event_name="ObjectRemoved:Delete", eTag="abc")))
    assert removed.etag is None


def test_removal_without_size_etag_or_sequencer() -> None:
    rec = record(event_name="ObjectRemoved:DeleteMarkerCreated")
    rec["s3"]["object"] = {"key": "FILM/a.mp4", "versionId": "v2"}
    removed = only_event(message(rec))
    assert (removed.kind, removed.size, removed.etag, removed.sequencer, removed.version_id) == (
        EventKind.REMOVED,
        None,
        None,
        None,
        "v2",
    )


def test_size_as_a_digit_string_is_accepted() -> None:
    assert only_event(message(record(size="1024"))).size == 1024


# -- event types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ObjectCreated:Put", EventKind.CREATED),
        ("ObjectCreated:Post", EventKind.CREATED),
        ("ObjectCreated:Copy", EventKind.CREATED),
        ("ObjectCreated:CompleteMultipartUpload", EventKind.CREATED),
        ("ObjectRemoved:Delete", EventKind.REMOVED),
        ("ObjectRemoved:DeleteMarkerCreated", EventKind.REMOVED),
        ("LifecycleExpiration:Delete", EventKind.REMOVED),
        ("LifecycleExpiration:DeleteMarkerCreated", EventKind.REMOVED),
        ("ObjectTagging:Put", None),
        ("ObjectTagging:Delete", None),
        ("ObjectRestore:Completed", None),
        ("ObjectAcl:Put", None),
        ("Replication:OperationFailedReplication", None),
        ("LifecycleTransition", None),
        ("IntelligentTiering", None),
        ("ReducedRedundancyLostObject", None),
    ],
)
def test_event_kinds(name: str, kind: EventKind | None) -> None:
    assert event_kind(name) is kind


def test_other_event_types_are_counted_not_errors() -> None:
    # Ignored records are not validated: a tagging record without an object is not an error.
    bare_tagging = {"eventName": "ObjectTagging:Put"}
    parsed = parse_message(
        message(
            record(event_name="ObjectAcl:Put"),
            record(key="FILM/kept.mp4"),
            bare_tagging,
            record(event_name="ObjectRestore:Post"),
        )
    )
    assert [e.key for e in parsed.events] == ["FILM/kept.mp4"]
    assert parsed.ignored == 3
    assert parsed.test_event is False


def test_test_event() -> None:
    body = json.dumps(
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-11-22T10:01:02.123Z",
            "Bucket": "archive",
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
        }
    )
    assert parse_message(body) == ParsedMessage(events=(), ignored=0, test_event=True)


def test_several_records_in_one_message_keep_their_order() -> None:
    parsed = parse_message(
        message(
            record(key="FILM/a.mp4"), record(key="FILM/b.mp4", event_name="ObjectRemoved:Delete")
        )
    )
    assert [(e.key, e.kind) for e in parsed.events] == [
        ("FILM/a.mp4", EventKind.CREATED),
        ("FILM/b.mp4", EventKind.REMOVED),
    ]


# -- envelopes --------------------------------------------------------------------------------


def test_sns_wrapped_notification() -> None:
    inner = message(record(key="FILM/VO-FIL-00001+copia.mp4", sequencer="0A"))
    body = json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:media-events",
            "Subject": "Amazon S3 Notification",
            "Message": inner,
            "Timestamp": "2026-11-22T10:01:02.200Z",
            "SignatureVersion": "1",
        }
    )
    assert parse_message(body) == parse_message(inner)
    assert only_event(body).key == "FILM/VO-FIL-00001 copia.mp4"


def test_sns_wrapped_test_event() -> None:
    inner = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "archive"})
    body = json.dumps({"Type": "Notification", "Message": inner})
    assert parse_message(body).test_event is True


def test_minio_envelope() -> None:
    # As MinIO's SQS/webhook targets send it: its own envelope around AWS-style Records, event
    # names with "s3:", "/" encoded in keys, upper-case 16-digit sequencers, RFC3339Nano times.
    body = json.dumps(
        {
            "EventName": "s3:ObjectCreated:Put",
            "Key": "archive/FILM/VO-FIL-00001 copia.mp4",
            "Records": [
                {
                    "eventVersion": "2.0",
                    "eventSource": "minio:s3",
                    "awsRegion": "",
                    "eventTime": "2026-11-22T10:01:02.123456789Z",
                    "eventName": "s3:ObjectCreated:Put",
                    "userIdentity": {"principalId": "minio"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "Config",
                        "bucket": {"name": "archive", "arn": "arn:aws:s3:::archive"},
                        "object": {
                            "key": "FILM%2FVO-FIL-00001+copia.mp4",
                            "size": 629648,
                            "eTag": "b7ce786cd89b182bfd5ae765557bbc37",
                            "contentType": "video/mp4",
                            "sequencer": "15612487A9DF732C",
                        },
                    },
                }
            ],
        }
    )
    got = only_event(body)
    assert (got.bucket, got.key, got.event_name, got.size) == (
        "archive",
        "FILM/VO-FIL-00001 copia.mp4",
        "ObjectCreated:Put",
        629648,
    )
    assert got.sequencer == "0" * 16 + "15612487a9df732c"
    assert got.event_time == datetime(2026, 11, 22, 10, 1, 2, 123456, tzinfo=UTC)


def test_minio_empty_sequencer_is_none() -> None:
    assert only_event(message(record(sequencer=""))).sequencer is None


# -- sequencers and ordering ------------------------------------------------------------------


def test_sequencer_normalisation() -> None:
    assert normalise_sequencer("0055AED6DCD90281E5") == "0" * 14 + "0055aed6dcd90281e5"
    assert normalise_sequencer(None) is None
    assert len(normalise_sequencer("1") or "") == SEQUENCER_WIDTH


def test_sequencers_of_different_lengths_compare_as_numbers() -> None:
    # Raw strings order "0A" after "00B"; AWS's rule (left-pad, then compare) puts 0x0A first.
    assert "0A" > "00B"
    shorter, longer = normalise_sequencer("0A"), normalise_sequencer("00B")
    assert shorter is not None and longer is not None
    assert shorter < longer
    assert is_newer(event(sequencer="00B"), event(sequencer="0A"))
    assert not is_newer(event(sequencer="0A"), event(sequencer="00B"))


def test_sequencer_decides_over_event_time() -> None:
    # The newer operation by sequencer can carry an earlier eventTime (clock skew between S3
    # hosts): the sequencer wins.
    newer = event(EventKind.REMOVED, sequencer="0B", at=T0)
    older = event(EventKind.CREATED, sequencer="0A", at=T0 + timedelta(seconds=1))
    assert is_newer(newer, older)
    assert not is_newer(older, newer)


def test_event_time_decides_without_sequencers() -> None:
    early, late = event(at=T0), event(EventKind.REMOVED, at=T0 + timedelta(milliseconds=1))
    assert is_newer(late, early)
    assert not is_newer(early, late)
    # Only one of them has a sequencer (mixed sources): event_time decides.
    assert is_newer(replace(late, sequencer=None), replace(early, sequencer="0" * 32))


def test_order_key() -> None:
    assert event(sequencer="0A").order_key < event(sequencer="00B").order_key
    assert event(at=T0).order_key < event(at=T0 + timedelta(seconds=1)).order_key


def test_removal_before_creation_on_one_key_keeps_the_removal() -> None:
    # PUT then DELETE, delivered DELETE first: the late creation is stale and must not win.
    created = event(EventKind.CREATED, sequencer="0A")
    removed = event(EventKind.REMOVED, sequencer="0B")
    assert newest_per_key([removed, created]) == {("archive", "FILM/a.mp4"): removed}
    assert newest_per_key([created, removed]) == {("archive", "FILM/a.mp4"): removed}


def test_removal_then_reupload_keeps_the_creation() -> None:
    removed = event(EventKind.REMOVED, sequencer="0B")
    reuploaded = event(EventKind.CREATED, sequencer="0C")
    assert newest_per_key([reuploaded, removed]) == {("archive", "FILM/a.mp4"): reuploaded}


def test_ties_keep_the_later_seen_event() -> None:
    created, removed = event(EventKind.CREATED), event(EventKind.REMOVED)  # same time, no seq
    assert newest_per_key([created, removed])[("archive", "FILM/a.mp4")] is removed
    assert newest_per_key([removed, created])[("archive", "FILM/a.mp4")] is created


def test_newest_per_key_separates_keys_and_buckets() -> None:
    a = event(key="FILM/a.mp4")
    b = event(EventKind.REMOVED, key="FILM/b.mp4")
    other_bucket = event(EventKind.REMOVED, key="FILM/a.mp4", bucket="elsewhere")
    assert newest_per_key([a, b, other_bucket]) == {
        ("archive", "FILM/a.mp4"): a,
        ("archive", "FILM/b.mp4"): b,
        ("elsewhere", "FILM/a.mp4"): other_bucket,
    }


def test_duplicate_messages_parse_to_equal_events_and_collapse() -> None:
    body = message(record(key="FILM/a.mp4", sequencer="0055AED6DCD90281E5"))
    first, second = only_event(body), only_event(body)
    assert first == second
    assert newest_per_key([first, second]) == {("archive", "FILM/a.mp4"): first}


# -- malformed messages -----------------------------------------------------------------------


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A valid record with the field at `path` set to `value` (or deleted when value is ...)."""
    rec = record()
    target = rec
    for step in path[:-1]:
        target = target[step]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return rec


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "not JSON: Expecting value: line 1 column 1 (char 0)"),
        (
            "{not json",
            "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        ("[1, 2]", "not a JSON object but a JSON array"),
        ("{}", "no Records array"),
        ('{"Records": {}}', "Records is a JSON object, not an array"),
        ('{"Records": [42]}', "record 1: a JSON number, not an object"),
        (message(record(), _with(("s3", "object", "key"), ...)), "record 2: s3.object.key missing"),
        (
            message(_with(("s3", "object", "key"), 42)),
            "record 1: s3.object.key is a JSON number, not a string",
        ),
        (message(_with(("s3", "object", "key"), "")), "record 1: s3.object.key is empty"),
        (message(_with(("eventName",), ...)), "record 1: eventName missing"),
        (message(_with(("eventTime",), ...)), "record 1: eventTime missing"),
        (message(_with(("s3", "bucket", "name"), ...)), "record 1: s3.bucket.name missing"),
        (message(_with(("s3",), "oops")), "record 1: s3 is a JSON string, not an object"),
        (
            message(_with(("s3", "object"), [])),
            "record 1: s3.object is a JSON array, not an object",
        ),
        (
            message(record(key="FILM/caf%E9.mp4")),  # Latin-1, not UTF-8
            "record 1: s3.object.key 'FILM/caf%E9.mp4' is not URL-encoded UTF-8",
        ),
        (
            message(record(event_time="yesterday")),
            "record 1: eventTime 'yesterday' is not ISO-8601",
        ),
        (
            message(record(event_time="2026-11-22")),
            "record 1: eventTime '2026-11-22' has no time of day",
        ),
        (
            message(record(sequencer="xyz")),
            "record 1: s3.object.sequencer 'xyz' is not hexadecimal",
        ),
        (
            message(record(sequencer="1" * 33)),
            f"record 1: s3.object.sequencer {'1' * 33!r} is longer than 32 digits",
        ),
        (
            message(record(size="big")),
            "record 1: s3.object.size 'big' is not a non-negative integer",
        ),
        (message(record(size=-1)), "record 1: s3.object.size -1 is not a non-negative integer"),
        (message(record(eTag=123)), "record 1: s3.object.eTag is a JSON number, not a string"),
        (
            json.dumps({"Type": "Notification", "Message": "nope"}),
            "SNS Message not JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            json.dumps({"Type": "Notification", "Message": {"Records": []}}),
            "SNS Message is a JSON object, not a string",
        ),
        (
            json.dumps({"detail-type": "Object Created", "source": "aws.s3", "detail": {}}),
            "EventBridge event ('Object Created') not supported: "
            "send the bucket's notifications to the queue directly or through SNS",
        ),
    ],
)
def test_malformed_messages_say_what_and_where(body: str, error: str) -> None:
    with pytest.raises(MalformedMessage) as raised:
        parse_message(body)
    assert str(raised.value) == error


def test_malformed_message_is_a_value_error() -> None:
    # Callers that already handle ValueError for bad input catch it too.
    assert issubclass(MalformedMessage, ValueError)


def test_an_empty_records_array_is_an_empty_message() -> None:
    assert parse_message('{"Records": []}') == ParsedMessage(events=(), ignored=0)
