"""SigV4Signer against botocore's own S3 signer: the same request at the same instant must
carry the same signature, for awkward keys, ports, regions and temporary credentials."""

from __future__ import annotations

import datetime as dt

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from media_import.core.s3_get import Endpoint
from media_import.core.sigv4 import EMPTY_SHA256, SigV4Signer, canonical_query

NOW = dt.datetime(2026, 12, 1, 20, 30, 5, tzinfo=dt.UTC)

KEYS = [
    "BRD/VO-BRD-00012.json",
    "FILE/with space & plus+sign.md5",
    "VHS/é àccents/ünïcode ✓.pdf",
    "odd/quote'\"percent%25/semi;colon=equals?.json",
    "tilde~/star*/dollar$/comma,.json",
]


def botocore_headers(
    url: str,
    region: str,
    token: str | None,
    monkeypatch: pytest.MonkeyPatch,
    at: dt.datetime = NOW,
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at.replace(tzinfo=None))
    request = AWSRequest(method="GET", url=url)
    # botocore hashes the (empty) body of a plain-HTTP request rather than leaving it unsigned.
    request.headers["X-Amz-Content-SHA256"] = EMPTY_SHA256
    botocore.auth.S3SigV4Auth(
        Credentials("AKIDEXAMPLE", "s3cr3t/key+", token), "s3", region
    ).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def ours(host: str, path: str, region: str, token: str | None, query: str = "") -> dict[str, str]:
    signer = SigV4Signer("AKIDEXAMPLE", "s3cr3t/key+", region, token)
    lines = signer.header_lines(host, path, NOW.timestamp(), query).split("\r\n")
    return {
        name.lower(): value for name, _, value in (line.partition(": ") for line in lines if line)
    }


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("endpoint_url", "region", "token"),
    [
        ("http://127.0.0.1:9000", "us-east-1", None),
        ("http://minio.internal", "eu-west-3", None),
        ("http://localhost:4566", "ap-southeast-2", "FwoGZXIvYXdzE//temporary+token=="),
    ],
)
def test_signature_matches_botocore(key, endpoint_url, region, token, monkeypatch):
    endpoint = Endpoint.for_bucket("media-archive", endpoint_url, region)
    path = endpoint.path(key)
    expected = botocore_headers(f"{endpoint_url}{path}", region, token, monkeypatch)
    got = ours(endpoint.host_header, path, region, token)
    assert got["authorization"] == expected["authorization"]
    assert got["x-amz-date"] == expected["x-amz-date"] == "20261201T203005Z"
    assert got["x-amz-content-sha256"] == EMPTY_SHA256
    assert got.get("x-amz-security-token") == token


def test_one_signer_signs_requests_to_several_hosts_over_several_seconds(monkeypatch):
    """What a signer formats once a second and host is formatted again when either moves."""
    signer = SigV4Signer("AKIDEXAMPLE", "s3cr3t/key+", "eu-west-3")
    for second in (0, 0, 1, 86400):
        at = NOW + dt.timedelta(seconds=second)
        for url in ("http://127.0.0.1:9000", "http://minio.internal", "http://127.0.0.1:9000"):
            endpoint = Endpoint.for_bucket("media-archive", url, "eu-west-3")
            for key in KEYS[:3]:
                path = endpoint.path(key)
                lines = signer.header_lines(endpoint.host_header, path, at.timestamp())
                got = dict(line.split(": ", 1) for line in lines.split("\r\n") if line)
                expected = botocore_headers(f"{url}{path}", "eu-west-3", None, monkeypatch, at)
                assert got["Authorization"] == expected["authorization"], (second, url, key)
                assert got["Host"] == endpoint.host_header


@pytest.mark.parametrize(
    "params",
    [
        {"list-type": "2", "encoding-type": "url", "max-keys": "1000"},
        {
            "list-type": "2",
            "encoding-type": "url",
            "max-keys": "7",
            "prefix": "VHS/é àccents/",
            "start-after": "VHS/é àccents/with space & plus+sign.md5",
            "continuation-token": "1/abc+def/==",
        },
    ],
)
@pytest.mark.parametrize(
    ("endpoint_url", "region"), [("http://127.0.0.1:9000", "us-east-1"), (None, "eu-west-3")]
)
def test_a_listing_s_query_is_signed_as_botocore_signs_it(
    params, endpoint_url, region, monkeypatch
):
    endpoint = Endpoint.for_bucket("media-archive", endpoint_url, region)
    path = endpoint.path_prefix or "/"
    query = canonical_query(params)
    base = endpoint_url or f"https://{endpoint.host}"
    expected = botocore_headers(f"{base}{path}?{query}", region, None, monkeypatch)
    got = ours(endpoint.host_header, path, region, None, query)
    assert got["authorization"] == expected["authorization"]


def test_the_signing_key_follows_the_day():
    signer = SigV4Signer("AKIDEXAMPLE", "secret", "us-east-1")
    first = signer.header_lines("h", "/b/k", NOW.timestamp())
    next_day = signer.header_lines("h", "/b/k", (NOW + dt.timedelta(days=1)).timestamp())
    assert "20261201/us-east-1/s3/aws4_request" in first
    assert "20261202/us-east-1/s3/aws4_request" in next_day
    # Back to the first day: the same signature as before, so no stale key was kept.
    assert signer.header_lines("h", "/b/k", NOW.timestamp()) == first


def test_endpoints_for_aws_and_for_a_server():
    aws = Endpoint.for_bucket("media-archive", None, "eu-central-1")
    assert (aws.host, aws.port, aws.tls) == (
        "media-archive.s3.eu-central-1.amazonaws.com",
        443,
        True,
    )
    assert aws.path("BRD/a b.json") == "/BRD/a%20b.json"
    minio = Endpoint.for_bucket("media-archive", "https://minio.example:9443/s3/", None)
    assert (minio.host, minio.port, minio.tls) == ("minio.example", 9443, True)
    assert minio.host_header == "minio.example:9443"
    assert minio.path("BRD/x.json") == "/s3/media-archive/BRD/x.json"
    plain = Endpoint.for_bucket("b", "http://127.0.0.1", None)
    assert (plain.port, plain.host_header) == (80, "127.0.0.1")
