"""Forward-only schema migrations: numbered SQL files applied once each, in order.

Each file runs in its own transaction under an advisory lock, so concurrent runs starting
against a fresh database apply it exactly once, and a failed migration leaves nothing behind.
Migrations only ever add: upgrades never lose catalog data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import psycopg

# Arbitrary constant shared by every media_import process: "the schema is being migrated".
_MIGRATION_LOCK = 0x6D656469  # "medi"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("media_import.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def migrate(conninfo: str) -> list[int]:
    """Bring the database to the latest schema; returns the versions applied now."""
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS media_import_migration ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM media_import_migration")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)  # type: ignore[arg-type]
                    conn.execute(
                        "INSERT INTO media_import_migration (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    return applied_now
