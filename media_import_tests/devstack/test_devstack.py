"""The local stand-ins behave like the real services: PostgreSQL over TCP, S3 over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
import psycopg
import pytest
from obstore.store import S3Store

from media_import.devstack import (
    EmbeddedPostgres,
    LocalS3Server,
    make_bucket,
    put_objects,
    s3_client,
)

if TYPE_CHECKING:  # fixtures' types only; conftest is loaded by pytest itself
    from media_import_tests.conftest import BucketWriter, PgServer, S3Target

ODD_KEY = "BRD/VO-BRD-00012 copia è.pdf"  # a space and a non-ASCII letter, as in the archive


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_data_dir() -> Iterator[Path]:
    """A data dir of its own (these tests start and stop servers), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="media-import-pgdir-"))
    yield tmp / "data"
    shutil.rmtree(tmp, ignore_errors=True)


def test_database_fixture_accepts_connection_and_copy(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE media (key text PRIMARY KEY, size bigint)")
        with conn.cursor() as cur, cur.copy("COPY media (key, size) FROM STDIN") as copy:
            for i in range(1000):
                copy.write_row((f"BRD/{i:05d}.mxf", i))
        row = conn.execute("SELECT count(*), sum(size) FROM media").fetchone()
    assert row == (1000, sum(range(1000)))


def test_each_test_gets_an_empty_database(database_url: str, pg_server: PgServer) -> None:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
        settings = conn.execute("SHOW max_connections").fetchone()
    assert tables == (0,)
    if pg_server.embedded:
        assert settings is not None and int(settings[0]) >= 200


def test_restart_keeps_rows_and_stop_start_is_idempotent(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir)
    with server:
        assert server.start() is server  # second start is a no-op
        url = server.create_database("catalog")
        assert server.create_database("catalog") == url  # already there: fine
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t SELECT generate_series(1, 10)")
    server.stop()  # already stopped: no-op

    # A new object on the same data dir reuses it (no initdb) and the previous port.
    again = EmbeddedPostgres(pg_data_dir).start()
    try:
        assert again.port == server.port
        with psycopg.connect(again.url("catalog")) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)
        again.stop()
        again.start()  # stop() then start() on the same object
        with psycopg.connect(again.url("catalog")) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)
    finally:
        again.stop()


def test_restart_after_killed_server_with_stale_pid_file(pg_data_dir: Path) -> None:
    server = EmbeddedPostgres(pg_data_dir).start()
    pid_file = pg_data_dir / "postmaster.pid"
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    time.sleep(0.3)
    # The worst stale case: the recorded PID now belongs to another live process (ours).
    lines = pid_file.read_text().splitlines()
    pid_file.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    try:
        server.start()
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_start_failure_reports_log_tail(pg_data_dir: Path) -> None:
    first = EmbeddedPostgres(pg_data_dir).start()
    try:
        other_dir = pg_data_dir.with_name("other")
        with pytest.raises(RuntimeError, match="last lines of"):
            EmbeddedPostgres(other_dir, port=first.port).start()  # port already taken
    finally:
        first.stop()


# -- S3 (moto server) ------------------------------------------------------------------------


def test_local_s3_server_start_stop() -> None:
    with LocalS3Server() as server:
        assert server.start() is server
        make_bucket(server.endpoint_url, "some-bucket")
        assert server.endpoint_url.startswith("http://127.0.0.1:")
    server.stop()


def test_any_credentials_are_accepted(s3_server: S3Target, bucket: str, put: BucketWriter) -> None:
    put("a.txt", b"hello")
    client = s3_client(s3_server.endpoint_url, access_key="AKIA-NOT-REAL", secret_key="nope")
    assert client.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"hello"


@pytest.fixture(scope="module")
def listing_bucket(s3_server: S3Target) -> tuple[S3Target, str, dict[str, bytes]]:
    """2,500 small objects plus one awkward key: shared by the listing tests (~15 s to fill)."""
    name = f"test-listing-{uuid.uuid4().hex[:12]}"
    creds = {"access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    make_bucket(s3_server.endpoint_url, name, region=s3_server.region, **creds)
    objects = {f"BRD/VO-BRD-{i:05d}.mxf": f"body {i}".encode() for i in range(2500)}
    objects[ODD_KEY] = b"%PDF-1.4 quality report"
    objects["OTHER/outside-prefix.bin"] = b"x"
    count = put_objects(
        s3_server.endpoint_url, name, objects.items(), region=s3_server.region, **creds
    )
    assert count == len(objects)
    return s3_server, name, objects


def test_boto3_lists_in_pages_and_serves_range_and_head(
    listing_bucket: tuple[S3Target, str, dict[str, bytes]],
) -> None:
    target, name, objects = listing_bucket
    client = s3_client(target.endpoint_url)
    pages = list(
        client.get_paginator("list_objects_v2").paginate(
            Bucket=name, Prefix="BRD/", PaginationConfig={"PageSize": 1000}
        )
    )
    assert [len(p["Contents"]) for p in pages] == [1000, 1000, 501]
    keys = [o["Key"] for p in pages for o in p["Contents"]]
    assert sorted(keys) == sorted(k for k in objects if k.startswith("BRD/"))

    ranged = client.get_object(Bucket=name, Key=ODD_KEY, Range="bytes=0-7")
    assert ranged["Body"].read() == b"%PDF-1.4"
    assert ranged["ContentRange"] == f"bytes 0-7/{len(objects[ODD_KEY])}"

    head = client.head_object(Bucket=name, Key=ODD_KEY)
    assert head["ContentLength"] == len(objects[ODD_KEY])
    assert head["ETag"].startswith('"')  # S3 ETags are quoted


def _obstore(target: S3Target, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=target.endpoint_url,
        access_key_id=target.access_key,
        secret_access_key=target.secret_key,
        region=target.region,
        client_options={"allow_http": True},  # moto speaks plain HTTP
        virtual_hosted_style_request=False,  # bucket in the path: no DNS for <bucket>.127.0.0.1
    )


def test_obstore_lists_gets_and_ranges_the_same_objects(
    listing_bucket: tuple[S3Target, str, dict[str, bytes]],
) -> None:
    target, name, objects = listing_bucket
    store = _obstore(target, name)

    batches = list(obstore.list(store, prefix="BRD/", chunk_size=1000))
    assert [len(b) for b in batches] == [1000, 1000, 501]
    metas = {m["path"]: m for batch in batches for m in batch}
    assert set(metas) == {k for k in objects if k.startswith("BRD/")}

    odd = metas[ODD_KEY]  # keys come back decoded, spaces and accents intact
    assert odd["size"] == len(objects[ODD_KEY])
    assert odd["e_tag"] is not None and odd["e_tag"].startswith('"')  # quoted, as S3 sends it
    assert odd["last_modified"].tzinfo is not None

    assert obstore.get(store, ODD_KEY).bytes().to_bytes() == objects[ODD_KEY]
    assert bytes(obstore.get_range(store, ODD_KEY, start=0, end=8)) == b"%PDF-1.4"
    assert bytes(obstore.get_range(store, ODD_KEY, start=9, length=7)) == b"quality"
    assert obstore.head(store, ODD_KEY)["e_tag"] == odd["e_tag"]


def test_obstore_missing_key_is_file_not_found(s3_server: S3Target, bucket: str) -> None:
    with pytest.raises(FileNotFoundError):
        obstore.head(_obstore(s3_server, bucket), "BRD/missing.mxf")


def test_obstore_agrees_with_boto3_etag(
    s3_server: S3Target, bucket: str, put: BucketWriter
) -> None:
    put(ODD_KEY, b"abc")
    boto_etag = s3_client(s3_server.endpoint_url).head_object(Bucket=bucket, Key=ODD_KEY)["ETag"]
    assert obstore.head(_obstore(s3_server, bucket), ODD_KEY)["e_tag"] == boto_etag


def test_s3_env_points_at_bucket_and_database(s3_env: dict[str, str], bucket: str) -> None:
    assert os.environ["BUCKET_NAME"] == bucket == s3_env["BUCKET_NAME"]
    assert os.environ["DATABASE_URL"].startswith("postgresql://")
    assert os.environ["S3_ENDPOINT_URL"] == s3_env["S3_ENDPOINT_URL"]


def test_put_many_fixture(
    s3_server: S3Target, bucket: str, put_many: Callable[[Iterable[tuple[str, bytes]]], int]
) -> None:
    assert put_many([(f"k/{i}", b"v") for i in range(20)]) == 20
    listed = s3_client(s3_server.endpoint_url).list_objects_v2(Bucket=bucket, Prefix="k/")
    assert listed["KeyCount"] == 20


def test_obstore_key_characters_and_range_edges(
    s3_server: S3Target, bucket: str, put_many: Callable[[Iterable[tuple[str, bytes]]], int]
) -> None:
    keys = [ODD_KEY, "BRD/a+b.mxf", "BRD/100%.mxf", "BRD/x&y=z?.mxf", "BRD/日本.mov"]
    put_many([(k, b"0123456789") for k in keys] + [("BRD/empty.bin", b"")])
    store = _obstore(s3_server, bucket)
    listed = {m["path"] for batch in obstore.list(store, prefix="BRD/") for m in batch}
    assert listed == {*keys, "BRD/empty.bin"}
    for key in keys:
        assert bytes(obstore.get_range(store, key, start=0, length=4)) == b"0123"
    # A range past the end is cut to the object's size, as S3 does...
    assert bytes(obstore.get_range(store, ODD_KEY, start=5, length=1000)) == b"56789"
    # ...but any range on an empty object is 416 InvalidRange (also real S3): read sizes first.
    assert obstore.get(store, "BRD/empty.bin").bytes().to_bytes() == b""
    with pytest.raises(Exception, match="416"):
        obstore.get_range(store, "BRD/empty.bin", start=0, length=16)
