"""The import's database sessions: one place for how they connect and what they set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# For the import's own sessions. Its joins run over freshly loaded working tables, whose row
# estimates can be off by orders of magnitude: JIT then spent 1.2 s compiling an anti-join that
# runs in 0.2 s, once per folder. And a folder's sorts (60k keys) fit in 64 MB, not in the
# default 4 MB that spilled them to disk.
SESSION_SETTINGS = "SET jit = off; SET work_mem = '64MB'"


@contextmanager
def connect(conninfo: str) -> Iterator[psycopg.Connection]:
    """An autocommit session with the import's settings."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(SESSION_SETTINGS)
        yield conn
