"""S3 event notifications (as delivered through SQS) parsed into plain object events.

Dagster-free: the event sensor receives queue messages, parses them here, stores the events and
only then deletes the messages. A message that cannot be parsed raises `MalformedMessage`,
naming what is wrong and where, so the caller can keep that message for inspection and go on
with the others.

Accepted envelopes:

- S3 -> SQS directly (and SNS with raw message delivery): `{"Records": [...]}`;
- S3 -> SNS -> SQS: `{"Type": "Notification", "Message": "<the S3 event as a JSON string>"}`;
- MinIO: `{"EventName": ..., "Key": "bucket/key", "Records": [...]}` (the Records are used);
- S3's test event `{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}`, sent when a
  bucket's notifications are configured.

EventBridge's "Object Created"/"Object Deleted" format is rejected with a clear message: AWS's
documentation does not say whether its `detail.object.key` is URL-encoded, and guessing wrong
would silently corrupt keys containing `+` or `%`.

Ordering: S3 delivers at least once and in no particular order. Events on one key are ordered by
their `sequencer` (hex; AWS: "left pad the shorter value with zeros, then compare
lexicographically"); sequencers are only comparable between events on the same key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_plus

# Normalised sequencers are left-padded to this width so that plain string comparison (in
# Python or in PostgreSQL) orders them. AWS's are ~18 hex digits, MinIO's 16.
SEQUENCER_WIDTH = 32

_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_CREATED_PREFIXES = ("ObjectCreated:",)
# Lifecycle expirations remove the object from the listing just like a DELETE does.
_REMOVED_PREFIXES = ("ObjectRemoved:", "LifecycleExpiration:")


class EventKind(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


class MalformedMessage(ValueError):
    """A queue message that is not a usable S3 event notification; the text says what is wrong
    and where (e.g. "record 2: s3.object.key missing")."""


@dataclass(frozen=True)
class ObjectEvent:
    """One object created or removed, with its key URL-decoded."""

    bucket: str
    key: str
    kind: EventKind
    event_name: str  # without the "s3:" prefix MinIO adds, e.g. "ObjectCreated:Put"
    event_time: datetime  # aware, UTC
    sequencer: str | None  # lower-case hex, zero-padded to SEQUENCER_WIDTH; None if not sent
    etag: str | None  # without quotes; None for removals
    size: int | None
    version_id: str | None

    @property
    def folder(self) -> str | None:
        """The key's top-level folder (text before the first "/"); None for a top-level key."""
        head, sep, _ = self.key.partition("/")
        return head if sep else None

    @property
    def order_key(self) -> tuple[str, datetime]:
        """Sort key among events on the same key: (sequencer or "", event_time).

        The sequencer decides when both events have one; event_time only breaks ties or stands
        in when neither has one (moto sends none). Comparing an event that has a sequencer with
        one that has none through this key is meaningless ("" sorts first): use `is_newer`,
        which falls back to event_time in that case.
        """
        return (self.sequencer or "", self.event_time)


@dataclass(frozen=True)
class ParsedMessage:
    """What one queue message held."""

    events: tuple[ObjectEvent, ...]
    ignored: int = 0  # records of other event types (tagging, restore, ACL, replication, ...)
    test_event: bool = False  # S3's s3:TestEvent, sent when notifications are configured


# -- ordering ---------------------------------------------------------------------------------


def is_newer(event: ObjectEvent, than: ObjectEvent) -> bool:
    """Whether `event` happened after `than` (both on the same bucket and key).

    The sequencer decides when both events have one. Otherwise event_time decides, and an equal
    time counts as newer: events are then told apart by arrival order only, and the later-seen
    one is the best guess (SQS mostly delivers in send order; two events on one key within the
    same millisecond are rare). Equal sequencers are the same S3 operation delivered twice, so
    either choice gives the same event.
    """
    if event.sequencer and than.sequencer and event.sequencer != than.sequencer:
        return event.sequencer > than.sequencer
    return event.event_time >= than.event_time


def newest_per_key(events: Iterable[ObjectEvent]) -> dict[tuple[str, str], ObjectEvent]:
    """Collapse a batch to the newest event per (bucket, key) by the rule of `is_newer`, so a
    stale event (say a creation delivered after the removal that followed it) never wins.
    Iterate events in arrival order: ties go to the later-seen one."""
    newest: dict[tuple[str, str], ObjectEvent] = {}
    for event in events:
        where = (event.bucket, event.key)
        current = newest.get(where)
        if current is None or is_newer(event, current):
            newest[where] = event
    return newest


# -- parsing ----------------------------------------------------------------------------------


def parse_message(body: str) -> ParsedMessage:
    """Parse one queue message body; raises MalformedMessage saying what is wrong and where."""
    document = _load_json(body, "")
    if document.get("Type") == "Notification" and "Message" in document:
        inner = document["Message"]
        if not isinstance(inner, str):
            raise MalformedMessage(f"SNS Message is a JSON {_json_type(inner)}, not a string")
        document = _load_json(inner, "SNS Message ")
    return _parse_document(document)


def _load_json(text: str, what: str) -> dict[str, Any]:
    """`text` as a JSON object; `what` prefixes the error ("" for the message body itself)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"{what}not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedMessage(f"{what}not a JSON object but a JSON {_json_type(document)}")
    return document


def _parse_document(document: dict[str, Any]) -> ParsedMessage:
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage(events=(), ignored=0, test_event=True)
    if "detail-type" in document and document.get("source") == "aws.s3":
        raise MalformedMessage(
            f"EventBridge event ({document['detail-type']!r}) not supported: "
            "send the bucket's notifications to the queue directly or through SNS"
        )
    if "Records" not in document:
        raise MalformedMessage("no Records array")
    records = document["Records"]
    if not isinstance(records, list):
        raise MalformedMessage(f"Records is a JSON {_json_type(records)}, not an array")
    events: list[ObjectEvent] = []
    ignored = 0
    for number, record in enumerate(records, start=1):
        event = _parse_record(record, f"record {number}")
        if event is None:
            ignored += 1
        else:
            events.append(event)
    return ParsedMessage(events=tuple(events), ignored=ignored, test_event=False)


def _parse_record(record: object, where: str) -> ObjectEvent | None:
    """The record's event, or None for an event type the importer does not follow."""
    if not isinstance(record, dict):
        raise MalformedMessage(f"{where}: a JSON {_json_type(record)}, not an object")
    event_name = _required_str(record, ("eventName",), where).removeprefix("s3:")
    kind = event_kind(event_name)
    if kind is None:
        return None
    obj = _required_dict(record, ("s3", "object"), where)
    removed = kind is EventKind.REMOVED
    return ObjectEvent(
        bucket=_required_str(record, ("s3", "bucket", "name"), where),
        key=_decode_key(_required_str(obj, ("key",), where, prefix="s3.object"), where),
        kind=kind,
        event_name=event_name,
        event_time=parse_event_time(_required_str(record, ("eventTime",), where), where),
        sequencer=normalise_sequencer(obj.get("sequencer"), where),
        etag=None if removed else _etag(obj.get("eTag"), where),
        size=_size(obj.get("size"), where),
        version_id=_optional_str(obj.get("versionId"), "s3.object.versionId", where),
    )


def _decode_key(encoded: str, where: str) -> str:
    """S3 URL-encodes keys in notifications ("+" a space, "%2B" a plus, UTF-8 escapes)."""
    try:
        # strict: an invalid UTF-8 escape would otherwise become U+FFFD, a key that does not exist
        return unquote_plus(encoded, errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(
            f"{where}: s3.object.key {encoded!r} is not URL-encoded UTF-8"
        ) from exc


def event_kind(event_name: str) -> EventKind | None:
    """CREATED or REMOVED for the event types the importer follows (name without "s3:"),
    None for every other type."""
    if event_name.startswith(_CREATED_PREFIXES):
        return EventKind.CREATED
    if event_name.startswith(_REMOVED_PREFIXES):
        return EventKind.REMOVED
    return None


def parse_event_time(text: str, where: str = "message") -> datetime:
    """An ISO-8601 date and time ("2026-11-22T10:01:02.123Z") as an aware UTC datetime.

    S3 always sends UTC with "Z"; a time without an offset is taken as UTC too. MinIO's
    nanosecond fractions are accepted (Python keeps microseconds).
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedMessage(f"{where}: eventTime {text!r} is not ISO-8601") from exc
    # A bare date parses too, but ordering events needs the time of day.
    if len(text) <= len("2026-11-22"):
        raise MalformedMessage(f"{where}: eventTime {text!r} has no time of day")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def normalise_sequencer(value: object, where: str = "message") -> str | None:
    """Lower-case hex left-padded with zeros to SEQUENCER_WIDTH; None when absent or empty
    (moto sends none, some MinIO versions send "")."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _HEX_RE.fullmatch(value):
        raise MalformedMessage(f"{where}: s3.object.sequencer {value!r} is not hexadecimal")
    if len(value) > SEQUENCER_WIDTH:
        raise MalformedMessage(
            f"{where}: s3.object.sequencer {value!r} is longer than {SEQUENCER_WIDTH} digits"
        )
    return value.lower().rjust(SEQUENCER_WIDTH, "0")


def _etag(value: object, where: str) -> str | None:
    text = _optional_str(value, "s3.object.eTag", where)
    if text is None:
        return None
    return text.strip('"') or None


def _size(value: object, where: str) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; a digit string is tolerated (AWS's own template shows one).
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MalformedMessage(f"{where}: s3.object.size {value!r} is not a non-negative integer")


def _optional_str(value: object, field: str, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"{where}: {field} is a JSON {_json_type(value)}, not a string")
    return value


def _required_dict(record: Mapping[str, Any], path: tuple[str, ...], where: str) -> dict[str, Any]:
    value = _lookup(record, path, where)
    if not isinstance(value, dict):
        raise MalformedMessage(
            f"{where}: {'.'.join(path)} is a JSON {_json_type(value)}, not an object"
        )
    return value


def _required_str(
    record: Mapping[str, Any], path: tuple[str, ...], where: str, prefix: str = ""
) -> str:
    value = _lookup(record, path, where, prefix)
    name = _dotted(prefix, path)
    if not isinstance(value, str):
        raise MalformedMessage(f"{where}: {name} is a JSON {_json_type(value)}, not a string")
    if not value:
        raise MalformedMessage(f"{where}: {name} is empty")
    return value


def _lookup(record: Mapping[str, Any], path: tuple[str, ...], where: str, prefix: str = "") -> Any:
    """record[path[0]][path[1]]...; a missing or mistyped step is reported by its dotted name."""
    value: Any = record
    for depth, step in enumerate(path, start=1):
        if depth > 1 and not isinstance(value, dict):
            parent = _dotted(prefix, path[: depth - 1])
            raise MalformedMessage(
                f"{where}: {parent} is a JSON {_json_type(value)}, not an object"
            )
        if value.get(step) is None:
            raise MalformedMessage(f"{where}: {_dotted(prefix, path[:depth])} missing")
        value = value[step]
    return value


def _dotted(prefix: str, path: tuple[str, ...]) -> str:
    return ".".join((prefix, *path) if prefix else path)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return names.get(type(value), type(value).__name__)
