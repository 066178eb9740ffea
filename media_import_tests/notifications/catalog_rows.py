"""Catalog rows with chosen timestamps, written straight into a migrated test database."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb


def add_asset(
    conn: psycopg.Connection,
    code: str,
    imported_at: datetime,
    deleted_at: datetime | None = None,
) -> None:
    conn.execute(
        """INSERT INTO asset (inventory_code, media_kind, bucket, folder, master_mime_type,
                              technical_metadata, imported_at, run_id, deleted_at)
           VALUES (%s, 'video', 'archive', 'BRD', 'video/quicktime', %s, %s, 'run-x', %s)""",
        (code, Jsonb({}), imported_at, deleted_at),
    )


def add_file(
    conn: psycopg.Connection,
    code: str,
    key: str,
    imported_at: datetime,
    deleted_at: datetime | None = None,
) -> None:
    conn.execute(
        """INSERT INTO asset_file (bucket, key, folder, inventory_code, role, mime_type,
                                   size_bytes, last_modified, imported_at, run_id, deleted_at)
           VALUES ('archive', %s, 'BRD', %s, 'metadata', 'application/json', 10, %s, %s,
                   'run-x', %s)""",
        (key, code, imported_at, imported_at, deleted_at),
    )


def add_rejection(
    conn: psycopg.Connection,
    key: str,
    first_seen_at: datetime,
    resolved_at: datetime | None = None,
) -> None:
    conn.execute(
        """INSERT INTO rejection (bucket, key, folder, rule, message, first_seen_at,
                                  last_seen_at, resolved_at, run_id)
           VALUES ('archive', %s, 'BRD', 'bad_name', 'not an inventory code', %s, %s, %s,
                   'run-x')""",
        (key, first_seen_at, first_seen_at, resolved_at),
    )
