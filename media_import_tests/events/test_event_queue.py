"""The event queue over real HTTP: moto's S3 notifies its SQS, and we receive, parse, delete.

moto sends the real notification format (URL-encoded keys, an s3:TestEvent when notifications
are configured) but no sequencers, so ordering here rests on eventTime.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from media_import.core.event_queue import EventQueue, QueueConfig, QueueError, QueueMessage
from media_import.core.s3_events import (
    EventKind,
    MalformedMessage,
    ObjectEvent,
    newest_per_key,
    parse_message,
)
from media_import.devstack import find_free_port, s3_client
from media_import.devstack.events import make_queue, notify_bucket_to_queue, sqs_client

if TYPE_CHECKING:  # fixtures' types only; conftest is loaded by pytest itself
    from media_import_tests.conftest import BucketWriter, S3Target

SPACED = "FILM/VO-FIL-00001 copia.mp4"
UNICODE = "FILM/VO-ABC-00001 café.mp4"
PLUS = "DOCS/C++ notes+1.pdf"


def config_for(target: S3Target, queue_url: str) -> QueueConfig:
    return QueueConfig(
        queue_url=queue_url,
        endpoint_url=target.endpoint_url,
        region=target.region,
        access_key_id=target.access_key,
        secret_access_key=target.secret_key,
    )


@pytest.fixture
def queue_url(s3_server: S3Target) -> str:
    t = s3_server
    return make_queue(
        t.endpoint_url, f"events-{uuid.uuid4().hex[:16]}", t.region, t.access_key, t.secret_key
    )


@pytest.fixture
def queue(s3_server: S3Target, bucket: str, queue_url: str) -> EventQueue:
    """The test's queue, receiving its bucket's notifications; S3's initial s3:TestEvent is
    checked and removed, so tests see only the events they cause."""
    t = s3_server
    notify_bucket_to_queue(t.endpoint_url, bucket, queue_url, t.region, t.access_key, t.secret_key)
    event_queue = EventQueue(config_for(s3_server, queue_url))
    initial = event_queue.receive()
    assert [parse_message(m.body).test_event for m in initial] == [True]
    assert event_queue.delete(initial) == []
    return event_queue


def events_of(messages: list[QueueMessage]) -> list[ObjectEvent]:
    return [e for m in messages for e in parse_message(m.body).events]


@pytest.fixture
def sqs(s3_server: S3Target) -> Any:
    """A plain boto3 SQS client, to look at the queue from outside EventQueue."""
    t = s3_server
    return sqs_client(t.endpoint_url, t.region, t.access_key, t.secret_key)


def queued_counts(sqs: Any, queue: EventQueue) -> tuple[int, int]:
    """(visible, in flight) messages, as SQS reports them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.config.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_configuring_notifications_sends_a_test_event(
    s3_server: S3Target, bucket: str, queue_url: str
) -> None:
    t = s3_server
    notify_bucket_to_queue(t.endpoint_url, bucket, queue_url, t.region, t.access_key, t.secret_key)
    [message] = EventQueue(config_for(s3_server, queue_url)).receive()
    parsed = parse_message(message.body)
    assert (parsed.test_event, parsed.events, parsed.ignored) == (True, (), 0)


def test_created_and_removed_objects_arrive_with_decoded_keys(
    s3_server: S3Target, bucket: str, put: BucketWriter, queue: EventQueue
) -> None:
    bodies = {SPACED: b"spaced", UNICODE: b"unicode", PLUS: b"plus"}
    for key, body in bodies.items():
        put(key, body)
    t = s3_server
    client = s3_client(t.endpoint_url, t.region, t.access_key, t.secret_key)
    client.delete_object(Bucket=bucket, Key=SPACED)

    events = events_of(queue.receive())

    assert [(e.key, e.kind) for e in events] == [
        (SPACED, EventKind.CREATED),
        (UNICODE, EventKind.CREATED),
        (PLUS, EventKind.CREATED),
        (SPACED, EventKind.REMOVED),
    ]
    created = {e.key: e for e in events if e.kind is EventKind.CREATED}
    for key, body in bodies.items():
        assert created[key].bucket == bucket
        assert created[key].etag == hashlib.md5(body, usedforsecurity=False).hexdigest()
        assert created[key].size == len(body)
        assert created[key].folder == key.split("/")[0]
        assert created[key].sequencer is None  # moto sends none
    assert events[-1].event_name == "ObjectRemoved:Delete"
    assert events[-1].etag is None
    # The batch collapses to what the bucket now holds: the spaced key is gone.
    newest = newest_per_key(events)
    assert {key: e.kind for (_, key), e in newest.items()} == {
        SPACED: EventKind.REMOVED,
        UNICODE: EventKind.CREATED,
        PLUS: EventKind.CREATED,
    }


def test_receive_then_delete_leaves_the_queue_empty(
    put: BucketWriter, queue: EventQueue, sqs: Any
) -> None:
    for n in range(12):
        put(f"FILM/VO-FIL-{n:05d}.mp4", b"x")

    first = queue.receive(max_messages=5)
    rest = queue.receive()  # more than 10: several receive calls

    assert len(first) == 5
    assert len(first) + len(rest) == 12
    assert len({m.message_id for m in first + rest}) == 12
    assert queued_counts(sqs, queue) == (0, 12)
    assert queue.delete(first + rest) == []  # two delete batches: 10 and 2
    assert queued_counts(sqs, queue) == (0, 0)
    assert queue.receive() == []


def test_a_duplicate_delivery_parses_to_equal_events(put: BucketWriter, queue: EventQueue) -> None:
    put(UNICODE, b"unicode")

    # A visibility timeout of 0: the message is delivered again at once, as after a crash.
    # Within one receive the redelivery is folded into one message (hence a single one here).
    [first] = queue.receive(visibility_timeout=0)
    [again] = queue.receive(visibility_timeout=0)

    assert first.message_id == again.message_id
    assert first.receipt_handle != again.receipt_handle
    assert again.receive_count > first.receive_count
    assert parse_message(first.body) == parse_message(again.body)
    [event] = parse_message(first.body).events
    assert newest_per_key(events_of([first, again])) == {(event.bucket, UNICODE): event}
    # Both deliveries in one batch: the entry ids must not be the (shared) message id.
    assert queue.delete([first, again]) == []
    assert queue.receive() == []


def test_a_malformed_message_is_reported_and_kept_while_the_rest_parse(
    put: BucketWriter, queue: EventQueue, sqs: Any
) -> None:
    put(SPACED, b"before")
    sqs.send_message(QueueUrl=queue.config.queue_url, MessageBody="this is not JSON")
    put(UNICODE, b"after")

    # Visibility 0: a message left undeleted is visible again at once, not after 30 s.
    messages = queue.receive(visibility_timeout=0)
    parsed: list[QueueMessage] = []
    errors: dict[str, str] = {}
    for m in messages:
        try:
            parse_message(m.body)
        except MalformedMessage as exc:
            errors[m.message_id] = str(exc)
        else:
            parsed.append(m)

    assert list(errors.values()) == ["not JSON: Expecting value: line 1 column 1 (char 0)"]
    assert [e.key for e in events_of(parsed)] == [SPACED, UNICODE]
    # Only the parsed messages are deleted: the malformed one stays for inspection.
    assert queue.delete(parsed) == []
    [kept] = queue.receive()
    assert kept.message_id in errors
    assert kept.body == "this is not JSON"
    [malformed] = [m for m in messages if m.message_id in errors]
    assert kept.receive_count > malformed.receive_count


def test_delete_reports_the_messages_it_could_not_delete(
    put: BucketWriter, queue: EventQueue, sqs: Any
) -> None:
    put(SPACED, b"x")
    [real] = queue.receive()
    stale = QueueMessage("no-such-message", "not-a-receipt-handle", "{}", 1)

    assert queue.delete([real, stale]) == ["no-such-message"]
    assert queued_counts(sqs, queue) == (0, 0)


def test_check_reachable(s3_server: S3Target, queue_url: str) -> None:
    EventQueue(config_for(s3_server, queue_url)).check_reachable()


def test_check_reachable_names_a_missing_queue(s3_server: S3Target, queue_url: str) -> None:
    missing = queue_url + "-missing"
    with pytest.raises(QueueError) as raised:
        EventQueue(config_for(s3_server, missing)).check_reachable()
    assert str(raised.value) == (
        f"queue {missing!r} does not exist at {s3_server.endpoint_url} (check the queue URL)"
    )


def test_check_reachable_names_an_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{find_free_port()}"  # nothing listens there
    config = QueueConfig(f"{endpoint}/123456789012/q", endpoint, None, "test", "test")
    with pytest.raises(QueueError) as raised:
        EventQueue(config).check_reachable()
    assert str(raised.value) == (
        f"cannot reach the SQS endpoint {endpoint} (check the queue endpoint URL)"
    )
