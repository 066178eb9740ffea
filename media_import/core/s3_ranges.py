"""A listing cut into key ranges fetched in parallel, its pages still coming out in key order.

S3 lists 1000 keys a request, each request starting after a key, so one listing is a chain of
round trips: a 62.5k-key folder at 100 ms a page is 6 s. Ranges are listed side by side
instead, each with `start-after` its lower bound, and cut at its upper bound:

* bounds known beforehand (the ranges the folder's previous listing was staged in) make the
  first ranges;
* otherwise, and wherever a range turns out longer than a page, its first page tells how
  densely keys lie there, and the rest of the range is cut at the keys that density puts a
  page apart (`page_apart`), as many as there are idle workers. Archive keys are numbered
  (`BRD/VO-BRD-00012.json`), so positions where a page's first and last keys both hold digits
  count in tens: the guesses land on real keys, not on punctuation between them. A guess
  past the data costs one request that finds nothing; each page refines the next guesses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.s3_listing import PAGE_KEYS, Page

MAX_POSITIONS = 32  # characters that guesses are computed over
CARRY_POSITIONS = 8  # of which before the first one where a page's first and last keys differ
_PRINTABLE = 95  # " " to "~"


@dataclass
class _Range:
    after: str  # listed from after this key
    end: str | None  # up to and including this key; None: to the end of the listing
    batches: list[pa.RecordBatch] = field(default_factory=list)
    done: bool = False
    busy: bool = False


def list_in_ranges(
    fetch: Callable[[str], Page],
    start_after: str,
    bounds: Sequence[str],
    workers: int,
) -> Iterator[pa.RecordBatch]:
    """Every page of the listing after `start_after`, in key order, fetched `workers` at a
    time over ranges cut at `bounds` (sorted keys; may be empty) and refined as pages come."""
    cuts = [b for b in sorted(set(bounds)) if b > start_after]
    ranges = [_Range(a, e) for a, e in zip([start_after, *cuts], [*cuts, None], strict=True)]
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="list")
    running: dict[Future[Page], _Range] = {}
    try:
        while ranges:
            head = ranges[0]
            while head.batches:
                yield head.batches.pop(0)
            if head.done:
                ranges.pop(0)
                continue
            for r in ranges:
                if len(running) >= workers:
                    break
                if not r.done and not r.busy:
                    r.busy = True
                    running[pool.submit(fetch, r.after)] = r
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                r = running.pop(future)
                r.busy = False
                _take(ranges, r, future.result(), workers - len(running))
    finally:
        for future in running:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _take(ranges: list[_Range], r: _Range, page: Page, idle: int) -> None:
    """Add a page to its range; end the range, or cut what is left of it for idle workers."""
    batch = page.batch
    beyond = None
    if r.end is not None and batch.num_rows:
        keys = batch.column("key")
        if keys[-1].as_py() >= r.end:
            within = pc.less_equal(keys, r.end)  # UTF-8 byte order, as S3's
            beyond = batch.filter(pc.invert(within))
            batch = batch.filter(within)
            r.done = True
    if batch.num_rows:
        r.batches.append(batch)
    if beyond is not None and beyond.num_rows:
        _absorb(ranges, r, beyond, page.last_key)
    if page.last:
        r.done = True
        # Nothing lies beyond the page's last key: ranges starting there are empty.
        end_of_listing = page.last_key or r.after
        for later in ranges[ranges.index(r) + 1 :]:
            if later.after >= end_of_listing and not later.busy:
                later.done = True
    if r.done:
        return
    first, last = page.batch.column("key")[0].as_py(), page.last_key
    assert last is not None  # a page with more to come holds keys
    r.after = last
    waiting = sum(1 for x in ranges if not x.done and not x.busy and x is not r)
    spare = idle - waiting - 1  # one worker goes on with this range
    if spare <= 0 or page.batch.num_rows < 2:
        return
    cuts = page_apart(first, last, page.batch.num_rows, r.end, spare)
    if not cuts:
        return
    at = ranges.index(r)
    ends = [*cuts[1:], r.end]
    ranges[at + 1 : at + 1] = [_Range(a, e) for a, e in zip(cuts, ends, strict=True)]
    r.end = cuts[0]


def _absorb(ranges: list[_Range], r: _Range, beyond: pa.RecordBatch, last: str | None) -> None:
    """The page's keys past its range are every key up to `last` from where the next ranges
    start: they fill those ranges (while none of them is being listed) instead of being
    asked for again."""
    assert last is not None
    for later in ranges[ranges.index(r) + 1 :]:
        if later.busy or later.done or later.batches:
            return
        keys = beyond.column("key")
        if later.end is not None and last >= later.end:
            within = pc.less_equal(keys, later.end)
            taken, beyond = beyond.filter(within), beyond.filter(pc.invert(within))
            later.done = True
        else:
            taken, beyond = beyond, beyond.slice(0, 0)
            later.after = last
        if taken.num_rows:
            later.batches.append(taken)
        if not later.done:
            return


def page_apart(first: str, last: str, count: int, end: str | None, wanted: int) -> list[str]:
    """Up to `wanted` keys after `last` (and before `end`), a page of keys apart if keys
    go on as densely as `count` keys did from `first` to `last`."""
    # From a little before where the two keys part, so that a guess can carry into it
    # (from ...00999 to ...01000).
    stop = max(0, len(_common(first, last)) - CARRY_POSITIONS)
    radices = _radices(first, last, stop)
    low, high = _value(first, stop, radices), _value(last, stop, radices)
    step = (high - low) * PAGE_KEYS // max(1, count - 1)
    if step <= 0:
        return []
    head = last[:stop]
    cuts: list[str] = []
    previous = last
    for i in range(1, wanted + 1):
        key = _string(head, high + step * i, radices)
        if key is None or key <= previous or (end is not None and key >= end):
            break
        cuts.append(key)
        previous = key
    return cuts


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _radices(a: str, b: str, start: int) -> list[int]:
    width = min(MAX_POSITIONS, max(len(a), len(b)) - start)
    return [
        10 if _digit(a, start + i) and _digit(b, start + i) else _PRINTABLE for i in range(width)
    ]


def _digit(s: str, i: int) -> bool:
    return i < len(s) and s[i].isascii() and s[i].isdigit()


def _value(s: str, start: int, radices: list[int]) -> int:
    value = 0
    for i, radix in enumerate(radices):
        c = s[start + i] if start + i < len(s) else None
        if c is None:
            d = 0
        elif radix == 10:
            d = ord(c) - 48 if c.isascii() and c.isdigit() else 0
        else:
            d = min(max(ord(c) - 32, 0), _PRINTABLE - 1)
        value = value * radix + d
    return value


def _string(head: str, value: int, radices: list[int]) -> str | None:
    """The key `value` stands for; None when it lies beyond what the positions can hold."""
    digits = []
    for radix in reversed(radices):
        value, d = divmod(value, radix)
        digits.append(chr(48 + d) if radix == 10 else chr(32 + d))
    if value:  # carried past the first position: beyond the common part
        return None
    return (head + "".join(reversed(digits))).rstrip(" ")
