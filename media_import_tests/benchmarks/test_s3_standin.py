"""The benchmark S3 stand-in answers real clients as S3 does: boto3, and obstore through the
project's own `Bucket`."""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from benchmarks.archive import ArchiveSpec
from benchmarks.s3_standin import StandIn
from media_import.core.storage import Bucket, RangeRead, S3Config
from media_import.devstack.s3server import s3_client

SPEC = ArchiveSpec(2000, seed=3)
KEYS = list(SPEC.keys())


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    """One read-only stand-in for the module (tests that change it start their own)."""
    with StandIn(SPEC) as server:
        yield server


def boto(server: StandIn) -> Any:
    return s3_client(server.endpoint_url, "us-east-1", "x", "y")


def bucket_of(server: StandIn) -> Bucket:
    config = S3Config(server.bucket, server.endpoint_url, "us-east-1", "x", "y")
    return Bucket(config)


def paginate(client: Any, bucket: str, **kwargs: Any) -> tuple[list[str], list[str]]:
    """(keys, common prefixes) of a whole ListObjectsV2 pagination."""
    keys: list[str] = []
    prefixes: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, **kwargs):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


def listed_keys(
    bucket: Bucket, prefix: str | None = None, start_after: str | None = None
) -> list[str]:
    return [o.key for page in bucket.list_pages(prefix, start_after) for o in page]


def test_keep_alive_requests_are_answered_in_order(standin):
    """Requests one after another on one connection, as a pooled client sends them."""
    json_key, md5_key, pdf = (
        next(k for k in KEYS if k.endswith(e)) for e in (".json", ".md5", ".pdf")
    )
    hostname, port = standin.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(hostname, int(port), timeout=10)
    answers: list[tuple[int, bytes]] = []
    for path, headers in (
        (json_key, {}),
        (pdf, {"Range": "bytes=0-4"}),
        ("nope.json", {}),
        (md5_key, {}),
    ):
        connection.request("GET", f"/{standin.bucket}/{path}", headers=headers)
        response = connection.getresponse()
        answers.append((response.status, response.read()))
    connection.close()
    assert answers[0] == (200, SPEC.body(json_key))
    assert answers[1] == (206, b"%PDF-")
    assert answers[2][0] == 404 and b"<Code>NoSuchKey</Code>" in answers[2][1]
    assert answers[3] == (200, SPEC.body(md5_key))


# -- boto3 -----------------------------------------------------------------------------------


def test_boto3_lists_pages_with_prefix_and_start_after(standin):
    client = boto(standin)
    keys, _ = paginate(client, standin.bucket)
    assert keys == KEYS
    folder = "DVC/"
    in_folder = [k for k in KEYS if k.startswith(folder)]
    paged, _ = paginate(client, standin.bucket, Prefix=folder, PaginationConfig={"PageSize": 7})
    assert paged == in_folder
    after, _ = paginate(client, standin.bucket, Prefix=folder, StartAfter=in_folder[9])
    assert after == in_folder[10:]
    first = client.list_objects_v2(Bucket=standin.bucket, Prefix=folder, MaxKeys=3)
    assert first["KeyCount"] == 3 and first["IsTruncated"] is True
    row = first["Contents"][0]
    assert row["ETag"] == f'"{SPEC.etag(in_folder[0])}"'
    assert row["Size"] == SPEC.size(in_folder[0])
    assert row["StorageClass"] == "STANDARD"


def test_boto3_lists_top_level_folders_with_a_delimiter(standin):
    client = boto(standin)
    keys, prefixes = paginate(
        client, standin.bucket, Delimiter="/", PaginationConfig={"PageSize": 5}
    )
    assert keys == []
    assert prefixes == [f"{folder}/" for folder in SPEC.folder_names()]
    keys, prefixes = paginate(client, standin.bucket, Prefix="BRD/", Delimiter="/")
    assert (keys, prefixes) == ([k for k in KEYS if k.startswith("BRD/")], [])


def test_boto3_reads_objects_ranges_and_heads(standin):
    client = boto(standin)
    pdf = next(k for k in KEYS if k.endswith(".pdf"))
    whole = client.get_object(Bucket=standin.bucket, Key=pdf)
    body = whole["Body"].read()
    assert body == SPEC.body(pdf)
    assert whole["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    part = client.get_object(Bucket=standin.bucket, Key=pdf, Range="bytes=0-4")
    assert part["Body"].read() == b"%PDF-"
    assert part["ContentRange"] == f"bytes 0-4/{len(body)}"
    tail = client.get_object(Bucket=standin.bucket, Key=pdf, Range="bytes=-6")
    assert tail["Body"].read() == b"%%EOF\n"
    head = client.head_object(Bucket=standin.bucket, Key=pdf)
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == whole["ETag"]
    assert head["LastModified"] == whole["LastModified"]


def test_boto3_sees_s3_errors(standin):
    client = boto(standin)
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=standin.bucket, Key="BRD/VO-BRD-99999.mp4")
    with pytest.raises(ClientError) as missing_head:
        client.head_object(Bucket=standin.bucket, Key="BRD/VO-BRD-99999.mp4")
    assert missing_head.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as past_the_end:
        client.get_object(Bucket=standin.bucket, Key=KEYS[0], Range="bytes=100000-100010")
    assert past_the_end.value.response["Error"]["Code"] == "InvalidRange"
    with pytest.raises(client.exceptions.NoSuchBucket):
        client.list_objects_v2(Bucket="another-bucket")
    with pytest.raises(ClientError) as bad_token:
        client.list_objects_v2(Bucket=standin.bucket, ContinuationToken="not-ours")
    assert bad_token.value.response["Error"]["Code"] == "InvalidArgument"
    # A HEAD's error has no body: the kept-alive connection still serves the next request.
    with pytest.raises(ClientError):
        client.head_bucket(Bucket="another-bucket")
    client.head_bucket(Bucket=standin.bucket)
    assert client.list_objects_v2(Bucket=standin.bucket, MaxKeys=1)["KeyCount"] == 1


# -- obstore, through the importer's Bucket -----------------------------------------------------


def test_bucket_lists_everything_in_order(standin):
    bucket = bucket_of(standin)
    pages = list(bucket.list_pages())
    assert [o.key for page in pages for o in page] == KEYS
    assert max(len(page) for page in pages) == 1000
    info = pages[0][0]
    assert (info.size, info.etag) == (SPEC.size(KEYS[0]), SPEC.etag(KEYS[0]))
    assert info.last_modified.tzinfo is not None


def test_bucket_lists_a_folder_after_a_key(standin):
    bucket = bucket_of(standin)
    in_folder = [k for k in KEYS if k.startswith("REE/")]
    assert listed_keys(bucket, "REE/") == in_folder
    assert listed_keys(bucket, "REE/", start_after=in_folder[4]) == in_folder[5:]
    assert listed_keys(bucket, start_after=KEYS[-3]) == KEYS[-2:]
    assert bucket.top_level_folders() == SPEC.folder_names()
    bucket.check_reachable()


def test_bucket_reads_heads_and_hashes(standin):
    bucket = bucket_of(standin)
    json_key = next(k for k in KEYS if k.endswith(".json"))
    pdf_key = next(k for k in KEYS if k.endswith(".pdf"))
    bodies = bucket.read_many([RangeRead(json_key, 100), RangeRead(pdf_key)])
    assert bodies == {json_key: SPEC.body(json_key)[:100], pdf_key: SPEC.body(pdf_key)}
    streaming = [k for k in KEYS if k.endswith((".mp3", ".mp4"))][:20]
    reads = [RangeRead(k, None, SPEC.size(k), SPEC.etag(k)) for k in streaming]
    assert bucket.md5_many(reads) == {k: SPEC.etag(k) for k in streaming}
    missing = bucket.read_many([RangeRead("BRD/VO-BRD-99999.json")])
    assert isinstance(missing["BRD/VO-BRD-99999.json"], Exception)


def test_a_wrong_bucket_is_named_in_the_error(standin):
    config = S3Config("no-such-bucket", standin.endpoint_url, "us-east-1", "x", "y")
    with pytest.raises(Exception, match="does not exist"):
        Bucket(config).check_reachable()


# -- overlay ---------------------------------------------------------------------------------


def test_added_and_removed_objects_show_in_listings_and_reads():
    spec = ArchiveSpec(400)
    keys = list(spec.keys())
    new_asset = spec.extra_keys(1)
    odd_key = "BRD/VO-BRD-00001 copia è+1%.pdf"  # space, non-ASCII, '+' and '%' survive
    with StandIn(spec) as server:
        bucket, client = bucket_of(server), boto(server)
        for key in new_asset:
            server.add(key, spec.body(key))
        server.add(odd_key, b"%PDF-1.4 odd")
        overwritten = keys[1]
        server.add(overwritten, b"a new version")
        assert server.remove(keys[0]) is True
        assert server.remove(keys[0]) is False
        assert server.remove(odd_key) is True
        server.add(odd_key, b"%PDF-1.4 back")

        expected = sorted([*keys[1:], *new_asset, odd_key], key=str.encode)
        assert listed_keys(bucket) == expected
        assert paginate(client, server.bucket, PaginationConfig={"PageSize": 9})[0] == expected
        rows = {o.key: o for page in bucket.list_pages() for o in page}
        assert rows[overwritten].etag == hashlib.md5(b"a new version").hexdigest()
        assert rows[overwritten].size == len(b"a new version")

        reads = bucket.read_many([RangeRead(k) for k in (odd_key, overwritten, new_asset[0])])
        assert reads == {
            odd_key: b"%PDF-1.4 back",
            overwritten: b"a new version",
            new_asset[0]: spec.body(new_asset[0]),
        }
        gone = bucket.read_many([RangeRead(keys[0])])[keys[0]]
        assert isinstance(gone, Exception)
        assert server.stats()["objects"] == len(expected)


# -- latency ---------------------------------------------------------------------------------


def test_injected_latency_delays_each_request_but_not_the_others():
    with StandIn(ArchiveSpec(400), list_latency=0.05) as server:
        bucket = bucket_of(server)
        started = time.perf_counter()
        next(iter(bucket.list_pages("BRD/")))
        assert time.perf_counter() - started >= 0.05

        server.set_latency(get_latency=0.2)
        reads = [RangeRead(k) for k in list(ArchiveSpec(400).keys())[:32]]
        started = time.perf_counter()
        bodies = bucket.read_many(reads)
        elapsed = time.perf_counter() - started
        assert not any(isinstance(b, Exception) for b in bodies.values())
        # 32 concurrent GETs of 0.2 s each: together they take about one latency, not 32.
        assert 0.2 <= elapsed < 1.5
