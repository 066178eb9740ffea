"""Phase 1 in the database: a folder's listing, with each key's verdict, and what it says.

Pages arrive as Arrow record batches and leave as CSV written by Arrow's C++ writer into
COPY (media_import.db.arrow_csv): no Python object per key between S3 and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pyarrow as pa

from media_import.db.arrow_csv import read_times_as_utc, to_csv
from media_import.db.catalog import analyze_if_grown, lock_folder

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


def replace_listing(
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    pages: Iterable[ListingPage],
    listed_at: datetime,
) -> int:
    """Stage the folder's listing, every object with its verdict (ignored ones too: removals
    are judged against the whole bucket), streamed page by page into COPY."""
    copy_sql = f"COPY ingest.listing ({', '.join(LISTING_COLUMNS)}) FROM STDIN (FORMAT csv)"
    count = 0
    with conn.transaction():
        lock_folder(conn, bucket, folder)
        read_times_as_utc(conn)  # the CSV's times are UTC without a zone
        conn.execute(
            "DELETE FROM ingest.listing WHERE bucket = %s AND folder = %s", (bucket, folder)
        )
        with conn.cursor().copy(copy_sql) as copy:
            for page in pages:
                copy.write(to_csv(_rows(bucket, folder, page, listed_at)))
                count += page.objects.num_rows
        # Not after every folder: a re-listed folder replaces its rows with as many alike, and
        # sampling the whole table each time cost ~80 ms a folder at 1M keys.
        analyze_if_grown(conn, "ingest.listing", count)
    return count


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


# -- validation: what the staged verdicts say ------------------------------------------------


@dataclass(frozen=True)
class StagedRejection:
    key: str
    inventory_code: str | None
    rule: str
    message: str


def count_valid(conn: psycopg.Connection, bucket: str, folder: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM ingest.listing"
        " WHERE bucket = %s AND folder = %s AND considered AND rule IS NULL",
        (bucket, folder),
    ).fetchone()
    return int(row[0]) if row else 0


def rejected(conn: psycopg.Connection, bucket: str, folder: str) -> list[StagedRejection]:
    rows = conn.execute(
        "SELECT key, inventory_code, rule, coalesce(message, '') FROM ingest.listing"
        " WHERE bucket = %s AND folder = %s AND considered AND rule IS NOT NULL ORDER BY key",
        (bucket, folder),
    ).fetchall()
    return [StagedRejection(*row) for row in rows]
