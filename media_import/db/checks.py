"""The catalog's invariants for one folder, as queries returning the offending rows."""

from __future__ import annotations

import psycopg

_MISSING_SQL = """
SELECT p.inventory_code FROM ingest.pending_asset p
WHERE p.bucket = %(bucket)s AND p.folder = %(folder)s AND p.decision = 'import'
  AND NOT EXISTS (SELECT 1 FROM asset a
                  WHERE a.inventory_code = p.inventory_code AND a.deleted_at IS NULL)
UNION
SELECT f.key FROM ingest.pending_file f
WHERE f.bucket = %(bucket)s AND f.folder = %(folder)s AND f.decision IN ('import', 'attach')
  AND NOT EXISTS (SELECT 1 FROM asset_file af
                  WHERE af.bucket = f.bucket AND af.key = f.key AND af.deleted_at IS NULL)
ORDER BY 1
"""

# A code is catalogued twice when its live files span folders or it has two streaming copies.
_DUPLICATES_SQL = """
SELECT inventory_code,
       count(DISTINCT folder) AS folders,
       count(*) FILTER (WHERE role = 'streaming_copy') AS streaming_copies
FROM asset_file
WHERE deleted_at IS NULL AND inventory_code IN (
    SELECT inventory_code FROM asset_file
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND deleted_at IS NULL)
GROUP BY inventory_code
HAVING count(DISTINCT folder) > 1 OR count(*) FILTER (WHERE role = 'streaming_copy') > 1
ORDER BY inventory_code
"""

_DANGLING_SQL = """
SELECT af.key FROM asset_file af
WHERE af.bucket = %(bucket)s AND af.folder = %(folder)s AND af.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM ingest.listing l WHERE l.bucket = af.bucket AND l.key = af.key)
ORDER BY af.key
"""

_UNVERIFIED_SQL = """
SELECT af.key FROM asset_file af
WHERE af.bucket = %(bucket)s AND af.folder = %(folder)s AND af.deleted_at IS NULL
  AND af.md5_source = 'md5sum' AND NOT af.md5_verified
ORDER BY af.key
"""

_VERIFIED_COUNT_SQL = """
SELECT count(*) FROM asset_file
WHERE bucket = %(bucket)s AND folder = %(folder)s AND deleted_at IS NULL AND md5_verified
"""


def _column(conn: psycopg.Connection, sql: str, bucket: str, folder: str) -> list[str]:
    return [row[0] for row in conn.execute(sql, {"bucket": bucket, "folder": folder})]


def missing_from_catalog(conn: psycopg.Connection, bucket: str, folder: str) -> list[str]:
    """Codes and keys the plan made ready that the catalog does not hold."""
    return _column(conn, _MISSING_SQL, bucket, folder)


def duplicated_codes(
    conn: psycopg.Connection, bucket: str, folder: str
) -> list[tuple[str, int, int]]:
    return conn.execute(_DUPLICATES_SQL, {"bucket": bucket, "folder": folder}).fetchall()


def dangling_keys(conn: psycopg.Connection, bucket: str, folder: str) -> list[str]:
    """Live catalog rows whose object is not in the folder's latest listing."""
    return _column(conn, _DANGLING_SQL, bucket, folder)


def unverified_checksums(conn: psycopg.Connection, bucket: str, folder: str) -> list[str]:
    return _column(conn, _UNVERIFIED_SQL, bucket, folder)


def verified_count(conn: psycopg.Connection, bucket: str, folder: str) -> int:
    row = conn.execute(_VERIFIED_COUNT_SQL, {"bucket": bucket, "folder": folder}).fetchone()
    return int(row[0]) if row else 0


def folder_totals(conn: psycopg.Connection, bucket: str, folder: str) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM asset WHERE bucket = %(b)s AND folder = %(f)s"
        "        AND deleted_at IS NULL),"
        "       (SELECT count(*) FROM asset_file WHERE bucket = %(b)s AND folder = %(f)s"
        "        AND deleted_at IS NULL),"
        "       (SELECT count(*) FROM rejection WHERE bucket = %(b)s AND folder = %(f)s"
        "        AND resolved_at IS NULL)",
        {"b": bucket, "f": folder},
    ).fetchone() or (0, 0, 0)
    return {"catalog_assets": row[0], "catalog_files": row[1], "open_rejections": row[2]}
