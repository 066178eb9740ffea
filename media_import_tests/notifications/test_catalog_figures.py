"""catalog_figures: what changed in the catalog over a half-open period, in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from media_import.db.migrate import migrate
from media_import.db.summary import CatalogFigures, catalog_figures
from media_import_tests.notifications.catalog_rows import add_asset, add_file, add_rejection

SINCE = datetime(2025, 3, 9, 7, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)
INSIDE = SINCE + timedelta(hours=5)
BEFORE = SINCE - timedelta(hours=1)


@pytest.fixture
def conn(database_url: str):
    migrate(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def test_empty_catalog(conn):
    assert catalog_figures(conn, SINCE, UNTIL) == CatalogFigures(0, 0, 0, 0, 0, 0, 0)


def test_counts_only_what_happened_in_the_period(conn):
    add_asset(conn, "VO-BRD-00001", imported_at=SINCE)  # the start belongs to the period
    add_asset(conn, "VO-BRD-00002", imported_at=UNTIL)  # the end does not
    add_asset(conn, "VO-BRD-00003", imported_at=BEFORE, deleted_at=INSIDE)
    add_asset(conn, "VO-BRD-00004", imported_at=BEFORE, deleted_at=BEFORE)
    add_file(conn, "VO-BRD-00001", "BRD/VO-BRD-00001.json", imported_at=INSIDE)
    add_file(conn, "VO-BRD-00001", "BRD/VO-BRD-00001.md5", imported_at=INSIDE)
    add_file(conn, "VO-BRD-00003", "BRD/VO-BRD-00003.json", BEFORE, deleted_at=INSIDE)
    add_file(conn, "VO-BRD-00004", "BRD/VO-BRD-00004.json", BEFORE, deleted_at=UNTIL)
    add_rejection(conn, "BRD/new-open.mp4", first_seen_at=INSIDE)
    add_rejection(conn, "BRD/new-fixed.mp4", first_seen_at=INSIDE, resolved_at=INSIDE)
    add_rejection(conn, "BRD/old-open.mp4", first_seen_at=BEFORE)
    add_rejection(conn, "BRD/old-fixed-now.mp4", first_seen_at=BEFORE, resolved_at=INSIDE)
    add_rejection(conn, "BRD/old-fixed-then.mp4", first_seen_at=BEFORE, resolved_at=BEFORE)

    assert catalog_figures(conn, SINCE, UNTIL) == CatalogFigures(
        assets_imported=1,
        files_imported=2,
        assets_deleted=1,
        files_deleted=1,
        rejections_first_seen=2,
        rejections_resolved=2,
        rejections_open=2,
    )


def test_naive_timestamps_are_refused(conn):
    with pytest.raises(ValueError, match="timezone-aware"):
        catalog_figures(conn, SINCE.replace(tzinfo=None), UNTIL)
