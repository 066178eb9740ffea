"""Reconciliation: walk the bucket in bounded key ranges and diff each against what was seen.

A pass lists the whole bucket in S3's key order, a chunk of keys at a time; each chunk is a
closed key range (after, upto] diffed in one transaction (media_import.db.watch), so new,
modified (another ETag or size, whatever the timestamps) and removed objects are all found,
and a removal changes only its own folder. A tick stops at its key or time budget and leaves a
cursor to continue from; the next pass starts when one reaches the end of the bucket.

Two things make a pass over an unchanged bucket cost little more than its listing:

* A chunk whose listing matches what was seen in its range (same digest of key, ETag and
  size, computed by Arrow on one side and by PostgreSQL on the other) is not written at all.
* S3 lists 1000 keys per request, one request after another, so one listing is bounded by
  round trips. The tick's key range is cut into lanes at keys the previous pass saw (about
  `lane_keys` apart) and the lanes are listed concurrently on threads, a bounded number of
  lanes ahead of the diff, which still takes their pages in key order: chunks, budgets and
  cursor are those of one listing, except that a chunk also ends where a lane does. The seen
  digests of the next chunks are computed by PostgreSQL meanwhile.

Keys are judged vectorised (`considered_mask`) and pages stay Arrow record batches: no Python
object per key.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.inventory import Rules, considered_mask
from media_import.core.storage import Bucket
from media_import.db.watch import (
    FolderChanges,
    ListingDigest,
    apply_listing_chunk,
    digest_records,
    seen_digest,
    split_keys,
)

DEFAULT_CHUNK_KEYS = 20_000
DEFAULT_TICK_KEYS = 500_000
DEFAULT_TICK_SECONDS = 25.0
# Lanes: key ranges of about this many keys seen by the previous pass, listed concurrently by
# DEFAULT_LANES threads; at most 1.5 x threads lanes are started ahead of the diff, which
# bounds memory (~200 bytes a key held: 1M keys in 8 lanes, ~120k keys, ~25 MB; chosen by
# measurement, more lanes ahead were not faster).
DEFAULT_LANE_KEYS = 10_000
DEFAULT_LANES = 32
# Lanes parsing and judging their pages at once; the others wait for their pages meanwhile,
# or for a slot. Lanes are for round trips (AWS: ~100 ms a page); against a near endpoint the
# pages are CPU work, and eight threads contending for the GIL over it cost more: listing 1M
# keys took 3.2-4.4 s unbounded, 2.8-3.9 s bounded, with 10-25% less CPU (four runs, alternated;
# with 100 ms a page both took the same).
PARSING_LANES = 2
# Chunks taken ahead of the diff, their seen digests queued in PostgreSQL meanwhile.
DIGESTS_AHEAD = 2


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
    unchanged_chunks: int = 0  # found equal to what was seen, so not written
    lanes: int = 0
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
            f"in {self.chunks} chunk(s) ({self.unchanged_chunks} unchanged) over {self.lanes} "
            f"lane(s), {self.seconds:.1f}s; "
            f"changes: {changed or 'none'}"
        )


@dataclass(frozen=True)
class _LaneEnd:
    """A lane is listed to its end key; end None: to the end of the bucket."""

    end: str | None


@dataclass(frozen=True)
class _Page:
    """One listing page, judged: its considered objects and their digest records."""

    considered: pa.RecordBatch
    records: pa.Buffer
    listed: int
    last_key: str | None
    lane_end: _LaneEnd | None  # set on a lane's last page, when known with it


_Item = _Page | _LaneEnd | BaseException


def _judge(batch: pa.RecordBatch, rules: Rules, lane_end: _LaneEnd | None) -> _Page:
    keys = batch.column("key")
    mask = considered_mask(keys, rules)
    considered = batch if pc.all(mask).as_py() else batch.filter(mask)
    last_key = keys[-1].as_py() if batch.num_rows else None
    return _Page(considered, digest_records(considered), batch.num_rows, last_key, lane_end)


class _Lanes:
    """The tick's key range cut at `splits`, listed concurrently; pages come out in key order.

    Lane i lists (splits[i-1], splits[i]]: S3 lists after a key, and a lane stops at the first
    page going past its end, keeping only the keys up to it. The last lane has no end.
    """

    def __init__(
        self,
        bucket: Bucket,
        rules: Rules,
        start: str | None,
        splits: list[str],
        threads: int,
        lane_keys: int,
    ) -> None:
        self.bucket, self.rules = bucket, rules
        self.bounds = list(zip([start, *splits], [*splits, None], strict=True))
        self.stop = threading.Event()
        self.parsing = threading.BoundedSemaphore(PARSING_LANES)
        # A lane's queue holds all its pages (more only if the bucket grew there), so a lane
        # never waits for the diff; memory is bounded by the lanes started ahead of the diff.
        lane_pages = -(-lane_keys // bucket.page_size) + 2
        self.queues: list[queue.Queue[_Item]] = [
            queue.Queue(maxsize=lane_pages) for _ in self.bounds
        ]
        self.ahead = max(1, threads + threads // 2)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="lane")
        self.started = 0
        self._start_up_to(self.ahead)

    def _start_up_to(self, lanes: int) -> None:
        # In key order: the lane the diff waits on has always started first.
        while self.started < min(lanes, len(self.bounds)):
            self.pool.submit(self._list, self.started)
            self.started += 1

    def items(self) -> Iterator[_Page | _LaneEnd]:
        for i, lane in enumerate(self.queues):
            while True:
                item = lane.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, _LaneEnd) or item.lane_end is not None:
                    break
            self._start_up_to(i + 1 + self.ahead)

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _list(self, i: int) -> None:
        after, end = self.bounds[i]
        try:
            pages = self.bucket.list_batches(start_after=after, until=end)
            for batch in pages:
                with self.parsing:
                    within, reached = (batch, False) if end is None else _up_to(batch, end)
                    page = _judge(within, self.rules, _LaneEnd(end) if reached else None)
                if not self._put(i, page) or reached:
                    return
            self._put(i, _LaneEnd(end))
        except BaseException as exc:  # handed to the diff, which raises it
            self._put(i, exc)

    def _put(self, i: int, item: _Item) -> bool:
        """Queue an item, unless the tick stopped (then False)."""
        while not self.stop.is_set():
            try:
                self.queues[i].put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


def _up_to(batch: pa.RecordBatch, end: str) -> tuple[pa.RecordBatch, bool]:
    """The batch's keys up to `end`, and whether the lane is done: the batch reached `end`
    (when a page ends on it, as pages of a lane cut from the previous pass usually do, no
    request for the next page is made)."""
    keys = batch.column("key")
    keep = pc.less_equal(keys, end)  # UTF-8 byte order, as S3's and the "C" collation's
    if pc.all(keep).as_py():
        return batch, batch.num_rows > 0 and keys[-1].as_py() == end
    return batch.filter(keep), True


@dataclass
class _Chunk:
    """Pages taken from the lanes for one diff, and the key range they cover."""

    # The considered objects only: a page's digest records are done with once digested.
    batches: list[pa.RecordBatch] = field(default_factory=list)
    listed: int = 0
    considered: int = 0
    last_key: str | None = None
    lane_end: _LaneEnd | None = None
    digest: ListingDigest = field(default_factory=ListingDigest)

    @property
    def exhausted(self) -> bool:
        return self.lane_end is not None and self.lane_end.end is None

    @property
    def range_end(self) -> str | None:
        """The inclusive end of the key range this chunk covered; None: the bucket's end."""
        return self.lane_end.end if self.lane_end is not None else self.last_key

    @classmethod
    def taken(cls, items: Iterator[_Page | _LaneEnd], max_keys: int) -> _Chunk:
        """Pages until `max_keys` keys are listed (page by page, so maybe a few more) or the
        lane ends."""
        chunk = cls()
        while chunk.listed < max_keys:
            item = next(items)
            if isinstance(item, _LaneEnd):
                chunk.lane_end = item
                break
            chunk.batches.append(item.considered)
            chunk.digest.update(item.records)
            chunk.listed += item.listed
            chunk.considered += item.considered.num_rows
            chunk.last_key = item.last_key or chunk.last_key
            if item.lane_end is not None:
                chunk.lane_end = item.lane_end
                break
        return chunk

    def objects(self) -> pa.Table:
        return pa.Table.from_batches(self.batches, _SCHEMA)


_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("size", pa.int64()),
        ("etag", pa.string()),
        ("last_modified", pa.timestamp("us", tz="UTC")),
    ]
)


def scan(
    bucket: Bucket,
    conn: psycopg.Connection,
    rules: Rules,
    cursor: ScanCursor,
    *,
    max_keys: int = DEFAULT_TICK_KEYS,
    max_seconds: float = DEFAULT_TICK_SECONDS,
    chunk_keys: int = DEFAULT_CHUNK_KEYS,
    lane_keys: int = DEFAULT_LANE_KEYS,
    lanes: int = DEFAULT_LANES,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[ScanReport, ScanCursor]:
    """Continue the pass from `cursor` for at most `max_keys` keys or about `max_seconds`."""
    started = clock()
    report = ScanReport(started_after=cursor.start_after)
    after = cursor.start_after
    # No lane ends beyond the key budget: the last lane, open-ended, takes the rest.
    splits = split_keys(conn, bucket.name, after, lane_keys, max_keys - 1) if lanes > 1 else []
    listing = _Lanes(bucket, rules, after, splits, lanes, lane_keys)
    report.lanes = len(listing.bounds)
    # All statements go through one thread, in order: the connection is never shared.
    catalog = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog")
    try:
        ahead = _Ahead(listing.items(), catalog, conn, bucket.name, after, chunk_keys, max_keys)
        while True:
            pending = ahead.next()
            _diff_chunk(catalog, conn, bucket.name, pending, report)
            after = pending.chunk.range_end or after
            if pending.chunk.exhausted:
                report.pass_completed = True
                break
            if report.listed >= max_keys or clock() - started >= max_seconds:
                break
    finally:
        listing.close()
        catalog.shutdown(wait=True, cancel_futures=True)  # digests of chunks left untaken
    report.ended_at = after
    report.seconds = clock() - started
    return report, _next_cursor(cursor, report, after)


@dataclass(frozen=True)
class _Pending:
    """A chunk taken for the diff, with its range's seen digest on its way."""

    chunk: _Chunk
    after: str | None
    seen: Future[str]


class _Ahead:
    """Takes chunks from the listing a few ahead of the diff, and has PostgreSQL compute each
    one's seen digest as soon as its range is known: the digests overlap the listing.

    Taking a chunk has no effect on the catalog, so those still ahead when the tick stops are
    simply dropped; the digest of a range is not changed by the diff of another range.
    """

    def __init__(
        self,
        items: Iterator[_Page | _LaneEnd],
        catalog: ThreadPoolExecutor,
        conn: psycopg.Connection,
        bucket: str,
        after: str | None,
        chunk_keys: int,
        max_keys: int,
    ) -> None:
        self.items, self.catalog, self.conn, self.bucket = items, catalog, conn, bucket
        self.after, self.chunk_keys, self.max_keys = after, chunk_keys, max_keys
        self.listed = 0
        self.exhausted = False
        self.pending: deque[_Pending] = deque()
        self._fill()

    def next(self) -> _Pending:
        first = self.pending.popleft()
        self._fill()
        return first

    def _fill(self) -> None:
        while (
            len(self.pending) < DIGESTS_AHEAD and not self.exhausted and self.listed < self.max_keys
        ):
            chunk = _Chunk.taken(self.items, min(self.chunk_keys, self.max_keys - self.listed))
            upto = chunk.range_end
            seen = self.catalog.submit(seen_digest, self.conn, self.bucket, self.after, upto)
            self.pending.append(_Pending(chunk, self.after, seen))
            self.listed += chunk.listed
            self.after = upto or self.after
            self.exhausted = chunk.exhausted


def _diff_chunk(
    catalog: ThreadPoolExecutor,
    conn: psycopg.Connection,
    bucket: str,
    pending: _Pending,
    report: ScanReport,
) -> None:
    """Diff the chunk's range, unless its listing matches what was seen there."""
    chunk = pending.chunk
    if pending.seen.result() == chunk.digest.hexdigest():
        report.unchanged_chunks += 1
    else:
        objects, upto = chunk.objects(), chunk.range_end
        diff = catalog.submit(apply_listing_chunk, conn, bucket, objects, pending.after, upto)
        report.add(diff.result())
    report.chunks += 1
    report.listed += chunk.listed
    report.considered += chunk.considered


def _next_cursor(cursor: ScanCursor, report: ScanReport, after: str | None) -> ScanCursor:
    started_at = cursor.pass_started_at or datetime.now(UTC).isoformat()
    if report.pass_completed:
        return ScanCursor(None, cursor.pass_number + 1, None, 0)
    return ScanCursor(after, cursor.pass_number, started_at, cursor.listed_in_pass + report.listed)
