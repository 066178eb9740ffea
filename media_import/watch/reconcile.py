"""Reconciliation: walk the bucket in bounded key ranges and diff each against what was seen.

A pass lists the whole bucket in S3's key order, a chunk of keys at a time; each chunk is a
closed key range (after, upto] diffed in one transaction (media_import.db.watch), so new,
modified (another ETag or size, whatever the timestamps) and removed objects are all found,
and a removal changes only its own folder. A tick stops at its key or time budget and leaves a
cursor to continue from; the next pass starts when one reaches the end of the bucket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import psycopg

from media_import.core.inventory import Outcome, Rules, judge_key
from media_import.core.storage import Bucket, ObjectInfo
from media_import.db.watch import FolderChanges, apply_listing_chunk

DEFAULT_CHUNK_KEYS = 20_000
DEFAULT_TICK_KEYS = 500_000
DEFAULT_TICK_SECONDS = 25.0


@dataclass(frozen=True)
class ScanCursor:
    """Where the current pass stands; stored as the sensor's JSON cursor."""

    start_after: str | None = None
    pass_number: int = 1
    pass_started_at: str | None = None
    listed_in_pass: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> ScanCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class ScanReport:
    """What one tick listed and found."""

    started_after: str | None
    listed: int = 0
    considered: int = 0
    chunks: int = 0
    ended_at: str | None = None
    pass_completed: bool = False
    seconds: float = 0.0
    changes: dict[str, FolderChanges] = field(default_factory=dict)

    def add(self, changes: dict[str, FolderChanges]) -> None:
        for folder, c in changes.items():
            before = self.changes.get(folder, FolderChanges())
            self.changes[folder] = FolderChanges(
                before.added + c.added, before.modified + c.modified, before.removed + c.removed
            )

    def summary(self) -> str:
        where = f"after {self.started_after!r}" if self.started_after else "from the start"
        end = "to the end of the bucket" if self.pass_completed else f"up to {self.ended_at!r}"
        changed = ", ".join(
            f"{f}: +{c.added} ~{c.modified} -{c.removed}" for f, c in sorted(self.changes.items())
        )
        return (
            f"listed {self.listed} keys ({self.considered} considered) {where} {end} "
            f"in {self.chunks} chunk(s), {self.seconds:.1f}s; "
            f"changes: {changed or 'none'}"
        )


class _Chunk:
    """One chunk's listing, streamed: considered objects out, the last raw key remembered."""

    def __init__(self, pages: Iterator[list[ObjectInfo]], rules: Rules, max_keys: int) -> None:
        self.pages, self.rules, self.max_keys = pages, rules, max_keys
        self.listed = self.considered = 0
        self.last_key: str | None = None
        self.exhausted = False

    def objects(self) -> Iterator[tuple[ObjectInfo, str]]:
        while self.listed < self.max_keys:
            page = next(self.pages, None)
            if page is None:
                self.exhausted = True
                return
            for info in page:
                verdict = judge_key(info.key, self.rules)
                if verdict.outcome is not Outcome.IGNORED and verdict.folder:
                    self.considered += 1
                    yield info, verdict.folder
            self.listed += len(page)
            if page:
                self.last_key = page[-1].key

    @property
    def range_end(self) -> str | None:
        """The inclusive end of the key range this chunk covered; None: the bucket's end."""
        return None if self.exhausted else self.last_key


def scan(
    bucket: Bucket,
    conn: psycopg.Connection,
    rules: Rules,
    cursor: ScanCursor,
    *,
    max_keys: int = DEFAULT_TICK_KEYS,
    max_seconds: float = DEFAULT_TICK_SECONDS,
    chunk_keys: int = DEFAULT_CHUNK_KEYS,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[ScanReport, ScanCursor]:
    """Continue the pass from `cursor` for at most `max_keys` keys or about `max_seconds`."""
    started = clock()
    report = ScanReport(started_after=cursor.start_after)
    pages = bucket.list_pages(start_after=cursor.start_after)
    after = cursor.start_after
    while True:
        chunk = _Chunk(pages, rules, min(chunk_keys, max_keys - report.listed))
        # The range's upper end is known only once COPY has drained the chunk's listing.
        changes = apply_listing_chunk(
            conn, bucket.name, chunk.objects(), after, lambda c=chunk: c.range_end
        )
        report.add(changes)
        report.chunks += 1
        report.listed += chunk.listed
        report.considered += chunk.considered
        after = chunk.last_key or after
        if chunk.exhausted:
            report.pass_completed = True
            break
        if report.listed >= max_keys or clock() - started >= max_seconds:
            break
    report.ended_at = after
    report.seconds = clock() - started
    return report, _next_cursor(cursor, report, after)


def _next_cursor(cursor: ScanCursor, report: ScanReport, after: str | None) -> ScanCursor:
    started_at = cursor.pass_started_at or datetime.now(UTC).isoformat()
    if report.pass_completed:
        return ScanCursor(None, cursor.pass_number + 1, None, 0)
    return ScanCursor(after, cursor.pass_number, started_at, cursor.listed_in_pass + report.listed)
