"""SQL of the S3 event inbox: store events durably, then fold them into the seen objects.

The event sensor stores a batch here before it deletes the queue messages, so a crash between
the two loses nothing (the messages come back and their events collapse on the unique index),
and a crash after it leaves the events unapplied for the next tick to fold in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from media_import.core.inventory import Rules
from media_import.core.s3_events import EventKind, ObjectEvent
from media_import.db.watch import bump_folders
from media_import.watch.events import Fold, SeenObject, StoredEvent, fold

_EVENT_COLUMNS = (
    "bucket, key, folder, kind, event_name, event_time, sequencer, etag, size_bytes, "
    "version_id, message_id"
)

# The inbox lock: one fold at a time per bucket (two sensor ticks may overlap on a slow tick).
_FOLD_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('s3_event_fold/' || %s, 0))"


def store_events(conn: psycopg.Connection, events: Iterable[tuple[ObjectEvent, str]]) -> int:
    """Insert (event, message id) pairs; redeliveries are skipped. Returns how many were new."""
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE incoming_event (LIKE ingest.s3_event INCLUDING DEFAULTS)"
            " ON COMMIT DROP"
        )
        with conn.cursor().copy(f"COPY incoming_event ({_EVENT_COLUMNS}) FROM STDIN") as copy:
            for e, message_id in events:
                copy.write_row(
                    (e.bucket, e.key, e.folder, e.kind.value, e.event_name, e.event_time,
                     e.sequencer, e.etag, e.size, e.version_id, message_id)
                )  # fmt: skip
        cur = conn.execute(
            f"INSERT INTO ingest.s3_event ({_EVENT_COLUMNS})"
            f" SELECT {_EVENT_COLUMNS} FROM incoming_event ORDER BY id"
            " ON CONFLICT DO NOTHING"
        )
        return cur.rowcount


def store_malformed(
    conn: psycopg.Connection, messages: Sequence[tuple[str, str, str, int | None]]
) -> None:
    """Keep unparseable messages (message id, body, error, receive count) for inspection."""
    if not messages:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.s3_event_malformed (message_id, body, error, receive_count)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (message_id) DO UPDATE"
            " SET receive_count = EXCLUDED.receive_count",
            messages,
        )


@dataclass(frozen=True)
class Applied:
    events: int
    fold: Fold


def apply_pending(
    conn: psycopg.Connection, bucket: str, rules: Rules, limit: int = 50_000
) -> Applied:
    """Fold the bucket's unapplied events into `ingest.bucket_object` and bump the generations
    of the folders whose objects changed, in one transaction."""
    with conn.transaction():
        conn.execute(_FOLD_LOCK_SQL, (bucket,))
        events = _unapplied(conn, bucket, limit)
        if not events:
            return Applied(0, Fold())
        seen = _seen(conn, bucket, sorted({s.event.key for s in events}))
        result = fold(events, seen, rules)
        _write_states(conn, bucket, result.states)
        conn.execute(
            "UPDATE ingest.s3_event e SET applied_at = now(), outcome = o.outcome"
            " FROM unnest(%s::bigint[], %s::text[]) AS o(id, outcome) WHERE e.id = o.id",
            (list(result.outcomes), [str(v) for v in result.outcomes.values()]),
        )
        bump_folders(conn, bucket, sorted(result.changed))
    return Applied(len(events), result)


def _unapplied(conn: psycopg.Connection, bucket: str, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        "SELECT id, bucket, key, kind, event_name, event_time, sequencer, etag, size_bytes,"
        " version_id FROM ingest.s3_event WHERE bucket = %s AND applied_at IS NULL"
        " ORDER BY id LIMIT %s",
        (bucket, limit),
    ).fetchall()
    return [
        StoredEvent(row[0], ObjectEvent(row[1], row[2], EventKind(row[3]), *row[4:]))
        for row in rows
    ]


def _seen(conn: psycopg.Connection, bucket: str, keys: list[str]) -> dict[str, SeenObject]:
    rows = conn.execute(
        "SELECT key, folder, present, etag, size_bytes, last_modified, sequencer"
        " FROM ingest.bucket_object WHERE bucket = %s AND key = ANY(%s)",
        (bucket, keys),
    ).fetchall()
    return {row[0]: SeenObject(*row[1:]) for row in rows}


def _write_states(conn: psycopg.Connection, bucket: str, states: dict[str, SeenObject]) -> None:
    if not states:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.bucket_object AS bo (bucket, key, folder, present, etag,"
            " size_bytes, last_modified, sequencer, changed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())"
            " ON CONFLICT (bucket, key) DO UPDATE SET folder = EXCLUDED.folder,"
            " present = EXCLUDED.present, etag = EXCLUDED.etag,"
            " size_bytes = EXCLUDED.size_bytes, last_modified = EXCLUDED.last_modified,"
            " sequencer = EXCLUDED.sequencer, changed_at = now()",
            [
                (bucket, key, s.folder, s.present, s.etag, s.size, s.last_modified, s.sequencer)
                for key, s in states.items()
            ],
        )
