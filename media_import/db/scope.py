"""What a folder's plan and insert must look at: the whole folder, or only what changed.

After an import that carried out its plan, a folder's catalog holds every valid listed file
but those of its kept (deferred or rejected) plans, and no live file its listing does not
back. While nothing but the folder's own imports writes its catalog rows (the epoch of
`ingest.catalog_state`, bumped by triggers, has not moved), only these can differ from that:
the key ranges its listing restaged since (`ingest.restaged_range`, appended by discovery),
the codes of its kept plans, and those of assets losing a file in those ranges. Phase 2 and
the insert step then read those ranges rather than anti-joining the whole folder; anything
else (a first import, a crash, a hand edit, another folder's import soft-deleting files here)
plans the folder whole, as before. See migration 0009.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

# More restaged ranges than this since the last import (many discoveries without an import,
# or most of a folder rewritten): the whole folder is read in one pass instead.
MAX_RANGES = 256

KeyRange = tuple[str | None, str | None]  # (after, upto]; None: the folder's start, end


@dataclass(frozen=True)
class Scope:
    """`ranges`: the key ranges to read, disjoint and in order; None: the whole folder.
    `epoch` and `restaged_upto`: what the plan was made from (see `record_import`)."""

    ranges: tuple[KeyRange, ...] | None
    epoch: int | None
    restaged_upto: int


def record_restaged(
    conn: psycopg.Connection, bucket: str, folder: str, ranges: Sequence[KeyRange]
) -> None:
    """Note key ranges of the folder's listing restaged (in the staging transaction)."""
    if ranges:
        conn.execute(
            "INSERT INTO ingest.restaged_range (bucket, folder, after, upto)"
            " SELECT %s, %s, after, upto FROM unnest(%s::text[], %s::text[]) AS r(after, upto)",
            (bucket, folder, [r[0] for r in ranges], [r[1] for r in ranges]),
        )


def folder_scope(conn: psycopg.Connection, bucket: str, folder: str) -> Scope:
    """What the folder's plan must read now. The folder's catalog state is created here if
    it has none, so that a write by another transaction from now on moves its epoch."""
    conn.execute(
        "INSERT INTO ingest.catalog_state (bucket, folder) VALUES (%s, %s)"
        " ON CONFLICT (bucket, folder) DO NOTHING",
        (bucket, folder),
    )
    return _scope(conn, bucket, folder)


def removal_scope(conn: psycopg.Connection, bucket: str, folder: str) -> Scope:
    """Where the insert step's removals can be (in its transaction, under the folder's
    lock): the ranges restaged since the last import, while the catalog is in step."""
    return _scope(conn, bucket, folder)


def _scope(conn: psycopg.Connection, bucket: str, folder: str) -> Scope:
    row = conn.execute(
        "SELECT epoch, synced_epoch FROM ingest.catalog_state WHERE bucket = %s AND folder = %s",
        (bucket, folder),
    ).fetchone()
    epoch, synced = row if row else (None, None)
    ranges = conn.execute(
        "SELECT id, after, upto FROM ingest.restaged_range"
        " WHERE bucket = %s AND folder = %s ORDER BY id",
        (bucket, folder),
    ).fetchall()
    upto_id = max((r[0] for r in ranges), default=0)
    if epoch is None or synced != epoch or len(ranges) > MAX_RANGES:
        return Scope(None, epoch, upto_id)
    merged = merge_ranges([(after, upto) for _, after, upto in ranges])
    if (None, None) in merged:
        return Scope(None, epoch, upto_id)
    return Scope(tuple(merged), epoch, upto_id)


def merge_ranges(ranges: Sequence[KeyRange]) -> list[KeyRange]:
    """The union of key ranges (after, upto], as disjoint ranges in key order. Python orders
    str by code point, which is S3's order (UTF-8 bytes); None is the folder's start or end."""
    merged: list[KeyRange] = []
    for after, upto in sorted(ranges, key=lambda r: r[0] or ""):
        if merged:
            last_after, last_upto = merged[-1]
            # (a, b] and (c, d] with c <= b are (a, max(b, d)]; past None, all is covered.
            if last_upto is None or (after or "") <= last_upto:
                if last_upto is not None and (upto is None or upto > last_upto):
                    merged[-1] = (last_after, upto)
                continue
        merged.append((after, upto))
    return merged


def mark_importing(conn: psycopg.Connection, bucket: str, folder: str) -> None:
    """Tell the catalog's triggers that this transaction is the folder's own import: its
    writes to the folder's rows do not move the folder's epoch (they are what the sync is)."""
    conn.execute("SELECT set_config('media_import.importing', %s, true)", (f"{bucket}/{folder}",))


def record_import(conn: psycopg.Connection, bucket: str, folder: str, complete: bool) -> None:
    """After the folder's import, in its transaction: drop the restaged ranges its plan
    covered, and record the catalog in step with the listing if the import was `complete`
    (it wrote all the plan made ready) and no other writer moved the folder's epoch since the
    plan read it. Another transaction's write holding the folder's row is waited for, and
    its bump then seen."""
    params = {"bucket": bucket, "folder": folder, "complete": complete}
    conn.execute(
        "DELETE FROM ingest.restaged_range r USING ingest.pending_plan p"
        " WHERE p.bucket = %(bucket)s AND p.folder = %(folder)s"
        " AND r.bucket = p.bucket AND r.folder = p.folder AND r.id <= p.restaged_upto",
        params,
    )
    conn.execute(
        "UPDATE ingest.catalog_state cs SET synced_epoch = CASE"
        " WHEN %(complete)s AND cs.epoch = p.catalog_epoch THEN cs.epoch END"
        " FROM ingest.pending_plan p"
        " WHERE p.bucket = %(bucket)s AND p.folder = %(folder)s"
        " AND cs.bucket = p.bucket AND cs.folder = p.folder",
        params,
    )


def planned_whole(conn: psycopg.Connection, bucket: str, folders: Sequence[str]) -> list[str]:
    """The folders whose next plan reads the whole folder (see `folder_scope`), read-only."""
    return [f for f in folders if _scope(conn, bucket, f).ranges is None]
