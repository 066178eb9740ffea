"""The listed objects' digest from Arrow buffers: it tells apart any two listings, and not two
splits of one listing into pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from media_import.core.batch_digest import batches_digest

T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)


def listing(rows: list[tuple[str, str | None, int, datetime]]) -> pa.RecordBatch:
    keys, etags, sizes, times = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.RecordBatch.from_pydict(
        {
            "key": pa.array(keys, pa.string()),
            "size": pa.array(sizes, pa.int64()),
            "etag": pa.array(etags, pa.string()),
            "last_modified": pa.array(times, pa.timestamp("us", tz="UTC")),
        }
    )


ROWS = [(f"BRD/VO-BRD-{n:05d}.json", f"{n:032x}", 100 + n, T0) for n in range(10)]


def test_the_same_objects_split_into_other_pages_have_the_same_digest() -> None:
    whole = listing(ROWS)
    expected = batches_digest([whole])
    assert batches_digest([whole.slice(0, 3), whole.slice(3, 5), whole.slice(8)]) == expected
    pages = [listing(ROWS[:4]), listing([]), listing(ROWS[4:])]
    assert batches_digest(pages) == expected
    assert batches_digest([whole.slice(2, 4)]) == batches_digest([listing(ROWS[2:6])])


def test_any_change_of_key_etag_size_or_time_changes_the_digest() -> None:
    base = batches_digest([listing(ROWS)])
    key, etag, size, when = ROWS[4]
    changed = [
        (key + "x", etag, size, when),
        (key, etag[:-1] + "f", size, when),
        (key, etag, size + 1, when),
        (key, etag, size, T0.replace(microsecond=1)),
        (key, None, size, when),
    ]
    digests = {batches_digest([listing([*ROWS[:4], row, *ROWS[5:]])]) for row in changed}
    assert len(digests) == len(changed) and base not in digests
    assert batches_digest([listing(ROWS[:9])]) != base  # one object fewer
    assert batches_digest([listing([])]) != base


def test_where_one_value_ends_and_the_next_begins_counts() -> None:
    a = listing([("ab", "", 1, T0), ("c", "x", 1, T0)])
    b = listing([("a", "", 1, T0), ("bc", "x", 1, T0)])
    c = listing([("ab", "x", 1, T0), ("c", "", 1, T0)])
    assert len({batches_digest([a]), batches_digest([b]), batches_digest([c])}) == 3
    # A missing ETag is not an empty one.
    assert batches_digest([listing([("k", None, 1, T0)])]) != batches_digest(
        [listing([("k", "", 1, T0)])]
    )
