"""Phase 1 in the database: a folder's listing, with each key's verdict, and what it says.

Pages arrive as Arrow record batches and leave as CSV written by Arrow's C++ writer into
COPY (media_import.db.arrow_csv): no Python object per key between S3 and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pyarrow as pa
from psycopg.types.json import Jsonb

from media_import.db.arrow_csv import to_csv
from media_import.db.catalog import analyze_if_grown
from media_import.db.watch import in_key_range

LISTING_COLUMNS = (
    "bucket",
    "folder",
    "key",
    "size_bytes",
    "etag",
    "last_modified",
    "listed_at",
    "considered",
    "inventory_code",
    "role",
    "rule",
    "message",
)


@dataclass(frozen=True)
class ListingPage:
    """One listing page (key, size, etag, last_modified) and its verdict columns."""

    objects: pa.RecordBatch
    verdicts: dict[str, pa.Array]


@dataclass(frozen=True)
class StagedRange:
    """One key range of a folder's staged listing (see migration 0006): its inclusive end key
    (None: the folder's end), the digests of what was listed in it and its figures."""

    upto: str | None
    listed_digest: str
    seen_digest: str
    found: int
    kept: int
    kept_bytes: int
    ignored: Counter[str]


def staged_ranges(conn: psycopg.Connection, bucket: str, folder: str) -> list[StagedRange]:
    """The folder's staged key ranges, in key order."""
    rows = conn.execute(
        "SELECT upto, listed_digest, seen_digest, found, kept, kept_bytes, ignored"
        " FROM ingest.listing_range WHERE bucket = %s AND folder = %s ORDER BY seq",
        (bucket, folder),
    ).fetchall()
    return [StagedRange(*row[:6], Counter(row[6])) for row in rows]


def clear_listing(conn: psycopg.Connection, bucket: str, folder: str) -> None:
    """Forget the folder's staged listing (before it is staged again from scratch)."""
    for table in ("listing", "listing_range"):
        conn.execute(
            f"DELETE FROM ingest.{table} WHERE bucket = %s AND folder = %s", (bucket, folder)
        )


def stage_range(
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    after: str | None,
    upto: str | None,
    pages: Iterable[ListingPage],
    listed_at: datetime,
    replace: bool = True,
) -> int:
    """Replace the folder's staged objects in the key range (after, upto] (None: the folder's
    start, end) with `pages`, every object with its verdict (ignored ones too: removals are
    judged against the whole bucket), in the caller's transaction, which holds the folder's
    lock and reads the CSV's times as UTC (`read_times_as_utc`). Returns the rows written.
    `replace=False`: the range holds no staged rows (its folder's were cleared)."""
    params = {"bucket": bucket, "folder": folder, "after": after, "upto": upto}
    if replace:
        conn.execute(
            f"DELETE FROM ingest.listing WHERE bucket = %(bucket)s AND {in_key_range()}",
            params,
            prepare=False,  # a generic plan cannot use the optional bounds
        )
    count = 0
    copy_sql = f"COPY ingest.listing ({', '.join(LISTING_COLUMNS)}) FROM STDIN (FORMAT csv)"
    with conn.cursor().copy(copy_sql) as copy:
        for page in pages:
            copy.write(to_csv(_rows(bucket, folder, page, listed_at)))
            count += page.objects.num_rows
    return count


def write_ranges(
    conn: psycopg.Connection, bucket: str, folder: str, ranges: Sequence[StagedRange]
) -> None:
    """Record the folder's staged key ranges, in key order, replacing the previous ones."""
    conn.execute(
        "DELETE FROM ingest.listing_range WHERE bucket = %s AND folder = %s", (bucket, folder)
    )
    conn.execute(
        "INSERT INTO ingest.listing_range (bucket, folder, seq, upto, listed_digest,"
        " seen_digest, found, kept, kept_bytes, ignored)"
        " SELECT %s, %s, seq - 1, upto, listed, seen, found, kept, kept_bytes, ignored"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::bigint[],"
        " %s::jsonb[]) WITH ORDINALITY AS r(upto, listed, seen, found, kept, kept_bytes,"
        " ignored, seq)",
        (
            bucket,
            folder,
            [r.upto for r in ranges],
            [r.listed_digest for r in ranges],
            [r.seen_digest for r in ranges],
            [r.found for r in ranges],
            [r.kept for r in ranges],
            [r.kept_bytes for r in ranges],
            [Jsonb(dict(r.ignored)) for r in ranges],
        ),
    )


def _rows(bucket: str, folder: str, page: ListingPage, listed_at: datetime) -> pa.Table:
    n, objects = page.objects.num_rows, page.objects
    columns = {
        "bucket": pa.repeat(bucket, n),
        "folder": pa.repeat(folder, n),
        "key": objects.column("key"),
        "size_bytes": objects.column("size"),
        "etag": objects.column("etag"),
        "last_modified": objects.column("last_modified"),
        "listed_at": pa.repeat(pa.scalar(listed_at, pa.timestamp("us", tz="UTC")), n),
        **page.verdicts,
    }
    return pa.table([columns[name] for name in LISTING_COLUMNS], names=list(LISTING_COLUMNS))


# The columns the per-folder queries filter and join the listing on.
_LISTING_STATISTICS = "bucket, folder, considered, rule, inventory_code, key"


def analyze_staged(
    conn: psycopg.Connection, bucket: str, staged: Mapping[str, tuple[int, int]]
) -> bool:
    """After a run has staged its folders' listings (`staged`: folder -> rows written, rows
    it holds), once: refresh the listing's statistics if the rows written are a tenth of the
    table, or a folder holds many rows its statistics do not know of. Every later step
    queries the listing folder by folder; one folder taken for empty had its anti-join
    planned as nested loops. Once per run rather than per folder, and only on the columns
    queried: ANALYZE of the whole table cost 80-180 ms a folder at 100k-1M keys."""
    return analyze_if_grown(
        conn,
        "ingest.listing",
        sum(written for written, _ in staged.values()),
        _LISTING_STATISTICS,
        {folder: rows for folder, (_, rows) in staged.items()},
        bucket,
    )


# -- validation: what the staged verdicts say ------------------------------------------------


@dataclass(frozen=True)
class StagedRejection:
    key: str
    inventory_code: str | None
    rule: str
    message: str


def count_valid(conn: psycopg.Connection, bucket: str, folder: str) -> int:
    """The folder's valid staged files: its considered ones (its ranges' figures, written
    with them) but the rejected ones (a partial index's few rows). Counting the folder's rows
    instead cost ~20 ms a 63k-key folder, twice a run (phases 1 and 2)."""
    row = conn.execute(
        "SELECT coalesce((SELECT sum(kept) FROM ingest.listing_range"
        "                 WHERE bucket = %(bucket)s AND folder = %(folder)s), 0)"
        " - (SELECT count(*) FROM ingest.listing WHERE bucket = %(bucket)s"
        "    AND folder = %(folder)s AND considered AND rule IS NOT NULL)",
        {"bucket": bucket, "folder": folder},
    ).fetchone()
    return int(row[0]) if row else 0


def rejected(conn: psycopg.Connection, bucket: str, folder: str) -> list[StagedRejection]:
    rows = conn.execute(
        "SELECT key, inventory_code, rule, coalesce(message, '') FROM ingest.listing"
        " WHERE bucket = %s AND folder = %s AND considered AND rule IS NOT NULL ORDER BY key",
        (bucket, folder),
    ).fetchall()
    return [StagedRejection(*row) for row in rows]


def kept_by_folder(conn: psycopg.Connection, bucket: str, folders: Sequence[str]) -> dict[str, int]:
    """The considered keys of each folder's staged listing (from its range summaries)."""
    rows = conn.execute(
        "SELECT folder, sum(kept) FROM ingest.listing_range"
        " WHERE bucket = %s AND folder = ANY(%s) GROUP BY folder",
        (bucket, list(folders)),
    ).fetchall()
    return {folder: int(kept) for folder, kept in rows}
