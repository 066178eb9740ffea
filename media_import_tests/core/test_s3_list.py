"""s3_list against real servers over TCP: moto's S3 for S3's answers (compared with boto3's
own listing of the same bucket), and a scripted HTTP server for failures and for pages laid
out otherwise than AWS, MinIO and moto lay them out."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

from media_import.core import s3_get, s3_list
from media_import.core.s3_get import Endpoint, S3ReadError, S3Unavailable
from media_import.core.sigv4 import SigV4Signer
from media_import.core.storage import Bucket, RangeRead, S3Config
from media_import_tests.core.scripted_http import ok, scripted, slow_down

AWKWARD_KEYS = [
    "BRD/with space & plus+sign.md5",
    "BRD/é àccents/ünïcode ✓.pdf",
    "BRD/percent%25 <lt> &amp; 'quote\".json",
    "BRD/~tilde*star$dollar,comma;semi=eq?.json",
]


def signer_for(s3_server) -> SigV4Signer:
    return SigV4Signer(s3_server.access_key, s3_server.secret_key, s3_server.region)


def rows(batches) -> list[tuple]:
    return [
        tuple(row.values())
        for batch in batches
        for row in batch.to_pylist()  # key, size, etag, last_modified
    ]


def boto3_rows(s3, bucket: str, prefix: str = "", start_after: str = "") -> list[tuple]:
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, StartAfter=start_after
    )
    for page in pages:
        for item in page.get("Contents", []):
            modified = item["LastModified"].astimezone(dt.UTC)
            found.append((item["Key"], item["Size"], item["ETag"].strip('"'), modified))
    return found


# -- against moto ----------------------------------------------------------------------------


def test_lists_what_boto3_lists_page_by_page_with_awkward_keys(s3_server, bucket, put_many, s3):
    ordinary = [f"BRD/VO-BRD-{i:05d}.{ext}" for i in range(12) for ext in ("json", "md5")]
    others = ["BRC/VO-BRC-00001.json", "BRD-old/VO-BRD-00001.json", "DVC/VO-DVC-00001.json"]
    put_many((key, key.encode() * (len(key) % 5 + 1)) for key in ordinary + AWKWARD_KEYS + others)
    endpoint = Endpoint.for_bucket(bucket, s3_server.endpoint_url, s3_server.region)
    signer = signer_for(s3_server)

    whole = list(s3_list.list_batches(endpoint, signer, page_size=7))
    assert [b.num_rows for b in whole][:-1] == [7] * (len(whole) - 1)
    assert whole[0].schema == s3_list.SCHEMA
    assert rows(whole) == boto3_rows(s3, bucket)
    assert {r[0] for r in rows(whole)} == set(ordinary + AWKWARD_KEYS + others)

    after = "BRD/VO-BRD-00004.md5"
    folder = list(s3_list.list_batches(endpoint, signer, "BRD/", after, page_size=5))
    assert rows(folder) == boto3_rows(s3, bucket, "BRD/", after)
    assert rows(folder)[0][0] > after


def test_a_bucket_lists_a_folder_through_s3_list_with_keys_or_the_default_chain(
    s3_server, bucket, put_many, monkeypatch
):
    keys = ["BRD/VO-BRD-00001.json", "BRD/VO-BRD-00001.md5", "BRD-old/x.json", "DVC/y.json"]
    put_many((key, b"{}") for key in keys)
    t = s3_server
    with_keys = Bucket(S3Config(bucket, t.endpoint_url, t.region, t.access_key, t.secret_key))
    # Without keys in the configuration, the default chain's credentials: here the
    # environment's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", t.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", t.secret_key)
    keyless = Bucket(S3Config(bucket, t.endpoint_url, t.region))
    assert with_keys._signer() is not None and keyless._signer() is not None
    for bucket_ in (with_keys, keyless):
        # "BRD" and "BRD/" are the folder BRD, never "BRD-old".
        assert [o.key for page in bucket_.list_pages("BRD") for o in page] == keys[:2]
        assert [o.key for page in bucket_.list_pages("BRD/", keys[0]) for o in page] == keys[1:2]
    ours = rows(with_keys.list_batches())
    assert ours == rows(keyless.list_batches())
    assert [r[0] for r in ours] == sorted(keys)


def test_an_empty_folder_lists_no_batch_and_a_missing_bucket_raises(s3_server, bucket):
    signer = signer_for(s3_server)
    endpoint = Endpoint.for_bucket(bucket, s3_server.endpoint_url, s3_server.region)
    assert list(s3_list.list_batches(endpoint, signer, "NOTHING/")) == []
    missing = Endpoint.for_bucket("no-such-bucket-here", s3_server.endpoint_url, "us-east-1")
    with pytest.raises(S3ReadError) as caught:
        list(s3_list.list_batches(missing, signer))
    assert (caught.value.status, caught.value.code) == (404, "NoSuchBucket")


# -- against a scripted server -----------------------------------------------------------------

MODIFIED = "2026-12-01T10:20:30.000Z"


def page(keys: list[str], token: str | None = None, encoded: bool = True) -> bytes:
    """A ListBucketResult as AWS writes it (keys URL-encoded as asked)."""
    contents = "".join(
        f"<Contents><Key>{quote_plus(k, safe='/') if encoded else k}</Key>"
        f"<LastModified>{MODIFIED}</LastModified><ETag>&quot;e{i}&quot;</ETag>"
        f"<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType>"
        f"<Size>{i}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        for i, k in enumerate(keys)
    )
    more = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name>'
        + ("<EncodingType>url</EncodingType>" if encoded else "")
        + (more if token else "<IsTruncated>false</IsTruncated>")
        + contents
        + "</ListBucketResult>"
    ).encode()


def query_of(head: str) -> dict[str, str]:
    target = head.split(" ")[1]
    return {name: values[0] for name, values in parse_qs(urlsplit(target).query).items()}


SIGNER = SigV4Signer("AKID", "secret", "us-east-1")


def test_pages_follow_their_tokens_and_slow_down_is_retried(monkeypatch):
    monkeypatch.setattr(s3_get, "BASE_BACKOFF_S", 0.01)
    token = "1/abc+def=="  # a token with characters that need encoding in a query

    # moto cannot store keys with control characters; S3 can, and lists them URL-encoded.
    second = ["BRD/c d+e.json", "BRD/f%g.json", "BRD/tab\there.json", "BRD/new\nline.json"]

    def answer(head: str, number: int) -> bytes:
        if number <= 2:
            return slow_down()
        query = query_of(head)
        if query.get("continuation-token") == token:
            return ok(page(second))
        return ok(page(["BRD/a.json", "BRD/b.json"], token))

    with scripted(answer) as (endpoint, seen):
        got = list(s3_list.list_batches(endpoint, SIGNER, "BRD/", "BRD/0", page_size=2))
    assert [r[0] for r in rows(got)] == ["BRD/a.json", "BRD/b.json", *second]
    assert rows(got)[0][1:] == (0, "e0", dt.datetime(2026, 12, 1, 10, 20, 30, tzinfo=dt.UTC))
    assert len(seen.requests) == 4  # two SlowDowns, then the two pages on one connection
    assert seen.connections == 1
    first = query_of(seen.requests[2])
    assert first == {
        "encoding-type": "url",
        "list-type": "2",
        "max-keys": "2",
        "prefix": "BRD/",
        "start-after": "BRD/0",
    }
    assert query_of(seen.requests[3])["continuation-token"] == token
    assert "Authorization: AWS4-HMAC-SHA256 Credential=AKID/" in seen.requests[3]


def test_a_dropped_connection_asks_for_the_page_again():
    def answer(head: str, number: int) -> bytes | None:
        if number == 2:
            return None  # hang up instead of sending the second page
        if "continuation-token" in query_of(head):
            return ok(page(["k/3", "k/4"]))
        return ok(page(["k/1", "k/2"], "next"))

    with scripted(answer) as (endpoint, seen):
        got = list(s3_list.list_batches(endpoint, SIGNER, "k/"))
    assert [r[0] for r in rows(got)] == ["k/1", "k/2", "k/3", "k/4"]
    assert seen.connections == 2
    assert query_of(seen.requests[1]) == query_of(seen.requests[2])


def test_a_listing_that_keeps_failing_raises_s3_unavailable(monkeypatch):
    monkeypatch.setattr(s3_get, "BASE_BACKOFF_S", 0.01)
    failing = pytest.raises(S3Unavailable, match="failed 6 times, last: SlowDown")
    with scripted(lambda head, n: slow_down()) as (endpoint, seen), failing:
        list(s3_list.list_batches(endpoint, SIGNER))
    assert len(seen.requests) == s3_get.MAX_ATTEMPTS


def test_access_denied_is_raised_at_once():
    xml = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    denied = f"HTTP/1.1 403 Forbidden\r\nContent-Length: {len(xml)}\r\n\r\n".encode() + xml
    refused = pytest.raises(S3ReadError, match="AccessDenied")
    with scripted(lambda head, n: denied) as (endpoint, seen), refused:
        list(s3_list.list_batches(endpoint, SIGNER))
    assert len(seen.requests) == 1


def test_pages_laid_out_otherwise_and_keys_not_url_encoded():
    # Pretty-printed, fields in another order, plain quotes in the ETag, and keys XML-escaped
    # by a server that ignores encoding-type.
    laid_out = (
        b"<ListBucketResult>\n  <IsTruncated>false</IsTruncated>\n"
        b"  <Contents>\n    <Size>7</Size>\n    <Key>A/x &amp; y &lt;1&gt;.json</Key>\n"
        b'    <ETag>"abc-2"</ETag>\n    <LastModified>2026-01-02T03:04:05Z</LastModified>\n'
        b"  </Contents>\n</ListBucketResult>\n"
    )
    plain = page(["A/plus+kept.json", "A/percent%kept.json"], encoded=False)

    def answer(head: str, number: int) -> bytes:
        return ok(laid_out if number == 1 else plain)

    with scripted(answer) as (endpoint, _):
        first = rows(s3_list.list_batches(endpoint, SIGNER))
        second = rows(s3_list.list_batches(endpoint, SIGNER))
    assert first == [
        ("A/x & y <1>.json", 7, "abc-2", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    ]
    assert [r[0] for r in second] == ["A/plus+kept.json", "A/percent%kept.json"]


def test_a_truncated_page_without_a_token_is_an_error():
    broken = page(["k/1"]).replace(b"false", b"true")
    broken_page = pytest.raises(s3_get.BadResponse, match="NextContinuationToken")
    with scripted(lambda head, n: ok(broken)) as (endpoint, _), broken_page:
        list(s3_list.list_batches(endpoint, SIGNER))


def test_aws_s_and_moto_s_pages_are_cut_by_arrow_kernels(s3_server, bucket, put_many):
    """The fast path (no regular expression, no GIL) is the one real servers' pages take; the
    object-by-object reading is only for other layouts."""
    put_many((f"BRD/VO-BRD-{i:05d}.json", b"{}") for i in range(3))
    pages = s3_list._Pages(
        Endpoint.for_bucket(bucket, s3_server.endpoint_url, s3_server.region),
        signer_for(s3_server),
        "",
    )
    try:
        pages.ask({"list-type": "2", "encoding-type": "url"})
        moto_page = pages.answer()
    finally:
        pages.close()
    for body in (moto_page, page(["BRD/a.json", "BRD/b c.json"])):
        fields = s3_list._fields_by_cutting(body)
        assert fields is not None
        assert len(fields[0]) == body.count(b"<Contents>") > 0
    assert s3_list._fields_by_cutting(page([])) is not None  # an empty page
    laid_out = b"<ListBucketResult><Contents><Size>1</Size><Key>k</Key></Contents>"
    assert s3_list._fields_by_cutting(laid_out) is None


def test_a_listing_until_a_key_asks_for_no_page_past_it():
    pages = {None: page(["k/a1", "k/a2"], "2"), "2": page(["k/b1", "k/b2"], "3")}

    def answer(head: str, number: int) -> bytes:
        return ok(pages.get(query_of(head).get("continuation-token"), page(["k/c1"])))

    with scripted(answer) as (endpoint, seen):
        # "k/b2" ends the second page: that page is the last asked for, though truncated.
        got = list(s3_list.list_batches(endpoint, SIGNER, "k/", until="k/b1"))
    assert [r[0] for r in rows(got)] == ["k/a1", "k/a2", "k/b1", "k/b2"]
    assert len(seen.requests) == 2


def test_each_page_is_parsed_inside_parsing_before_its_batch_is_handed_out():
    pages = {None: page(["k/a1", "k/a2"], "2"), "2": page(["k/b1", "k/b2"], "3")}

    def answer(head: str, number: int) -> bytes:
        return ok(pages.get(query_of(head).get("continuation-token"), page(["k/c1"])))

    got: list = []
    handed_out_at_parse: list[int] = []

    class Parsing:
        """Records how many batches the caller had when each page's parsing began."""

        def __enter__(self) -> None:
            handed_out_at_parse.append(len(got))

        def __exit__(self, *exc: object) -> None:
            return None

    with scripted(answer) as (endpoint, _):
        for batch in s3_list.list_batches(endpoint, SIGNER, "k/", parsing=Parsing()):
            got.append(batch)
    assert [r[0] for r in rows(got)] == ["k/a1", "k/a2", "k/b1", "k/b2", "k/c1"]
    assert handed_out_at_parse == [0, 1, 2]  # once a page, each before its batch


def test_temporary_credentials_from_the_environment_sign_every_request(monkeypatch):
    from media_import.defs.automation.resources import event_queue_from_env
    from media_import.defs.importing.resources import resources_from_env

    def answer(head: str, number: int) -> bytes:
        return ok(page(["k/1"]) if "list-type" in head else b"{}")

    with scripted(answer) as (endpoint, seen):
        for name, value in {
            "BUCKET_NAME": "b",
            "S3_ENDPOINT_URL": f"http://{endpoint.host_header}",
            "AWS_ACCESS_KEY_ID": "ASIATEMP",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE//temporary+token==",
            "S3_EVENTS_QUEUE_URL": "http://127.0.0.1:1/queue/events",
        }.items():
            monkeypatch.setenv(name, value)
        bucket = resources_from_env()["s3"].process_config_and_initialize().open()
        assert [o.key for page_ in bucket.list_pages() for o in page_] == ["k/1"]
        assert bucket.read_many([RangeRead("k/1")]) == {"k/1": b"{}"}
    assert len(seen.requests) == 2
    for request in seen.requests:
        assert "x-amz-security-token: FwoGZXIvYXdzE//temporary+token==" in request
        assert "Credential=ASIATEMP/" in request
    queue = event_queue_from_env().process_config_and_initialize()
    assert queue.session_token == "FwoGZXIvYXdzE//temporary+token=="
