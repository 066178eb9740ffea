"""Discovery, incrementally: a folder's listing staged in key ranges, only changed ones rewritten.

The folder is listed whole, in S3's key order, and its pages are cut at the ends of the key
ranges its previous listing was staged in (`ingest.listing_range`). A range whose objects
(key, ETag, size and time, hashed from their Arrow buffers) are those staged for it last time
is not judged, written or diffed again: its staged rows and verdicts, and its figures, stand.
A changed range is judged (vectorised, `judge_page`), its staged rows replaced, and diffed
against the seen objects in its key range only. So every object stays staged, ignored ones
too (removals are judged against the whole bucket); verdicts, overwritten objects and
removals come out as a full re-staging gives them.

The seen objects (`ingest.bucket_object`) of an unchanged range need no diff while nothing
else changed them: every writer of the seen objects bumps the folder's generation with its
change, and the staging transaction records the generation its diff left them at
(`record_listing_state`). When the generation moved on (a sensor saw a change), each
unchanged range's seen digest is compared with its staged one, as a reconciliation pass does
(the same digest, `digest_records`), and only a range that differs is diffed.

A range grows by being cut once it holds 2 x `range_keys` keys; the first listing of a folder
(or one under other rules: the verdicts would differ) stages it from scratch in ranges of
`range_keys` keys. Everything is written in one transaction under the folder's lock.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.batch_digest import batches_digest
from media_import.core.inventory import Rules
from media_import.core.verdicts import judge_page
from media_import.db import listing, scope, watch
from media_import.db.arrow_csv import read_times_as_utc
from media_import.db.catalog import lock_folder
from media_import.db.listing import ListingPage, StagedRange
from media_import.db.watch import ListingDigest, digest_records

# Keys per staged range: a changed range costs its keys' judging, COPY and diff; an unchanged
# one costs nothing but its listing. 1,000 keys make ~63 ranges of a 63k-key folder (a row
# each in ingest.listing_range), so that the few places new objects arrive at rewrite little:
# new codes arrive at the end of each of a folder's code prefixes (AC, AO, VC, VO), four
# ranges. Smaller ranges cost a COPY each when a folder is first staged.
RANGE_KEYS = 1_000
# Bumped when what judging stages for a key changes, so that listings staged by older code
# are staged again rather than reused.
VERDICTS_VERSION = 1


def rules_fingerprint(rules: Rules) -> str:
    """What the staged verdicts depend on besides the keys: the rules and the code's version."""
    text = json.dumps(
        {
            "verdicts": VERDICTS_VERSION,
            "allowed_extensions": sorted(rules.allowed_extensions),
            "excluded_folders": sorted(rules.excluded_folders),
            "folder_types": {f: sorted(t) for f, t in sorted(rules.folder_types.items())},
        },
        sort_keys=True,
    )
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# -- cutting the listing into ranges (pure Arrow) ----------------------------------------------


@dataclass
class Cut:
    """The listed objects of one key range (after, upto]; `staged`: the index of the staged
    range with exactly these bounds, if any (only then can the two be compared)."""

    after: str | None
    upto: str | None
    staged: int | None
    batches: list[pa.RecordBatch] = field(default_factory=list)

    @property
    def found(self) -> int:
        return sum(b.num_rows for b in self.batches)


def cut_ranges(
    batches: Iterable[pa.RecordBatch], bounds: list[str | None], range_keys: int
) -> Iterator[Cut]:
    """The listing's batches (in key order) cut at `bounds`, the inclusive ends of the staged
    ranges (the last None: to the end), one Cut per range, empty ones included. A range
    holding 2 x `range_keys` keys is cut after its first `range_keys` keys (a new range)."""
    staged = bool(bounds)  # without staged ranges, no Cut has one to be compared with
    bounds = bounds or [None]
    index = 0
    current = Cut(None, bounds[0], 0 if staged else None)
    held = 0
    for batch in batches:
        while batch.num_rows:
            bound = bounds[index]
            keys = batch.column("key")
            if bound is not None and keys[-1].as_py() > bound:
                within = pc.sum(pc.less_equal(keys, bound)).as_py() or 0
            else:
                within = batch.num_rows
            take = min(within, 2 * range_keys - held)
            if take:
                current.batches.append(batch.slice(0, take))
                held += take
                batch = batch.slice(take)
            if held >= 2 * range_keys:  # too big: the first range_keys keys become a range
                first, rest = _split(current.batches, range_keys)
                upto = _last_key(first)
                yield Cut(current.after, upto, None, first)
                current = Cut(upto, bound, None, rest)
                held = sum(b.num_rows for b in rest)
            elif batch.num_rows:  # the batch goes past the bound: the range is complete
                yield current
                index += 1
                current = Cut(bound, bounds[index], index)
                held = 0
    yield current
    for i in range(index + 1, len(bounds)):  # staged ranges past the listing's end: empty now
        yield Cut(bounds[i - 1], bounds[i], i)


def _split(
    batches: list[pa.RecordBatch], keys: int
) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    first: list[pa.RecordBatch] = []
    rest: list[pa.RecordBatch] = []
    left = keys
    for b in batches:
        if left >= b.num_rows:
            first.append(b)
            left -= b.num_rows
        elif left > 0:
            first.append(b.slice(0, left))
            rest.append(b.slice(left))
            left = 0
        else:
            rest.append(b)
    return first, rest


def _last_key(batches: list[pa.RecordBatch]) -> str:
    last = next(b for b in reversed(batches) if b.num_rows)
    return str(last.column("key")[-1].as_py())


# -- staging a folder ----------------------------------------------------------------------


@dataclass
class Staged:
    """What staging a folder's listing did, and the folder's figures."""

    found: int = 0
    kept: int = 0
    kept_bytes: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    ranges: int = 0
    ranges_restaged: int = 0
    ranges_rediffed: int = 0  # unchanged ranges whose seen objects had moved
    rows_written: int = 0
    seen_changed: int = 0  # seen objects the diffs changed
    covered_generation: int = 0

    def add(self, r: StagedRange) -> None:
        self.found += r.found
        self.kept += r.kept
        self.kept_bytes += r.kept_bytes
        self.ignored.update(r.ignored)
        self.ranges += 1


def stage_folder(
    batches: Iterable[pa.RecordBatch],
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    rules: Rules,
    generation_before: int,
    listed_at: datetime,
    range_keys: int = RANGE_KEYS,
) -> Staged:
    """Stage the folder's listing (`batches`, in key order, as the bucket lists them) range by
    range, diff what changed against the seen objects and record the generation covered, in
    one transaction. `generation_before`: the folder's generation read before listing."""
    fingerprint = rules_fingerprint(rules)
    staged = Staged()
    with conn.transaction():
        lock_folder(conn, bucket, folder)
        read_times_as_utc(conn)  # the CSV's times are UTC without a zone
        state = watch.listing_state(conn, bucket, folder)
        previous = listing.staged_ranges(conn, bucket, folder)
        afresh = state is None or state.rules != fingerprint or not previous
        if afresh:
            listing.clear_listing(conn, bucket, folder)
            previous = []
        # The seen objects are the staged listing's while the generation has not moved.
        synced = state is not None and state.generation == generation_before
        ranges: list[StagedRange] = []
        restaged: list[scope.KeyRange] = [(None, None)] if afresh else []
        changed = 0  # seen objects changed by the diffs
        for cut in cut_ranges(batches, [r.upto for r in previous], range_keys):
            before = previous[cut.staged] if cut.staged is not None else None
            listed = batches_digest(cut.batches)  # key, ETag, size and time
            if before is not None and before.listed_digest == listed:
                if not synced and before.seen_digest != watch.seen_digest(
                    conn, bucket, cut.after, cut.upto, folder
                ):
                    changed += watch.diff_staged_range(conn, bucket, folder, cut.after, cut.upto)
                    staged.ranges_rediffed += 1
                now = before
            else:
                now = _restage(conn, bucket, folder, rules, cut, listed, listed_at, staged, afresh)
                if not afresh:
                    restaged.append((cut.after, cut.upto))
                seen_moved = before is None or not synced or before.seen_digest != now.seen_digest
                if seen_moved and not afresh:  # afresh: the whole folder is diffed at once
                    changed += watch.diff_staged_range(conn, bucket, folder, cut.after, cut.upto)
            if now.found or now.upto is None:  # an emptied range joins the next one
                ranges.append(now)
                staged.add(now)
        if afresh:  # one pass over the folder rather than one per range
            changed += watch.diff_staged_range(conn, bucket, folder, None, None)
        listing.write_ranges(conn, bucket, folder, ranges)
        # What the folder's next plan has to read again (media_import.db.scope).
        scope.record_restaged(conn, bucket, folder, restaged)
        # Statistics are refreshed once per run, after all its folders (phases.analyze_discovered):
        # ANALYZE after each folder cost 80-190 ms a folder for each table at 100k-1M keys.
        staged.seen_changed = changed
        staged.covered_generation = watch.record_listing_state(
            conn, bucket, folder, generation_before, changed > 0, fingerprint
        )
    return staged


def _restage(
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    rules: Rules,
    cut: Cut,
    listed: str,
    listed_at: datetime,
    staged: Staged,
    afresh: bool,
) -> StagedRange:
    """Judge the range's objects, replace its staged rows with them (`afresh`: the folder's
    listing was cleared, there are none); its new StagedRange."""
    pages: list[ListingPage] = []
    seen = ListingDigest()
    kept = kept_bytes = 0
    ignored: Counter[str] = Counter()
    for objects in cut.batches:
        verdicts = judge_page(objects.column("key"), folder, rules)
        considered = verdicts.considered
        seen.update(digest_records(objects.filter(considered)))
        kept += pc.sum(considered).as_py() or 0
        kept_bytes += pc.sum(pc.filter(objects.column("size"), considered)).as_py() or 0
        ignored.update(verdicts.ignored)
        pages.append(ListingPage(objects, verdicts.columns))
    staged.rows_written += listing.stage_range(
        conn, bucket, folder, cut.after, cut.upto, pages, listed_at, replace=not afresh
    )
    staged.ranges_restaged += 1
    return StagedRange(
        cut.upto,
        listed,
        seen.hexdigest(),
        cut.found,
        kept,
        kept_bytes,
        ignored,
    )
