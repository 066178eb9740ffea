"""Folding stored S3 events into the seen-object state: which keys and folders changed.

Pure functions: the database layer (media_import.db.inbox) loads the unapplied events and the
seen state of their keys, asks `fold` what to write, and writes it in one transaction.

Events arrive at least once and out of order. An event changes a key's state only if it is
newer than what the state already holds: by sequencer when both have one, else by time (a
listing records the object's LastModified). A removal leaves a tombstone carrying its sequencer,
so a creation delivered after the removal that followed it is recognised as stale.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from media_import.core.inventory import Outcome, Rules, judge_key
from media_import.core.s3_events import EventKind, ObjectEvent


class EventOutcome(StrEnum):
    CHANGED = "changed"  # the key's state moved: its folder needs an import
    UNCHANGED = "unchanged"  # newer, but the same state (a duplicate, or already listed)
    STALE = "stale"  # older than the state already held
    IGNORED = "ignored"  # not a key the importer considers (extension, folder, top level)


@dataclass(frozen=True)
class SeenObject:
    """A key's state as `ingest.bucket_object` holds it."""

    folder: str
    present: bool
    etag: str | None
    size: int | None
    last_modified: datetime
    sequencer: str | None

    def same_object(self, other: SeenObject) -> bool:
        if self.present != other.present:
            return False
        return not self.present or (self.etag, self.size) == (other.etag, other.size)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    event: ObjectEvent


@dataclass
class Fold:
    """What applying a batch of events decided."""

    states: dict[str, SeenObject] = field(default_factory=dict)  # key -> new state to write
    outcomes: dict[int, EventOutcome] = field(default_factory=dict)  # event id -> outcome
    changed: Counter[str] = field(default_factory=Counter)  # folder -> keys changed

    @property
    def by_outcome(self) -> Counter[str]:
        return Counter(str(o) for o in self.outcomes.values())


def is_newer(event: ObjectEvent, seen: SeenObject) -> bool:
    if event.sequencer and seen.sequencer and event.sequencer != seen.sequencer:
        return event.sequencer > seen.sequencer
    if event.sequencer and event.sequencer == seen.sequencer:
        return False  # the very event the state came from, delivered again
    # A listing's LastModified has second precision, an event's time milliseconds: an event
    # in the same second as the listed object is taken as newer (its state is re-checked by
    # the folder's import either way).
    return event.event_time >= seen.last_modified.replace(microsecond=0)


def state_after(event: ObjectEvent, folder: str) -> SeenObject:
    created = event.kind is EventKind.CREATED
    return SeenObject(
        folder=folder,
        present=created,
        etag=event.etag if created else None,
        size=event.size if created else None,
        last_modified=event.event_time,
        sequencer=event.sequencer,
    )


def fold(events: list[StoredEvent], seen: dict[str, SeenObject], rules: Rules) -> Fold:
    """Apply `events` (any order) to `seen` (the current state of their keys)."""
    result = Fold()
    current = dict(seen)
    # Oldest first per key, so each event is judged against the state its predecessors left.
    ordered = sorted(events, key=lambda s: (s.event.key, s.event.order_key, s.id))
    for stored in ordered:
        event = stored.event
        verdict = judge_key(event.key, rules)
        if verdict.outcome is Outcome.IGNORED or not verdict.folder:
            result.outcomes[stored.id] = EventOutcome.IGNORED
            continue
        before = current.get(event.key)
        if before is not None and not is_newer(event, before):
            result.outcomes[stored.id] = EventOutcome.STALE
            continue
        after = state_after(event, verdict.folder)
        # A removal of a key never seen may still be a catalogued file (imported before the
        # sensors ran): its folder is checked.
        moved = before is None or not before.same_object(after)
        current[event.key] = after if moved or before is None else replace(before, **_keep(after))
        result.states[event.key] = current[event.key]
        result.outcomes[stored.id] = EventOutcome.CHANGED if moved else EventOutcome.UNCHANGED
        if moved:
            result.changed[verdict.folder] += 1
    return result


def _keep(after: SeenObject) -> dict[str, object]:
    """An unchanged object still takes the newer event's ordering, so older ones stay stale."""
    return {"last_modified": after.last_modified, "sequencer": after.sequencer}
