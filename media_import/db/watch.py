"""SQL of the bucket watchers: the objects seen, the folders' change generations, the inbox.

Both sensors write what they observe into `ingest.bucket_object` and bump the generation of
each folder that changed; a folder needs an import while its generation is ahead of the one
its last successful import covered. Runs are requested from that state, not from what one tick
happened to see, so a change observed by a tick that crashed before requesting is not lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.inventory import folders_of
from media_import.db.arrow_csv import read_times_as_utc, to_csv
from media_import.db.catalog import analyze_if_grown, analyze_if_large

# -- folder generations ---------------------------------------------------------------------


def current_generation(conn: psycopg.Connection, bucket: str, folder: str) -> int:
    row = conn.execute(
        "SELECT generation FROM ingest.folder_state WHERE bucket = %s AND folder = %s",
        (bucket, folder),
    ).fetchone()
    return int(row[0]) if row else 0


def mark_imported(conn: psycopg.Connection, bucket: str, folder: str, run_id: str) -> None:
    """Record that the folder is imported up to the generation its listing started from."""
    conn.execute(
        """
        INSERT INTO ingest.folder_state AS fs
            (bucket, folder, imported_generation, imported_at, imported_run_id)
        SELECT bucket, folder, generation, now(), %(run_id)s FROM ingest.listing_state
        WHERE bucket = %(bucket)s AND folder = %(folder)s
        ON CONFLICT (bucket, folder) DO UPDATE SET
            imported_generation = greatest(fs.imported_generation, EXCLUDED.imported_generation),
            imported_at = EXCLUDED.imported_at, imported_run_id = EXCLUDED.imported_run_id
        """,
        {"bucket": bucket, "folder": folder, "run_id": run_id},
    )


@dataclass(frozen=True)
class DirtyFolder:
    folder: str
    generation: int
    imported_generation: int
    changed_at: datetime | None


def dirty_folders(conn: psycopg.Connection, bucket: str) -> list[DirtyFolder]:
    """Folders changed since their last successful import, oldest change first."""
    rows = conn.execute(
        "SELECT folder, generation, imported_generation, changed_at FROM ingest.folder_state"
        " WHERE bucket = %s AND generation > imported_generation ORDER BY changed_at, folder",
        (bucket,),
    ).fetchall()
    return [DirtyFolder(*row) for row in rows]


def bump_folders(conn: psycopg.Connection, bucket: str, folders: Sequence[str]) -> None:
    """Record a change in each folder: its generation moves ahead of the last import's."""
    if folders:
        conn.execute(
            "INSERT INTO ingest.folder_state AS fs (bucket, folder, generation, changed_at)"
            " SELECT %s, folder, 1, now() FROM unnest(%s::text[]) AS f(folder)"
            " ON CONFLICT (bucket, folder) DO UPDATE"
            " SET generation = fs.generation + 1, changed_at = now()",
            (bucket, list(folders)),
        )


# -- reconciliation: one listing chunk against what was seen ------------------------------------


@dataclass(frozen=True)
class FolderChanges:
    added: int = 0
    modified: int = 0
    removed: int = 0

    @property
    def total(self) -> int:
        return self.added + self.modified + self.removed


# A folder's keys are those starting with "<folder>/": in S3's byte order, the keys from
# "<folder>/" up to (not including) "<folder>0" ("0" follows "/"). Bounding a folder's key range
# by them lets the primary key's index serve it, where `folder = ...` alone cannot.
_KEY_RANGE = """({alias}key > %(after)s::text COLLATE "C" OR %(after)s::text IS NULL)
      AND ({alias}key <= %(upto)s::text COLLATE "C" OR %(upto)s::text IS NULL)
      AND (%(folder)s::text IS NULL OR ({alias}folder = %(folder)s::text
           AND {alias}key >= %(folder)s::text || '/' AND {alias}key < %(folder)s::text || '0'))"""


def in_key_range(alias: str = "") -> str:
    """SQL: the row's key is in (%(after)s, %(upto)s] (None: unbounded) and, with %(folder)s
    set, in that folder; `alias` with its dot, e.g. "bo."."""
    return _KEY_RANGE.format(alias=alias)


# A listed object into the seen objects (`bo`): added, or changed if its ETag or size did.
_UPSERT_LISTED = """ON CONFLICT (bucket, key) DO UPDATE SET
        folder = EXCLUDED.folder, present = true, etag = EXCLUDED.etag,
        size_bytes = EXCLUDED.size_bytes, last_modified = EXCLUDED.last_modified,
        sequencer = NULL, changed_at = now()
    -- Only a real change counts: same ETag and size is the same object, whatever its time.
    WHERE NOT bo.present OR bo.etag IS DISTINCT FROM EXCLUDED.etag
       OR bo.size_bytes IS DISTINCT FROM EXCLUDED.size_bytes
"""

_CHUNK_DIFF_SQL = f"""
WITH upserted AS (
    INSERT INTO ingest.bucket_object AS bo
        (bucket, key, folder, present, etag, size_bytes, last_modified, sequencer, changed_at)
    SELECT %(bucket)s, key, folder, true, etag, size_bytes, last_modified, NULL, now()
    FROM listing_chunk ORDER BY key  -- one lock order for every writer: no deadlocks
    {_UPSERT_LISTED}    RETURNING bo.folder, (xmax = 0) AS added
), removed AS (
    -- Seen inside the chunk's key range, but not listed in it: gone from the bucket.
    UPDATE ingest.bucket_object bo SET present = false, etag = NULL, size_bytes = NULL,
        last_modified = now(), sequencer = NULL, changed_at = now()
    WHERE bo.bucket = %(bucket)s AND bo.present AND {in_key_range("bo.")}
      AND NOT EXISTS (SELECT 1 FROM listing_chunk c WHERE c.key = bo.key)
    RETURNING bo.folder
)
SELECT folder, count(*) FILTER (WHERE kind = 'added'), count(*) FILTER (WHERE kind = 'modified'),
       count(*) FILTER (WHERE kind = 'removed')
FROM (
    SELECT folder, CASE WHEN added THEN 'added' ELSE 'modified' END AS kind FROM upserted
    UNION ALL SELECT folder, 'removed' FROM removed
) changes
GROUP BY folder
"""


def apply_listing_chunk(
    conn: psycopg.Connection,
    bucket: str,
    objects: pa.Table,
    after: str | None,
    upto: str | None,
) -> dict[str, FolderChanges]:
    """Diff one listed key range (after, upto] against the seen objects, in one transaction.

    `objects` are the considered objects listed in that range (key, size, etag,
    last_modified); upto None is the end of the bucket. Returns the changes per folder,
    whose generations are bumped in the same transaction.
    """
    with conn.transaction():
        read_times_as_utc(conn)  # the CSV's times are UTC without a zone
        conn.execute(
            'CREATE TEMP TABLE listing_chunk (key text COLLATE "C" PRIMARY KEY, folder text,'
            " etag text, size_bytes bigint, last_modified timestamptz) ON COMMIT DROP"
        )
        with conn.cursor().copy(
            "COPY listing_chunk (key, folder, etag, size_bytes, last_modified)"
            " FROM STDIN (FORMAT csv)"
        ) as copy:
            copy.write(_csv(objects))
        # temporary tables are never autovacuumed
        analyze_if_large(conn, "listing_chunk", objects.num_rows)
        params = {"bucket": bucket, "after": after, "upto": upto, "folder": None}
        changes = _diff(conn, params)
        bump_folders(conn, bucket, sorted(changes))
    return changes


def _csv(objects: pa.Table) -> bytes:
    keys = objects.column("key")
    table = pa.table(
        [
            keys,
            folders_of(keys.combine_chunks()),
            objects.column("etag"),
            objects.column("size"),
            objects.column("last_modified"),
        ],
        names=["key", "folder", "etag", "size_bytes", "last_modified"],
    )
    return to_csv(table)


# -- reconciliation's shortcut: a key range whose listing matches what was seen -------------
#
# A listed range's considered objects and the present seen objects in the same range are
# summarised as the MD5 of their records in key order (S3's UTF-8 byte order, which is the "C"
# collation's), separated by ";": "<key bytes>:<key>:<etag bytes>:<etag>:<size>", "-" standing
# for a missing ETag (or size). The length prefixes make the text spell out one list of
# objects only, whatever the keys contain. Equal digests mean the diff would change nothing.

_SEEN_DIGEST_SQL = f"""
SELECT md5(coalesce(string_agg(
    octet_length(key) || ':' || key || ':' || coalesce(octet_length(etag)::text, '-')
        || ':' || coalesce(etag, '-') || ':' || coalesce(size_bytes::text, '-'),
    ';' ORDER BY key), ''))
FROM ingest.bucket_object
WHERE bucket = %(bucket)s AND present AND {in_key_range()}
"""


def seen_digest(
    conn: psycopg.Connection,
    bucket: str,
    after: str | None,
    upto: str | None,
    folder: str | None = None,
) -> str:
    """The digest of the present seen objects in the key range (after, upto] (upto None:
    to the end; with `folder`, of that folder only), to compare with the `ListingDigest` of
    the range's listing."""
    params = {"bucket": bucket, "after": after, "upto": upto, "folder": folder}
    # Never a prepared statement: its generic plan cannot bound the index scan by an optional
    # (after, upto] and scans the whole table instead.
    row = conn.execute(_SEEN_DIGEST_SQL, params, prepare=False).fetchone()
    return str(row[0])  # type: ignore[index]


def digest_records(objects: pa.RecordBatch) -> pa.Buffer:
    """The listed objects' records (see above), joined, computed by Arrow."""
    keys, etags = objects.column("key"), objects.column("etag")
    sizes = pc.cast(objects.column("size"), pa.string())
    records = pc.binary_join_element_wise(
        _length(keys), keys, _length(etags), etags, sizes, ":",
        null_handling="replace", null_replacement="-",
    )  # fmt: skip
    joined = pc.binary_join(pa.ListArray.from_arrays([0, len(records)], records), ";")
    return joined[0].as_buffer() or pa.py_buffer(b"")


def _length(strings: pa.Array) -> pa.StringArray:
    return pc.cast(pc.binary_length(strings), pa.string())  # bytes, as octet_length counts


class ListingDigest:
    """The digest of a listed range's considered objects, fed page by page in key order.

    The pages' records are hashed once, when the digest is asked for: hashlib gives up the
    GIL for every large buffer it hashes, and winning it back from the eight threads listing
    and judging pages takes one or more switch intervals (5 ms each). Sampled with py-spy, a
    1M reconciliation pass's diff thread spent ~3.5 s at those calls hashing page by page, and
    ~1.7 s hashing once a range."""

    def __init__(self) -> None:
        self._pages: list[pa.Buffer] = []

    def update(self, records: pa.Buffer) -> None:
        """Add a page's `digest_records` (a record is never empty, a page without any is)."""
        if records.size:
            self._pages.append(records)

    def hexdigest(self) -> str:
        return hashlib.md5(b";".join(self._pages), usedforsecurity=False).hexdigest()


def split_keys(
    conn: psycopg.Connection, bucket: str, after: str | None, every: int, limit: int
) -> list[str]:
    """Every `every`-th seen key after `after` among the next `limit`, in key order: where
    the previous pass found the bucket's keys, so the ends of about equal key ranges."""
    if limit < every:
        return []
    # Hops of `every` keys along the primary key's index (index-only scans), ~4x cheaper than
    # numbering every key with a window function.
    rows = conn.execute(
        """
        WITH RECURSIVE hop (key, n) AS (
            SELECT (SELECT key FROM ingest.bucket_object
                    WHERE bucket = %(bucket)s
                      AND (%(after)s::text IS NULL OR key > %(after)s::text COLLATE "C")
                    ORDER BY key OFFSET %(skip)s LIMIT 1), 1
            UNION ALL
            SELECT (SELECT bo.key FROM ingest.bucket_object bo
                    WHERE bo.bucket = %(bucket)s AND bo.key > hop.key
                    ORDER BY bo.key OFFSET %(skip)s LIMIT 1), hop.n + 1
            FROM hop WHERE hop.key IS NOT NULL AND hop.n < %(hops)s
        )
        SELECT key FROM hop WHERE key IS NOT NULL ORDER BY key
        """,
        {"bucket": bucket, "after": after, "skip": every - 1, "hops": limit // every},
        prepare=False,  # as seen_digest's: a generic plan cannot use the optional bound
    ).fetchall()
    return [row[0] for row in rows]


def _diff(
    conn: psycopg.Connection, params: dict[str, object], analyze: bool = True
) -> dict[str, FolderChanges]:
    # Not prepared, as the digest: a generic plan cannot use the optional key bounds.
    rows = conn.execute(_CHUNK_DIFF_SQL, params, prepare=False).fetchall()
    changes = {folder: FolderChanges(a, m, r) for folder, a, m, r in rows}
    if analyze:
        analyze_seen_if_grown(conn, sum(c.total for c in changes.values()))
    return changes


def analyze_seen_if_grown(
    conn: psycopg.Connection,
    written: int,
    folders: Mapping[str, int] | None = None,
    bucket: str | None = None,
) -> None:
    """`folders`: folder -> seen objects it holds now, for folders the diffs filled (see
    catalog.analyze_if_grown)."""
    # A first import of a folder fills the seen objects; unanalyzed, the planner took them for
    # empty and the next listing's diff of that folder ran a nested loop for minutes.
    analyze_if_grown(
        conn, "ingest.bucket_object", written, _SEEN_STATISTICS, folders=folders, bucket=bucket
    )


# The columns the diffs and digests filter the seen objects by.
_SEEN_STATISTICS = "bucket, key, folder, present"


def diff_staged_range(
    conn: psycopg.Connection, bucket: str, folder: str, after: str | None, upto: str | None
) -> int:
    """Reconcile the seen objects with the folder's staged listing (ingest.listing) in the key
    range (after, upto] (None: the folder's start, end), in the caller's transaction; returns
    how many seen objects it changed. The caller bumps the folder's generation once for all
    its ranges (`record_listing_state`) and analyzes the seen objects once they grew
    (`analyze_seen_if_grown`)."""
    params = {"bucket": bucket, "after": after, "upto": upto, "folder": folder}
    if after is None and upto is None and not _has_seen_objects(conn, bucket, folder):
        return _seed_seen_objects(conn, params)
    rows = conn.execute(
        'CREATE TEMP TABLE listing_chunk ON COMMIT DROP AS SELECT key COLLATE "C" AS key,'
        " folder, etag, size_bytes, last_modified FROM ingest.listing"
        f" WHERE bucket = %(bucket)s AND considered AND {in_key_range()}",
        params,
        prepare=False,  # as the digest's: a generic plan cannot use the optional bounds
    ).rowcount
    # Keyed as the reconciliation's chunks are: the seen objects of a folder's last range lie
    # past their statistics' histogram (new keys sort last), so the planner expects one row
    # and anti-joins them by nested loop; with the key indexed that loop probes, where over a
    # 2.6k-key chunk it compared 3.4M pairs (0.5 s of each changed folder at 1M objects).
    conn.execute("ALTER TABLE listing_chunk ADD PRIMARY KEY (key)")
    analyze_if_large(conn, "listing_chunk", rows)  # temporary tables are never autovacuumed
    changes = _diff(conn, params, analyze=False)
    conn.execute("DROP TABLE listing_chunk")
    return sum(c.total for c in changes.values())


# A folder the sensors have never seen (its first import): every considered object listed is
# added, straight from the staged listing. Diffed as other folders are, through a keyed and
# analyzed temporary copy of the listing, a 62.5k-key folder spent ~0.2 s on that copy.
# A plain INSERT first: with no seen object in the folder nothing can conflict, and ON CONFLICT
# makes every row a speculative insertion (0.52 s against 0.34 s for that folder). An S3 event
# may add a key meanwhile, though: then the INSERT fails and the upsert does it over.
_SEED_SEEN_SQL = """
    INSERT INTO ingest.bucket_object AS bo
        (bucket, key, folder, present, etag, size_bytes, last_modified, sequencer, changed_at)
    SELECT bucket, key, folder, true, etag, size_bytes, last_modified, NULL, now()
    FROM ingest.listing
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND considered
    ORDER BY key COLLATE "C"  -- the diffs' lock order: no deadlocks
"""
_SEED_SEEN_UPSERT_SQL = f"""
WITH upserted AS ({_SEED_SEEN_SQL}    {_UPSERT_LISTED}    RETURNING 1
)
SELECT count(*) FROM upserted
"""


def _has_seen_objects(conn: psycopg.Connection, bucket: str, folder: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM ingest.bucket_object WHERE bucket = %s AND folder = %s)",
        (bucket, folder),
    ).fetchone()
    return bool(row and row[0])


def _seed_seen_objects(conn: psycopg.Connection, params: dict[str, object]) -> int:
    try:
        with conn.transaction():  # a savepoint: a conflict undoes only this attempt
            return conn.execute(_SEED_SEEN_SQL, params).rowcount
    except psycopg.errors.UniqueViolation:
        row = conn.execute(_SEED_SEEN_UPSERT_SQL, params).fetchone()
        return int(row[0]) if row else 0


@dataclass(frozen=True)
class ListingState:
    """What a folder's staged listing covers: the folder generation (every change counted up
    to it is in the listing) and the fingerprint of the rules its verdicts were judged by."""

    generation: int
    rules: str | None


def listing_state(conn: psycopg.Connection, bucket: str, folder: str) -> ListingState | None:
    row = conn.execute(
        "SELECT generation, rules FROM ingest.listing_state WHERE bucket = %s AND folder = %s",
        (bucket, folder),
    ).fetchone()
    return ListingState(int(row[0]), row[1]) if row else None


def record_listing_state(
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    generation_before: int,
    changed: bool,
    rules: str,
) -> int:
    """Record which generation a run's fresh listing of the folder covers, in the transaction
    that staged it and reconciled the seen objects with it (`diff_staged_range`, `changed`:
    whether that found anything); returns the generation.

    A change this listing found itself gets its own generation, so that if the run fails the
    sensors still see the folder as changed and ask again. If a sensor counted a change while
    the folder was being listed, the listing may have missed it: it then covers only the
    generation read before listing began, and the folder stays due for another run.

    While the folder's generation stays at the one recorded here, the seen objects of the
    folder are the staged listing's considered objects: every other writer of the seen
    objects bumps the generation with its change.
    """
    covered = generation_before
    if changed:
        bump_folders(conn, bucket, [folder])
        now = current_generation(conn, bucket, folder)
        covered = now if now == generation_before + 1 else generation_before
    conn.execute(
        "INSERT INTO ingest.listing_state (bucket, folder, generation, listed_at, rules)"
        " VALUES (%s, %s, %s, now(), %s) ON CONFLICT (bucket, folder) DO UPDATE"
        " SET generation = EXCLUDED.generation, listed_at = EXCLUDED.listed_at,"
        " rules = EXCLUDED.rules",
        (bucket, folder, covered, rules),
    )
    return covered
