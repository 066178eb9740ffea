"""The catalog's invariants for the folders of a run, as queries returning the offending rows
by folder.

Each is one statement over all the run's folders (`folder = ANY(...)`), not one per folder:
a backfill of every folder pays each statement's round trip and planning once, and reads
what it needs once. Results keep the order of one query per folder: folder by folder, in the
run's order, then by key or code. Live rows not in the bucket's listing are found by the
insert itself (`catalog.import_pending`), which knows the only rows that can be; the missing
rows are looked up by the insert step too (`phases.import_folder`), folder by folder, and only
when it wrote fewer rows than its plan made ready.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg

from media_import.db.catalog import PROBE_ROWS

# Pending codes and keys of the run's folders whose live catalog row is missing. With
# `{fence}` = "OFFSET 0", each NOT EXISTS stays a probe per pending row by unique key (a
# subquery with an OFFSET is not turned into an anti-join); without it the planner may hash.
_MISSING_SQL = """
SELECT folder, item FROM (
    SELECT folder, inventory_code AS item FROM ingest.pending_asset p
    WHERE p.bucket = %(bucket)s AND p.folder = ANY(%(folders)s) AND p.decision = 'import'
      AND NOT EXISTS (SELECT 1 FROM asset a
                      WHERE a.inventory_code = p.inventory_code AND a.deleted_at IS NULL {fence})
    UNION
    SELECT folder, key FROM ingest.pending_file f
    WHERE f.bucket = %(bucket)s AND f.folder = ANY(%(folders)s)
      AND f.decision IN ('import', 'attach')
      AND NOT EXISTS (SELECT 1 FROM asset_file af
                      WHERE af.bucket = f.bucket AND af.key = f.key AND af.deleted_at IS NULL
                      {fence})
) missing
ORDER BY array_position(%(folders)s, folder), item
"""
# Up to PROBE_ROWS ready rows, a folder's are probed one by one (microseconds each); beyond,
# a hash join over the catalog is cheaper. The planner cannot choose well itself: phase 2
# analyzes only large plans, so after a first import the statistics of the pending tables say
# 60k rows per folder when a steady-state run plans a few hundred, and it hashed the whole
# catalog (0.4 s at 1M files) to check them.

# A code is catalogued twice when its live files span folders or it has two streaming copies.
# One pass over the live files in code order (an index-only scan of asset_file_live_code_idx)
# finds the codes of the run's folders that are; the few found are then described.
_DUPLICATES_SQL = """
WITH duplicated AS (
    SELECT inventory_code, count(*) FILTER (WHERE role = 'streaming_copy') AS streaming_copies
    FROM asset_file
    WHERE deleted_at IS NULL
    GROUP BY inventory_code
    HAVING bool_or(bucket = %(bucket)s AND folder = ANY(%(folders)s))
       AND (min(folder) <> max(folder) OR count(*) FILTER (WHERE role = 'streaming_copy') > 1)
)
SELECT d.inventory_code, here.folder,
       (SELECT count(DISTINCT folder) FROM asset_file af
        WHERE af.inventory_code = d.inventory_code AND af.deleted_at IS NULL) AS folders,
       d.streaming_copies
FROM duplicated d
CROSS JOIN LATERAL (
    SELECT DISTINCT folder FROM asset_file af
    WHERE af.inventory_code = d.inventory_code AND af.deleted_at IS NULL
      AND af.bucket = %(bucket)s AND af.folder = ANY(%(folders)s)
) here
ORDER BY array_position(%(folders)s, here.folder), d.inventory_code
"""

# Per folder of the run: live assets, live files and how many of them are verified, open
# rejections. Each count is one pass grouped by folder; folders with none of a kind get 0.
_FIGURES_SQL = """
SELECT f.folder,
       (SELECT count(*) FROM asset a
        WHERE a.bucket = %(bucket)s AND a.folder = f.folder AND a.deleted_at IS NULL),
       (SELECT count(*) FROM asset_file af
        WHERE af.bucket = %(bucket)s AND af.folder = f.folder AND af.deleted_at IS NULL),
       (SELECT count(*) FROM asset_file af
        WHERE af.bucket = %(bucket)s AND af.folder = f.folder AND af.deleted_at IS NULL
          AND af.md5_verified),
       (SELECT count(*) FROM rejection r
        WHERE r.bucket = %(bucket)s AND r.folder = f.folder AND r.resolved_at IS NULL)
FROM unnest(%(folders)s::text[]) AS f(folder)
"""

# Normally none: asset_file_unverified_idx holds exactly these rows.
_UNVERIFIED_SQL = """
SELECT folder, key FROM asset_file
WHERE bucket = %(bucket)s AND folder = ANY(%(folders)s) AND deleted_at IS NULL
  AND md5_source = 'md5sum' AND NOT md5_verified
ORDER BY array_position(%(folders)s, folder), key
"""


def _params(bucket: str, folders: Sequence[str]) -> dict[str, object]:
    return {"bucket": bucket, "folders": list(folders)}


def missing_from_catalog(
    conn: psycopg.Connection, bucket: str, ready: Mapping[str, int]
) -> list[str]:
    """Codes and keys the plans made ready that the catalog does not hold. `ready`: the run's
    folders, in order, with how many rows their plans made ready (a folder with none has
    nothing to miss)."""
    found: dict[str, list[str]] = {}
    few = [f for f, n in ready.items() if 0 < n <= PROBE_ROWS]
    many = [f for f, n in ready.items() if n > PROBE_ROWS]
    for folders, fence in ((few, "OFFSET 0"), (many, "")):
        if folders:
            sql = _MISSING_SQL.format(fence=fence)
            for folder, item in conn.execute(sql, _params(bucket, folders)):
                found.setdefault(folder, []).append(item)
    return [item for folder in ready for item in found.get(folder, [])]


def duplicated_codes(
    conn: psycopg.Connection, bucket: str, folders: Sequence[str]
) -> dict[str, list[tuple[str, int, int]]]:
    """Per folder of the run that holds a live file of it: (code, folders, streaming copies)
    of every code catalogued twice."""
    found: dict[str, list[tuple[str, int, int]]] = {f: [] for f in folders}
    for code, folder, spread, streaming in conn.execute(_DUPLICATES_SQL, _params(bucket, folders)):
        found[folder].append((code, int(spread), int(streaming)))
    return found


def unverified_checksums(
    conn: psycopg.Connection, bucket: str, folders: Sequence[str]
) -> dict[str, list[str]]:
    """Per folder of the run: the keys listed in an .md5 sidecar but not verified."""
    found: dict[str, list[str]] = {f: [] for f in folders}
    for folder, key in conn.execute(_UNVERIFIED_SQL, _params(bucket, folders)):
        found[folder].append(key)
    return found


@dataclass(frozen=True)
class Figures:
    """One folder in the catalog: live assets and files, open rejections."""

    catalog_assets: int
    catalog_files: int
    verified_files: int
    open_rejections: int

    def totals(self) -> dict[str, int]:
        return {
            "catalog_assets": self.catalog_assets,
            "catalog_files": self.catalog_files,
            "open_rejections": self.open_rejections,
        }


def folder_figures(
    conn: psycopg.Connection, bucket: str, folders: Sequence[str]
) -> dict[str, Figures]:
    """Per folder of the run, in one statement."""
    rows = conn.execute(_FIGURES_SQL, _params(bucket, folders)).fetchall()
    return {folder: Figures(*(int(n) for n in counts)) for folder, *counts in rows}
