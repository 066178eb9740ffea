"""Catalog figures for a period, for the daily summary: one query, one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

# Each table is scanned once (FILTER instead of a sub-select per figure); the timestamps have no
# index, which is fine for a query run once a day.
_FIGURES_SQL = """
SELECT a.assets_imported, f.files_imported, a.assets_deleted, f.files_deleted,
       r.rejections_first_seen, r.rejections_resolved, r.rejections_open
FROM (SELECT count(*) FILTER (WHERE imported_at >= %(since)s AND imported_at < %(until)s)
                 AS assets_imported,
             count(*) FILTER (WHERE deleted_at >= %(since)s AND deleted_at < %(until)s)
                 AS assets_deleted
      FROM asset) a
CROSS JOIN
     (SELECT count(*) FILTER (WHERE imported_at >= %(since)s AND imported_at < %(until)s)
                 AS files_imported,
             count(*) FILTER (WHERE deleted_at >= %(since)s AND deleted_at < %(until)s)
                 AS files_deleted
      FROM asset_file) f
CROSS JOIN
     (SELECT count(*) FILTER (WHERE first_seen_at >= %(since)s AND first_seen_at < %(until)s)
                 AS rejections_first_seen,
             count(*) FILTER (WHERE resolved_at >= %(since)s AND resolved_at < %(until)s)
                 AS rejections_resolved,
             count(*) FILTER (WHERE resolved_at IS NULL) AS rejections_open
      FROM rejection) r
"""


@dataclass(frozen=True)
class CatalogFigures:
    """What changed in the catalog over [since, until); `rejections_open` is as of now."""

    assets_imported: int
    files_imported: int
    assets_deleted: int
    files_deleted: int
    rejections_first_seen: int
    rejections_resolved: int
    rejections_open: int


def catalog_figures(conn: psycopg.Connection, since: datetime, until: datetime) -> CatalogFigures:
    """Counts over the half-open period [since, until); both must be timezone-aware."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    with conn.cursor(row_factory=class_row(CatalogFigures)) as cur:
        row = cur.execute(_FIGURES_SQL, {"since": since, "until": until}).fetchone()
    assert row is not None  # aggregates without GROUP BY always return one row
    return row
