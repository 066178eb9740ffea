"""A bucket configured without keys signs with the AWS default chain, as botocore resolves it:
the environment's keys, a profile in a shared credentials file (and the region in its config
file). Checked against moto over HTTP for what is listed and read, and against a scripted
server for what is signed (moto does not check signatures)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from media_import.core import credentials
from media_import.core.s3_get import S3ReadError
from media_import.core.storage import (
    Bucket,
    RangeRead,
    S3Config,
    StorageError,
    describe_storage_error,
)
from media_import_tests.core.scripted_http import ok, scripted

LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name>'
    b"<Contents><Key>k/1</Key><LastModified>2026-12-01T10:20:30.000Z</LastModified>"
    b"<ETag>&quot;e&quot;</ETag><Size>2</Size></Contents>"
    b"<IsTruncated>false</IsTruncated></ListBucketResult>"
)


def a_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    """A named profile with keys and a region, as `aws configure --profile archive` writes."""
    (tmp_path / "credentials").write_text(
        "[archive]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n"
    )
    (tmp_path / "config").write_text(f"[profile archive]\nregion = {region}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "archive")


def test_the_environment_s_temporary_keys_sign_listing_and_reads(no_chain):
    no_chain.setenv("AWS_ACCESS_KEY_ID", "ASIACHAIN")
    no_chain.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    no_chain.setenv("AWS_SESSION_TOKEN", "chain+token==")

    def answer(head: str, number: int) -> bytes:
        return ok(LISTING if "list-type" in head else b"{}")

    with scripted(answer) as (endpoint, seen):
        bucket = Bucket(S3Config("b", f"http://{endpoint.host_header}", "eu-west-1"))
        assert [o.key for page in bucket.list_pages() for o in page] == ["k/1"]
        assert bucket.read_many([RangeRead("k/1")]) == {"k/1": b"{}"}
    assert len(seen.requests) == 2
    for request in seen.requests:
        assert "Credential=ASIACHAIN/" in request
        assert "/eu-west-1/s3/aws4_request" in request
        assert "x-amz-security-token: chain+token==" in request


def test_a_profile_s_keys_and_region_sign_when_the_configuration_has_neither(no_chain, tmp_path):
    a_profile(tmp_path, no_chain, "eu-west-3")
    with scripted(lambda head, number: ok(b"{}")) as (endpoint, seen):
        bucket = Bucket(S3Config("b", f"http://{endpoint.host_header}"))
        assert bucket.config.region == "eu-west-3"
        assert bucket.read_many([RangeRead("k/1", 5)]) == {"k/1": b"{}"}
    [request] = seen.requests
    assert "Credential=AKIAPROFILE/" in request and "/eu-west-3/s3/aws4_request" in request
    assert "x-amz-security-token" not in request
    # Configured keys and region come first, the chain is not consulted for them.
    configured = Bucket(S3Config("b", "http://127.0.0.1:1", "us-west-2", "AKIACONF", "s"))
    assert configured.config.region == "us-west-2"
    assert configured._signer().access_key_id == "AKIACONF"


def test_keyless_reads_list_what_obstore_could_not(s3_server, bucket, put_many, no_chain):
    """Listing and reads with the chain's keys go through s3_list and s3_get, so a key with a
    tab is listed like any other (obstore refuses such keys: the folder's whole
    discovery failed), and obstore's own calls get the same credentials."""
    keys = ["BRD/VO-BRD-00001.json", "BRD/tab\there.json", "BRD/VO-BRD-00001.md5", "DVC/x.pdf"]
    put_many((key, key.encode()) for key in keys)
    no_chain.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    no_chain.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    keyless = Bucket(S3Config(bucket, s3_server.endpoint_url, s3_server.region))
    assert sorted(o.key for page in keyless.list_pages("BRD") for o in page) == sorted(keys[:3])
    assert keyless.read_many([RangeRead(keys[1])]) == {keys[1]: keys[1].encode()}
    assert keyless.top_level_folders() == ["BRD", "DVC"]
    assert keyless.md5_many([keys[3]]) == {keys[3]: hashlib.md5(keys[3].encode()).hexdigest()}
    keyless.check_reachable()


def test_obstore_s_calls_take_a_profile_s_credentials(s3_server, bucket, put, no_chain, tmp_path):
    """obstore reads no profile files itself: finding the folders with only a profile works
    because the chain's credentials are handed to it."""
    put("VHS/a.json", b"{}")
    a_profile(tmp_path, no_chain, s3_server.region)
    keyless = Bucket(S3Config(bucket, s3_server.endpoint_url))
    assert keyless.top_level_folders() == ["VHS"]
    keyless.check_reachable()


def test_without_any_credentials_reads_fail_saying_where_to_put_them(s3_server, bucket, no_chain):
    keyless = Bucket(S3Config(bucket, s3_server.endpoint_url, s3_server.region))
    assert keyless._signer() is None
    for attempt in (
        lambda: list(keyless.list_batches("BRD")),
        lambda: keyless.read_many([RangeRead("BRD/a.json")]),
        keyless.check_reachable,
    ):
        with pytest.raises(StorageError, match=r"no credentials for bucket .*AWS_ACCESS_KEY_ID"):
            attempt()


def test_the_chain_is_resolved_once_per_environment(no_chain):
    no_chain.setenv("AWS_ACCESS_KEY_ID", "AKIAONE")
    no_chain.setenv("AWS_SECRET_ACCESS_KEY", "one")
    first = credentials.default_chain()
    assert credentials.default_chain() is first
    no_chain.setenv("AWS_ACCESS_KEY_ID", "AKIATWO")
    second = credentials.default_chain()
    assert second is not first
    assert credentials.frozen(second.credentials)[0] == "AKIATWO"


def test_a_refusal_names_the_credentials_that_were_used(no_chain):
    """An AccessDenied points at the keys when they were configured, at the default chain
    when they came from it."""
    xml = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    denied = f"HTTP/1.1 403 Forbidden\r\nContent-Length: {len(xml)}\r\n\r\n".encode() + xml
    chain_keys = {"AWS_ACCESS_KEY_ID": "AKIACHAIN", "AWS_SECRET_ACCESS_KEY": "s"}
    for name, value in chain_keys.items():
        no_chain.setenv(name, value)
    with scripted(lambda head, number: denied) as (endpoint, _):
        url = f"http://{endpoint.host_header}"
        for config, hint in (
            (S3Config("b", url, "us-east-1", "AKIACONF", "s"), "AWS_ACCESS_KEY_ID and"),
            (S3Config("b", url, "us-east-1"), "the default chain's credentials"),
        ):
            with pytest.raises(S3ReadError) as caught:
                list(Bucket(config).list_batches())
            message = describe_storage_error(config, caught.value)
            assert message.startswith(f"access to bucket 'b' at {url} was refused (check ")
            assert hint in message
