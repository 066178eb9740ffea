"""Reconciliation's fast path against a real PostgreSQL and S3 over HTTP (moto): pages judged
with Arrow, key ranges listed concurrently in lanes, and unchanged ranges proven by digest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest

from media_import.core.inventory import Rules
from media_import.core.storage import Bucket, S3Config
from media_import.db.migrate import migrate
from media_import.db.watch import (
    FolderChanges,
    ListingDigest,
    digest_records,
    seen_digest,
    split_keys,
)
from media_import.watch.reconcile import ScanCursor, ScanReport, scan

# Keys S3 allows that a text format could trip on; all considered under the default rules.
TRICKY = [
    "BRD/VO-BRD-00001.pdf",
    "BRD/a:b;c.pdf",
    "BRD/back\\slash.pdf",
    'BRD/quote".pdf',
    "BRD/comma,here.pdf",
    "BRD/café.pdf",
    "BRD/日本.mp4",
    "BRD/🎞.mp3",
    "CAS/VO-CAS-00001.MP4",
]
IGNORED = ["BRD/", "BRD/notes.txt", "UMT/VO-UMT-00001.pdf", "root.pdf", "CAS/.pdf"]


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    migrate(database_url)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SET timezone = 'Asia/Kolkata'")  # times must not depend on it
        yield connection


@pytest.fixture
def listing(s3_server: Any, bucket: str) -> Bucket:
    """The test's bucket with 5-key pages: a handful of objects make many pages and lanes."""
    t = s3_server
    config = S3Config(bucket, t.endpoint_url, t.region, t.access_key, t.secret_key)
    return Bucket(config, page_size=5)


def whole_pass(bucket: Bucket, conn: psycopg.Connection, **options: Any) -> list[ScanReport]:
    """Ticks from the start of a pass to the end of the bucket."""
    reports, cursor = [], ScanCursor()
    while True:
        report, cursor = scan(bucket, conn, Rules(), cursor, **options)
        reports.append(report)
        if report.pass_completed:
            return reports


def changes(reports: list[ScanReport]) -> dict[str, FolderChanges]:
    total = ScanReport(started_after=None)
    for report in reports:
        total.add(report.changes)
    return total.changes


def seen(conn: psycopg.Connection) -> dict[str, tuple[bool, str | None, int | None]]:
    rows = conn.execute("SELECT key, present, etag, size_bytes FROM ingest.bucket_object")
    return {key: (present, etag, size) for key, present, etag, size in rows}


def listed(s3: Any, bucket: str) -> dict[str, tuple[bool, str, int]]:
    """What boto3 lists, in the shape of `seen` (considered keys only)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    objects = [o for page in pages for o in page.get("Contents", [])]
    return {
        o["Key"]: (True, o["ETag"].strip('"'), o["Size"])
        for o in objects
        if o["Key"] not in IGNORED and o["Key"] != "BRD/readme.txt"
    }


def body(key: str, version: int = 1) -> bytes:
    return f"{key} v{version}".encode()


# -- the digests: Arrow's and PostgreSQL's ----------------------------------------------------


def _insert(conn: psycopg.Connection, rows: list[tuple[str, bool, str | None, int | None]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO ingest.bucket_object (bucket, key, folder, present, etag, size_bytes,"
            " last_modified, changed_at) VALUES ('b', %s, 'F', %s, %s, %s, now(), now())",
            rows,
        )


def _listing_digest(rows: list[tuple[str, str | None, int]], page: int) -> str:
    digest = ListingDigest()
    for start in range(0, max(len(rows), 1), page):
        part = rows[start : start + page]
        batch = pa.RecordBatch.from_pydict(
            {
                "key": pa.array([r[0] for r in part], pa.string()),
                "size": pa.array([r[2] for r in part], pa.int64()),
                "etag": pa.array([r[1] for r in part], pa.string()),
            }
        )
        digest.update(digest_records(batch))
        digest.update(digest_records(batch.slice(0, 0)))  # an empty page changes nothing
    return digest.hexdigest()


def test_the_listing_digest_matches_the_catalogs_for_the_same_objects(conn) -> None:
    objects = [
        (key, etag, size)
        for key, etag, size in [
            *((k, f"e{i}", i) for i, k in enumerate(TRICKY)),
            ("F/new\nline", "e", 7),  # S3 allows control characters; moto and obstore don't
            ("F/tab\there", "e", 7),
            ("F/null-etag", None, 7),
            ("F/dash-etag", "-", 7),
            ("F/odd-etag", 'a:1;"\\', 0),
        ]
    ]
    objects.sort(key=lambda o: o[0].encode())  # S3's order: UTF-8 bytes
    _insert(conn, [(k, True, e, s) for k, e, s in objects])
    _insert(conn, [("F/gone", False, None, None)])  # a removal's tombstone is not seen
    for page in (1, 3, 100):
        assert _listing_digest(objects, page) == seen_digest(conn, "b", None, None)
    # A sub-range (after, upto] of the catalog against the same objects listed.
    after, upto = objects[2][0], objects[-3][0]
    inside = [o for o in objects if after.encode() < o[0].encode() <= upto.encode()]
    assert _listing_digest(inside, 2) == seen_digest(conn, "b", after, upto)
    assert _listing_digest([], 1) == seen_digest(conn, "b", "zzz", None)  # both empty


@pytest.mark.parametrize(
    "change",
    ["etag", "size", "null etag", "dash etag", "missing", "extra", "key", "order"],
)
def test_any_difference_changes_the_listing_digest(conn, change: str) -> None:
    objects = [("F/a", "x", 1), ("F/b", "-", 2), ("F/c", None, 3), ("F/c:d", "y", 4)]
    _insert(conn, [(k, True, e, s) for k, e, s in objects])
    other = list(objects)
    if change == "etag":
        other[0] = ("F/a", "z", 1)
    elif change == "size":
        other[0] = ("F/a", "x", 10)
    elif change == "null etag":
        other[1] = ("F/b", None, 2)
    elif change == "dash etag":
        other[2] = ("F/c", "-", 3)
    elif change == "missing":
        del other[3]
    elif change == "extra":
        other.append(("F/e", "y", 4))
    elif change == "key":
        other[3] = ("F/c:e", "y", 4)
    else:
        other[0], other[1] = other[1], other[0]
    assert _listing_digest(objects, 2) == seen_digest(conn, "b", None, None)
    assert _listing_digest(other, 2) != seen_digest(conn, "b", None, None)


def test_split_keys_are_every_nth_seen_key_after_a_key(conn) -> None:
    keys = [f"F/{i:03d}" for i in range(25)]
    _insert(conn, [(k, i % 3 > 0, "e", 1) for i, k in enumerate(keys)])  # tombstones count
    assert split_keys(conn, "b", None, 5, 100) == [keys[4], keys[9], keys[14], keys[19], keys[24]]
    assert split_keys(conn, "b", keys[2], 5, 12) == [keys[7], keys[12]]
    assert split_keys(conn, "b", keys[2], 5, 4) == []
    assert split_keys(conn, "b", keys[24], 5, 100) == []


# -- whole passes over a real bucket ----------------------------------------------------------

LANES = {"lanes": 4, "lane_keys": 4, "chunk_keys": 6}
SEQUENTIAL = {"lanes": 1, "chunk_keys": 6}


@pytest.mark.parametrize("options", [LANES, SEQUENTIAL], ids=["lanes", "sequential"])
def test_an_unchanged_bucket_is_proven_unchanged_without_writing(
    listing, conn, put_many, s3, bucket, options
) -> None:
    put_many([(k, body(k)) for k in [*TRICKY, *IGNORED]])
    first = whole_pass(listing, conn, **options)
    assert changes(first) == {"BRD": FolderChanges(added=8), "CAS": FolderChanges(added=1)}
    assert seen(conn) == listed(s3, bucket)  # the tricky keys went through COPY intact
    times = dict(conn.execute("SELECT key, last_modified FROM ingest.bucket_object"))
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    assert times == {
        o["Key"]: o["LastModified"] for p in pages for o in p["Contents"] if o["Key"] in times
    }
    before = conn.execute("SELECT key, changed_at FROM ingest.bucket_object").fetchall()

    again = whole_pass(listing, conn, **options)

    assert changes(again) == {}
    assert sum(r.unchanged_chunks for r in again) == sum(r.chunks for r in again)
    assert sum(r.listed for r in again) == len(TRICKY) + len(IGNORED)
    assert sum(r.considered for r in again) == len(TRICKY)
    assert conn.execute("SELECT key, changed_at FROM ingest.bucket_object").fetchall() == before
    if options is LANES:
        assert max(r.lanes for r in again) > 2


def _archive() -> list[str]:
    return [f"{f}/VO-{f}-{n:05d}.pdf" for f in ("BRD", "CAS", "DVD") for n in range(10, 20)]


@pytest.mark.parametrize("options", [LANES, SEQUENTIAL], ids=["lanes", "sequential"])
def test_every_kind_of_change_is_found_wherever_lanes_end(
    listing, conn, put_many, s3, bucket, options
) -> None:
    keys = _archive()
    put_many([(k, body(k)) for k in keys])
    whole_pass(listing, conn, **options)
    # A lane ends on a key the previous pass saw: remove one such key, and the bucket's last.
    split = split_keys(conn, bucket, None, LANES["lane_keys"], 100)[3]
    assert split in keys[:-1]
    s3.delete_object(Bucket=bucket, Key=split)
    s3.delete_object(Bucket=bucket, Key=keys[-1])
    put_many(
        [
            ("BRD/VO-BRD-00001.pdf", b"sorts before every key seen"),
            ("CAS/VO-CAS-00011.pdf", body("CAS/VO-CAS-00011.pdf", 22)),  # another size
            ("CAS/VO-CAS-00012.pdf", body("CAS/VO-CAS-00012.pdf", 2)),  # same size, other ETag
            ("CAS/VO-CAS-00013.pdf", body("CAS/VO-CAS-00013.pdf")),  # the same bytes again
            ("ZZZ/VO-ZZZ-00001.pdf", b"after every key seen"),
            ("BRD/readme.txt", b"ignored"),
            ("UMT/VO-UMT-00001.pdf", b"excluded folder"),
        ]
    )

    found = changes(whole_pass(listing, conn, **options))

    split_folder = split.split("/")[0]
    want = {
        "BRD": FolderChanges(added=1),
        "CAS": FolderChanges(modified=2),
        "DVD": FolderChanges(removed=1),
        "ZZZ": FolderChanges(added=1),
    }
    want[split_folder] = FolderChanges(
        want[split_folder].added, want[split_folder].modified, want[split_folder].removed + 1
    )
    assert found == want
    live = {k: v for k, v in seen(conn).items() if v[0]}
    assert live == listed(s3, bucket)
    assert seen(conn)[split] == (False, None, None)

    # Uploaded again, the removed key is seen again (its tombstone updated: "modified").
    put_many([(split, body(split))])
    assert changes(whole_pass(listing, conn, **options)) == {split_folder: FolderChanges(0, 1, 0)}
    assert changes(whole_pass(listing, conn, **options)) == {}


def test_a_tick_stops_at_its_key_budget_with_lanes_as_one_listing_does(
    listing, conn, put_many
) -> None:
    keys = sorted(_archive())
    put_many([(k, body(k)) for k in keys])
    whole_pass(listing, conn, lanes=1)

    for options in (SEQUENTIAL, {"lanes": 4, "lane_keys": 5, "chunk_keys": 5}):
        report, cursor = scan(listing, conn, Rules(), ScanCursor(), max_keys=12, **options)
        # Pages of 5 keys: the chunk that crosses 12 keys ends with its page, at key 15.
        assert (report.listed, cursor.start_after) == (15, keys[14])
        assert not report.pass_completed
        report, cursor = scan(listing, conn, Rules(), cursor, max_keys=100, **options)
        assert (report.listed, report.pass_completed, cursor.pass_number) == (15, True, 2)


def test_a_tick_stops_at_its_time_budget_and_leaves_no_lane_running(
    listing, conn, put_many
) -> None:
    keys = sorted(_archive())
    put_many([(k, body(k)) for k in keys])
    whole_pass(listing, conn, lanes=1)
    ticks = iter(range(1000))

    report, cursor = scan(
        listing, conn, Rules(), ScanCursor(), max_seconds=1, clock=lambda: next(ticks), **LANES
    )

    assert report.chunks == 1  # the clock says a second passed after the first chunk
    assert cursor.start_after == keys[3]  # the first lane's end
    assert report.lanes > 2
    assert not [t for t in threading.enumerate() if t.name.startswith(("lane", "catalog"))]


def test_a_listing_error_reaches_the_tick_and_leaves_no_lane_running(s3_server, conn) -> None:
    t = s3_server
    missing = S3Config("no-such-bucket-here", t.endpoint_url, t.region, t.access_key, t.secret_key)
    with pytest.raises(Exception, match=r"(?i)bucket"):
        scan(Bucket(missing), conn, Rules(), ScanCursor(), **LANES)
    assert not [t for t in threading.enumerate() if t.name.startswith(("lane", "catalog"))]
