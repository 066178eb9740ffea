"""s3_get against real servers over TCP: moto's S3 for S3's answers, and a scripted HTTP server
for what S3 does now and then (503 SlowDown, dropped connections, chunked bodies, HTTP/1.0
peers, silence) that moto never does."""

from __future__ import annotations

import socket
import time

import pytest

from media_import.core import s3_get
from media_import.core.s3_get import Endpoint, S3ReadError, S3Unavailable
from media_import.core.sigv4 import SigV4Signer
from media_import.core.storage import Bucket, RangeRead, S3Config
from media_import_tests.core.scripted_http import ok, scripted, slow_down


def signer_for(s3_server) -> SigV4Signer:
    return SigV4Signer(s3_server.access_key, s3_server.secret_key, s3_server.region)


# -- against moto ----------------------------------------------------------------------------


def test_reads_whole_objects_and_heads_over_few_connections(s3_server, bucket, put_many):
    bodies = {
        f"BRD/VO-BRD-{i:05d}.json": f'{{"n": {i}}}'.encode() * (i % 7 + 1) for i in range(150)
    }
    odd = {
        "FILE/with space & plus+sign.md5": b"d41d8cd98f00b204e9800998ecf8427e  x\n",
        "VHS/é àccents/ünïcode ✓.pdf": b"%PDF-1.4 not really",
        "VHS/empty.pdf": b"",
    }
    put_many([*bodies.items(), *odd.items()])
    endpoint = Endpoint.for_bucket(bucket, s3_server.endpoint_url, s3_server.region)
    reads = [RangeRead(k) for k in [*bodies, *odd]] + [RangeRead("VHS/missing.json")]
    reads.append(RangeRead("BRD/VO-BRD-00003.json", 5))  # a head: replaces the whole read
    reads.remove(RangeRead("BRD/VO-BRD-00003.json"))

    got = s3_get.read_many(endpoint, signer_for(s3_server), reads, connections=3)

    assert len(got) == len(reads)
    for key, body in [*bodies.items(), *odd.items()]:
        if key != "BRD/VO-BRD-00003.json":
            assert got[key] == body, key
    assert got["BRD/VO-BRD-00003.json"] == bodies["BRD/VO-BRD-00003.json"][:5]
    missing = got["VHS/missing.json"]
    assert isinstance(missing, S3ReadError)
    assert (missing.status, missing.code) == (404, "NoSuchKey")
    assert "NoSuchKey (HTTP 404)" in str(missing)


def test_a_missing_bucket_is_each_read_s_answer(s3_server):
    endpoint = Endpoint.for_bucket("no-such-bucket-here", s3_server.endpoint_url, "us-east-1")
    got = s3_get.read_many(endpoint, signer_for(s3_server), [RangeRead("a/b.json")])
    assert isinstance(got["a/b.json"], S3ReadError)
    assert got["a/b.json"].code == "NoSuchBucket"


def test_bucket_reads_through_s3_get_when_given_keys(s3_server, bucket, put):
    put("BRD/VO-BRD-00001.json", b"{}")
    config = S3Config(
        bucket, s3_server.endpoint_url, s3_server.region, s3_server.access_key, s3_server.secret_key
    )
    store = Bucket(config)
    assert store._signer() is not None
    assert store.read_many([RangeRead("BRD/VO-BRD-00001.json")]) == {"BRD/VO-BRD-00001.json": b"{}"}


def test_bucket_reads_through_s3_get_with_the_default_credential_chain(
    s3_server, bucket, put_many, monkeypatch
):
    """Without keys in the configuration the reads still go through s3_get, signed with the
    default chain's credentials (core.credentials; the environment's keys here): whole
    objects, heads and a missing key's error."""
    put_many([("BRD/VO-BRD-00001.json", b'{"n": 1}'), ("BRD/VO-BRD-00001.pdf", b"%PDF-1.7 ...")])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    store = Bucket(S3Config(bucket, s3_server.endpoint_url, s3_server.region))
    assert store._signer().access_key_id == s3_server.access_key
    got = store.read_many(
        [
            RangeRead("BRD/VO-BRD-00001.json"),
            RangeRead("BRD/VO-BRD-00001.pdf", 5),
            RangeRead("BRD/VO-BRD-99999.json"),
        ]
    )
    assert got["BRD/VO-BRD-00001.json"] == b'{"n": 1}'
    assert got["BRD/VO-BRD-00001.pdf"] == b"%PDF-"
    missing = got["BRD/VO-BRD-99999.json"]
    assert isinstance(missing, S3ReadError) and missing.status == 404


# -- against a scripted server -----------------------------------------------------------------


def key_of(head: str) -> str:
    return head.split(" ")[1].removeprefix("/b/")


SIGNER = SigV4Signer("AKID", "secret", "us-east-1")


def test_slow_down_answers_are_retried():
    def answer(head: str, number: int) -> bytes:
        return slow_down() if number <= 2 else ok(key_of(head).encode())

    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead("x.json")])
    assert got == {"x.json": b"x.json"}
    assert len(seen.requests) == 3
    assert "Authorization: AWS4-HMAC-SHA256 Credential=AKID/" in seen.requests[0]


def test_a_read_that_keeps_failing_fails_the_call(monkeypatch):
    monkeypatch.setattr(s3_get, "BASE_BACKOFF_S", 0.01)
    failing = pytest.raises(S3Unavailable, match="failed 6 times, last: SlowDown")
    with scripted(lambda head, n: slow_down()) as (endpoint, seen), failing:
        s3_get.read_many(endpoint, SIGNER, [RangeRead("x.json"), RangeRead("y.json")])
    assert len(seen.requests) >= s3_get.MAX_ATTEMPTS


def test_dropped_connections_are_reopened_and_their_reads_retried():
    def answer(head: str, number: int) -> bytes | None:
        return None if number % 3 == 1 else ok(key_of(head).encode())

    keys = [f"k{i}" for i in range(30)]
    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead(k) for k in keys], connections=4)
    assert got == {k: k.encode() for k in keys}
    assert seen.connections > 4


def test_requests_are_pipelined_and_their_answers_taken_in_order():
    def answer(head: str, number: int) -> bytes:
        key = key_of(head)
        if key.startswith("chunked"):  # answers of every framing, back to back
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        if key.startswith("missing"):
            xml = b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
            return f"HTTP/1.1 404 Not Found\r\nContent-Length: {len(xml)}\r\n\r\n".encode() + xml
        if key == "busy" and number < 40:
            return slow_down()
        return ok(key.encode())

    keys = [f"k{i}" for i in range(60)] + ["chunked1", "missing1", "busy", "chunked2", "k60"]
    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead(k) for k in keys], 2, depth=8)
    assert got.pop("chunked1") == got.pop("chunked2") == b"abc"
    assert isinstance(missing := got.pop("missing1"), S3ReadError) and missing.code == "NoSuchKey"
    assert got == {k: k.encode() for k in keys if not k.startswith(("chunked", "missing"))}
    assert seen.connections == 2
    assert seen.pipelined > len(keys) // 2  # most requests came before the previous answer

    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead(k) for k in keys], 2, depth=1)
    assert got["k60"] == b"k60" and seen.pipelined == 0


def test_a_server_refusing_pipelined_requests_gets_them_one_at_a_time():
    keys = [f"k{i}" for i in range(40)]
    with scripted(lambda head, n: ok(key_of(head).encode()), refuse_pipelining=True) as (
        endpoint,
        seen,
    ):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead(k) for k in keys], 4, depth=8)
    assert got == {k: k.encode() for k in keys}
    # Each of the first connections answered once, then hung up; one at a time after that,
    # on connections kept alive: nothing near one connection a read.
    assert seen.connections <= 4 + 4
    assert seen.pipelined <= 4 + 4
    assert len(seen.requests) == len(keys)  # every read sent again was never answered before


def test_bodies_by_chunks_by_connection_close_and_http_1_0():
    def answer(head: str, number: int) -> bytes:
        key = key_of(head)
        if key.startswith("chunked"):
            return (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
            )
        if key.startswith("close"):
            return ok(b"closing", "Connection: close")
        if key.startswith("http10"):
            return b"HTTP/1.0 200 OK\r\n\r\nuntil the end"
        if key.startswith("empty-chunked"):
            return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        return ok(b"plain")

    keys = ["chunked1", "close1", "http10", "plain1", "chunked2", "close2", "empty-chunked"]
    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead(k) for k in keys], connections=2)
    assert got == {
        "chunked1": b"hello, world",
        "chunked2": b"hello, world",
        "close1": b"closing",
        "close2": b"closing",
        "http10": b"until the end",
        "plain1": b"plain",
        "empty-chunked": b"",
    }
    assert seen.connections >= 4  # two closes and the HTTP/1.0 answer each cost a connection


def test_ranges_and_anonymous_requests():
    with scripted(lambda head, n: ok(head.encode())) as (endpoint, _):
        got = s3_get.read_many(endpoint, None, [RangeRead("a b/ü.pdf", 1024)])
    head = got["a b/ü.pdf"].decode()
    assert head.startswith("GET /b/a%20b/%C3%BC.pdf HTTP/1.1\r\n")
    assert "Range: bytes=0-1023" in head
    assert "Authorization" not in head


def test_a_silent_server_times_out_and_the_read_is_retried(monkeypatch):
    monkeypatch.setattr(s3_get, "REQUEST_TIMEOUT_S", 0.3)

    def answer(head: str, number: int) -> bytes:
        if number == 1:
            time.sleep(2.5)  # longer than the timeout and the watchdog's 1 s tick
        return ok(b"late but fine")

    with scripted(answer) as (endpoint, seen):
        got = s3_get.read_many(endpoint, SIGNER, [RangeRead("x")], connections=1)
    assert got == {"x": b"late but fine"}
    assert len(seen.requests) == 2


def test_an_unreachable_endpoint_raises_soon(monkeypatch):
    monkeypatch.setattr(s3_get, "BASE_BACKOFF_S", 0.01)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = holder.getsockname()[1]
    try:
        endpoint = Endpoint.for_bucket("b", f"http://127.0.0.1:{port}", None)
        started = time.monotonic()
        with pytest.raises(S3Unavailable, match="cannot connect to the S3 endpoint"):
            s3_get.read_many(endpoint, SIGNER, [RangeRead(f"k{i}") for i in range(50)])
        assert time.monotonic() - started < 5
    finally:
        holder.close()
