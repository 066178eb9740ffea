"""Discovery staged range by range (media_import.watch.discovery), against a real PostgreSQL and
S3 over HTTP (moto): an incremental listing stages, judges and reconciles exactly what a full
re-staging does, while rewriting only the key ranges that changed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg import sql

from media_import.core.inventory import Rules
from media_import.core.storage import Bucket, S3Config
from media_import.db import watch
from media_import.db.migrate import migrate
from media_import.phases import Discovery, discover_folder
from media_import.watch.discovery import cut_ranges
from media_import_tests.conftest import PgServer, _drop_database

FOLDER = "BRD"
RANGE_KEYS = 6  # ranges of 6 to 11 keys: a few dozen keys make several ranges


def _keys() -> list[str]:
    keys = [f"{FOLDER}/VO-BRD-{n:05d}{ext}" for n in range(1, 13) for ext in (".json", ".pdf")]
    keys += [f"{FOLDER}/notes-{n}.txt" for n in range(3)]  # ignored, but staged
    keys += [f"{FOLDER}/VO-CAS-00001.pdf", f"{FOLDER}/bad-name.pdf"]  # rejected
    keys += ["CAS/VO-CAS-00001.pdf", "BRD0/VO-BRD-00001.pdf"]  # other folders, either side
    return keys


def body(key: str, version: int = 1) -> bytes:
    return f"{key} v{version}".encode()


# -- cutting a listing at the staged ranges' ends ------------------------------------------------


def _batches(keys: list[str], page: int) -> list[pa.RecordBatch]:
    return [
        pa.RecordBatch.from_pydict({"key": pa.array(keys[i : i + page], pa.string())})
        for i in range(0, len(keys), page)
    ]


def _cuts(keys: list[str], bounds: list[str | None], page: int, range_keys: int) -> list:
    return [
        (c.after, c.upto, c.staged, [k for b in c.batches for k in b.column("key").to_pylist()])
        for c in cut_ranges(_batches(keys, page), bounds, range_keys)
    ]


@pytest.mark.parametrize("page", [1, 2, 3, 100])
def test_a_listing_is_cut_at_the_staged_ranges_ends_whatever_its_pages(page: int) -> None:
    keys = ["a", "b", "c", "d", "f", "g"]
    assert _cuts(keys, ["b", "e", None], page, 100) == [
        (None, "b", 0, ["a", "b"]),
        ("b", "e", 1, ["c", "d"]),
        ("e", None, 2, ["f", "g"]),
    ]
    # Ranges the listing no longer reaches are there, empty; so is one it skips over.
    assert _cuts(["a", "f"], ["b", "c", "e", None], page, 100) == [
        (None, "b", 0, ["a"]),
        ("b", "c", 1, []),
        ("c", "e", 2, []),
        ("e", None, 3, ["f"]),
    ]
    assert _cuts(["a"], ["b", "e", None], page, 100) == [
        (None, "b", 0, ["a"]),
        ("b", "e", 1, []),
        ("e", None, 2, []),
    ]


@pytest.mark.parametrize("page", [1, 3, 100])
def test_a_range_grown_to_twice_the_range_size_is_cut(page: int) -> None:
    keys = [f"k{i:02d}" for i in range(10)]
    # No staged ranges (a first listing): ranges of 2 keys, the last of 2 to 3.
    assert _cuts(keys, [], page, 2) == [
        (None, "k01", None, ["k00", "k01"]),
        ("k01", "k03", None, ["k02", "k03"]),
        ("k03", "k05", None, ["k04", "k05"]),
        ("k05", "k07", None, ["k06", "k07"]),
        ("k07", None, None, ["k08", "k09"]),
    ]
    # A staged range that grew: cut into new ones, which no staged range is compared with.
    assert _cuts(keys, ["k00", "k06", None], page, 2) == [
        (None, "k00", 0, ["k00"]),
        ("k00", "k02", None, ["k01", "k02"]),
        ("k02", "k04", None, ["k03", "k04"]),
        ("k04", "k06", None, ["k05", "k06"]),
        ("k06", None, 2, ["k07", "k08", "k09"]),
    ]


# -- staging against a real bucket and database ------------------------------------------------


@pytest.fixture
def listing(s3_server: Any, bucket: str) -> Bucket:
    t = s3_server
    config = S3Config(bucket, t.endpoint_url, t.region, t.access_key, t.secret_key)
    return Bucket(config, page_size=4)


def _connect(url: str) -> psycopg.Connection:
    migrate(url)
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET timezone = 'Asia/Kolkata'")  # times must not depend on it
    return conn


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with _connect(database_url) as connection:
        yield connection


@pytest.fixture
def full_conn(pg_server: PgServer) -> Iterator[psycopg.Connection]:
    """A second database, where every discovery stages its folder from scratch."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        with _connect(pg_server.url(name)) as connection:
            yield connection
    finally:
        _drop_database(pg_server.admin_url, name)


def discover(bucket: Bucket, conn: psycopg.Connection, full: bool = False) -> Discovery:
    if full:  # as under other rules: the staged ranges cannot be reused
        conn.execute("UPDATE ingest.listing_state SET rules = 'other'")
    return discover_folder(bucket, conn, FOLDER, Rules(), range_keys=RANGE_KEYS)


def staged(conn: psycopg.Connection) -> list[tuple]:
    """The folder's staged listing, all but when each row was staged."""
    return conn.execute(
        "SELECT key, size_bytes, etag, last_modified, considered, inventory_code, role, rule,"
        " message FROM ingest.listing WHERE folder = %s ORDER BY key",
        (FOLDER,),
    ).fetchall()


def seen(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT key, folder, present, etag, size_bytes,"
        " CASE WHEN present THEN last_modified END"  # a tombstone's: when it was found gone
        " FROM ingest.bucket_object ORDER BY key"
    ).fetchall()


def generations(conn: psycopg.Connection) -> tuple:
    row = conn.execute(
        "SELECT fs.generation, ls.generation FROM ingest.folder_state fs"
        " JOIN ingest.listing_state ls USING (bucket, folder) WHERE folder = %s",
        (FOLDER,),
    ).fetchone()
    return tuple(row) if row else ()


def figures(d: Discovery) -> tuple:
    return (d.found, d.kept, d.kept_bytes, dict(d.ignored))


def test_an_incremental_listing_stages_what_a_full_one_does(
    listing, conn, full_conn, put_many, s3, bucket
) -> None:
    keys = _keys()
    put_many([(k, body(k)) for k in keys])
    first = discover(listing, conn)
    assert first.ranges_restaged == first.ranges >= 3
    discover(listing, full_conn, full=True)

    # In the middle of the folder, ranges unchanged around them: a key added, one overwritten
    # with other bytes, one removed; an ignored key added and a rejected one removed.
    put_many([(f"{FOLDER}/VO-BRD-00005.mp4", b"new"), (f"{FOLDER}/notes-9.txt", b"n")])
    put_many([(f"{FOLDER}/VO-BRD-00009.json", body("x", 2))])
    s3.delete_object(Bucket=bucket, Key=f"{FOLDER}/VO-BRD-00007.pdf")
    s3.delete_object(Bucket=bucket, Key=f"{FOLDER}/bad-name.pdf")

    again = discover(listing, conn)
    full = discover(listing, full_conn, full=True)
    assert 0 < again.ranges_restaged < again.ranges  # only the changed ranges rewritten
    assert full.ranges_restaged == full.ranges
    assert staged(conn) == staged(full_conn)
    assert seen(conn) == seen(full_conn)
    assert figures(again) == figures(full)
    assert generations(conn) == generations(full_conn) == (2, 2)  # one change, covered
    present = {k: (p, e) for k, _, p, e, _, _ in seen(conn)}
    assert present[f"{FOLDER}/VO-BRD-00007.pdf"] == (False, None)  # removed: a tombstone
    assert present[f"{FOLDER}/VO-BRD-00005.mp4"][0]
    ranges = conn.execute("SELECT count(*) FROM ingest.listing_range").fetchone()
    assert ranges == (again.ranges,)


def test_an_unchanged_folder_is_neither_rewritten_nor_diffed(listing, conn, put_many) -> None:
    put_many([(k, body(k)) for k in _keys()])
    first = discover(listing, conn)
    times = conn.execute("SELECT key, listed_at FROM ingest.listing ORDER BY key").fetchall()
    again = discover(listing, conn)
    assert again.ranges_restaged == 0
    assert figures(again) == figures(first)
    assert conn.execute("SELECT key, listed_at FROM ingest.listing ORDER BY key").fetchall() == (
        times
    )
    assert generations(conn) == (1, 1)


def test_seen_objects_a_sensor_changed_are_diffed_again_in_their_range_only(
    listing, conn, put_many
) -> None:
    put_many([(k, body(k)) for k in _keys()])
    discover(listing, conn)
    before = seen(conn)
    # A sensor records a removal the bucket does not show (say, a late event), and bumps the
    # folder's generation as every writer of the seen objects does.
    gone = f"{FOLDER}/VO-BRD-00004.json"
    conn.execute("UPDATE ingest.bucket_object SET present = false, etag = NULL WHERE key = %s",
                 (gone,))  # fmt: skip
    watch.bump_folders(conn, listing.name, [FOLDER])
    again = discover(listing, conn)
    assert again.ranges_restaged == 0
    after = {r[0]: r for r in seen(conn)}
    assert after[gone][2:5] == next(r for r in before if r[0] == gone)[2:5]  # put back
    assert {k: r[2:5] for k, r in after.items()} == {r[0]: r[2:5] for r in before}
    assert generations(conn) == (3, 3)  # the sensor's change and the listing's own


def test_other_rules_stage_the_folder_again(listing, conn, put_many) -> None:
    put_many([(k, body(k)) for k in _keys()])
    discover(listing, conn)
    strict = Rules(allowed_extensions=frozenset({".pdf"}))
    again = discover_folder(listing, conn, FOLDER, strict, range_keys=RANGE_KEYS)
    assert again.ranges_restaged == again.ranges
    considered = conn.execute(
        "SELECT count(*) FROM ingest.listing WHERE folder = %s AND considered", (FOLDER,)
    ).fetchone()
    assert considered == (14,)  # the .pdf files only


def _commit_once_waited_on(other: psycopg.Connection, watcher: psycopg.Connection) -> None:
    """Commit `other` once some session waits for its transaction (a row lock's wait)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
        ).fetchone()
        if waiting and waiting[0]:
            break
        time.sleep(0.02)
    other.commit()


def test_a_first_seeding_that_meets_an_s3_events_key_takes_it_over(
    listing, conn, database_url, put_many
) -> None:
    keys = _keys()
    put_many([(k, body(k)) for k in keys])
    event_key = f"{FOLDER}/VO-BRD-00003.json"
    # An S3 event's sensor records one of the folder's keys and has not committed yet when the
    # folder's first discovery looks for seen objects: it finds none, and seeds the folder.
    other = psycopg.connect(database_url)
    watcher = psycopg.connect(database_url, autocommit=True)
    try:
        other.execute(
            "INSERT INTO ingest.bucket_object (bucket, key, folder, present, etag, size_bytes,"
            " last_modified, sequencer, changed_at)"
            " VALUES (%s, %s, %s, true, 'from-an-event', 1, now(), '0001', now())",
            (listing.name, event_key, FOLDER),
        )
        committer = threading.Thread(target=_commit_once_waited_on, args=(other, watcher))
        committer.start()
        found = discover(listing, conn)
        committer.join()
    finally:
        other.close()
        watcher.close()
    considered = conn.execute(
        "SELECT key FROM ingest.listing WHERE folder = %s AND considered ORDER BY key", (FOLDER,)
    ).fetchall()
    rows = {k: (present, etag) for k, folder, present, etag, _, _ in seen(conn) if folder == FOLDER}
    assert sorted(rows) == [k for (k,) in considered] and event_key in rows
    # The event's row was taken over by the listing, as an upsert of a changed object is.
    etag = conn.execute("SELECT etag FROM ingest.listing WHERE key = %s", (event_key,)).fetchone()
    assert rows[event_key] == (True, etag[0] if etag else None)
    assert found.seen_changed == len(rows)
