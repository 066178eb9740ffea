"""The storage facade against real servers: listings exactly as S3 lists them (odd keys
included, ranges fetched in parallel), reads pinned to the listed version, credentials from
the default chain, and secrets that never show."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from benchmarks.archive import ArchiveSpec
from benchmarks.s3_standin import StandIn
from media_import.core.s3_connection import aws_endpoint, bucket_endpoint
from media_import.core.s3_ranges import page_apart
from media_import.core.storage import (
    Bucket,
    ObjectGone,
    RangeRead,
    S3Config,
    StorageError,
)
from media_import.planning import PlanningJob


def config_of(t: Any, bucket: str, **extra: Any) -> S3Config:
    return S3Config(bucket, t.endpoint_url, t.region, t.access_key, t.secret_key, **extra)


def boto_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def keys_of(batches: Any) -> list[str]:
    return [k for b in batches for k in b.column("key").to_pylist()]


# -- listing -----------------------------------------------------------------------------------

ODD_KEYS = [
    "BRD/VO-BRD-00001.json",
    "BRD/VO-BRD-00001\tcopy.json",  # a tab: XML cannot carry it unencoded
    "BRD/VO-BRD-00002\x01.json",  # a control character
    "BRD/../VO-BRD-00003.json",  # a ".." segment
    "BRD/./VO-BRD-00004.json",
    "BRD//VO-BRD-00005.json",  # an empty segment
    "BRD/sub/",  # a folder marker
    "BRD/sub.json",
    "BRD/VO-BRD-00006 copia è+1%.pdf",
    "BRD-old/VO-BRD-00007.json",  # another folder, though it shares the prefix's letters
    "/BRD/VO-BRD-00008.mp4",  # a leading slash: the top-level folder ""
]


def test_odd_keys_are_listed_exactly_and_never_fail_their_folder(s3_server, bucket, put, s3):
    for key in ODD_KEYS:
        put(key, key.encode())
    storage = Bucket(config_of(s3_server, bucket), page_size=3)
    expected = boto_keys(s3, bucket, "BRD/")
    assert len(expected) == 9
    assert keys_of(storage.list_batches("BRD")) == expected
    assert keys_of(storage.list_folder("BRD")) == expected
    assert keys_of(storage.list_batches()) == boto_keys(s3, bucket)
    assert storage.top_level_folders() == ["", "BRD", "BRD-old"]
    # One that obstore cannot name is still read: as listed, or as the missing object it is.
    bodies = storage.read_many([RangeRead("BRD/sub.json", None, 12)])
    assert bodies == {"BRD/sub.json": b"BRD/sub.json"}


@pytest.fixture(scope="module")
def standin() -> Any:
    with StandIn(ArchiveSpec(40_000, seed=5)) as server:
        yield server


@pytest.mark.parametrize("workers", [1, 4, 16])
@pytest.mark.parametrize("bounds", ["none", "some", "past the end", "dense"])
def test_a_folder_listed_in_parallel_ranges_is_the_folder(standin, workers, bounds):
    """Cut at given bounds and wherever the first pages show more: each key once, in order."""
    config = S3Config(standin.bucket, standin.endpoint_url, "us-east-1", "x", "y")
    storage = Bucket(config, list_concurrency=workers)
    folder = sorted(standin.spec.folder_names())[1]
    sequential = keys_of(storage.list_batches(folder))
    assert len(sequential) > 2000  # three pages and more
    chosen = {
        "none": [],
        "some": sequential[500::900],
        "past the end": [sequential[-1], f"{folder}/zz", f"{folder}/zzz"],
        "dense": sequential[::7],
    }[bounds]
    assert keys_of(storage.list_folder(folder, chosen)) == sequential


def test_guessed_cuts_land_a_page_apart_on_numbered_keys():
    first, last = "BRD/AC-BRD-00000.json", "BRD/AC-BRD-00249.pdf"
    cuts = page_apart(first, last, 1000, None, 4)
    assert [c[:16] for c in cuts] == [
        "BRD/AC-BRD-00498",
        "BRD/AC-BRD-00747",
        "BRD/AC-BRD-00996",
        "BRD/AC-BRD-01246",
    ]
    assert cuts == sorted(cuts) and cuts[0] > last
    assert page_apart(first, last, 1000, "BRD/AC-BRD-00800", 4)[-1] < "BRD/AC-BRD-00800"
    assert page_apart("a", "a", 2, None, 3) == []  # no spread to go by


# -- reads pinned to the listing --------------------------------------------------------------


def test_an_object_overwritten_between_listing_and_reading_is_not_half_read(s3_server, bucket, put):
    put("BRD/VO-BRD-00001.json", b'{"version": 1}')
    put("BRD/VO-BRD-00001.pdf", b"%PDF-1.4 version 1")
    put("BRD/VO-BRD-00001.mp4", b"video version 1")
    storage = Bucket(config_of(s3_server, bucket))
    listed = {
        row["key"]: row for b in storage.list_folder("BRD") for row in b.to_pylist()
    }  # the listing a run works from

    def read(key: str, length: int | None = None) -> RangeRead:
        return RangeRead(key, length, listed[key]["size"], listed[key]["etag"])

    assert storage.read_many([read("BRD/VO-BRD-00001.json")]) == {
        "BRD/VO-BRD-00001.json": b'{"version": 1}'
    }
    # Overwritten with bodies of the same length: only the version tells them apart.
    put("BRD/VO-BRD-00001.json", b'{"version": 2}')
    put("BRD/VO-BRD-00001.pdf", b"%PDF-1.4 version 2")
    put("BRD/VO-BRD-00001.mp4", b"video version 2")
    got = storage.read_many([read("BRD/VO-BRD-00001.json"), read("BRD/VO-BRD-00001.pdf", 5)])
    hashed = storage.md5_many([read("BRD/VO-BRD-00001.mp4")])
    for result in [*got.values(), *hashed.values()]:
        assert isinstance(result, ObjectGone)
        assert str(result) == "overwritten since it was listed"
    # Deleted: gone too, for that object alone.
    missing = storage.read_many([RangeRead("BRD/VO-BRD-00009.json", None, 3, "a" * 32)])
    assert str(missing["BRD/VO-BRD-00009.json"]) == "deleted since it was listed"


# -- credentials and settings ------------------------------------------------------------------


def test_a_profile_from_the_shared_files_reads_through_both_clients(
    s3_server, bucket, put, no_chain, tmp_path: Path
):
    (tmp_path / "credentials").write_text(
        f"[archive]\naws_access_key_id = {s3_server.access_key}\n"
        f"aws_secret_access_key = {s3_server.secret_key}\n"
    )
    (tmp_path / "config").write_text("[profile archive]\nregion = eu-south-1\n")
    no_chain.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    no_chain.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    put("BRD/a.json", b"{}")
    storage = Bucket(S3Config(bucket, s3_server.endpoint_url, profile_name="archive"))
    assert keys_of(storage.list_folder("BRD")) == ["BRD/a.json"]
    assert storage.read_many([RangeRead("BRD/a.json")]) == {"BRD/a.json": b"{}"}
    assert storage.top_level_folders() == ["BRD"]


def test_without_any_credentials_a_read_says_where_to_put_them(s3_server, bucket, no_chain):
    storage = Bucket(S3Config(bucket, s3_server.endpoint_url, s3_server.region))
    with pytest.raises(StorageError, match=r"no credentials for bucket .*AWS_ACCESS_KEY_ID"):
        storage.read_many([RangeRead("BRD/a.json")])


def test_requests_go_where_aws_and_custom_endpoints_expect_them():
    def at(bucket: str, **extra: Any) -> str:
        return bucket_endpoint(S3Config(bucket, **extra))

    assert (
        at("media-archive", region="eu-west-1")
        == "https://media-archive.s3.eu-west-1.amazonaws.com"
    )
    # Dots: AWS's wildcard certificate covers one label only, so the bucket goes in the path.
    assert at("media.archive.prod", region="eu-west-1") == "https://s3.eu-west-1.amazonaws.com"
    assert at("media-archive", region="eu-west-1", force_path_style=True) == (
        "https://s3.eu-west-1.amazonaws.com"
    )
    assert aws_endpoint("cn-north-1") == "https://s3.cn-north-1.amazonaws.com.cn"
    assert at("archive", endpoint_url="https://minio.local:9000/") == "https://minio.local:9000"
    assert S3Config("media.archive", "https://x").path_style
    assert not S3Config("archive", region="eu-west-1").path_style


def test_secrets_never_show_in_a_repr_and_survive_pickling():
    config = S3Config("b", None, "eu-west-1", "AKIAEXAMPLE", "sentinel-secret", "sentinel-token")
    shown = f"{config!r} {config}"
    assert "sentinel" not in shown and "AKIAEXAMPLE" in shown
    job = PlanningJob(config, 8, 1000, "postgresql://importer:sentinel-db@db:5432/catalog")
    assert "sentinel" not in repr(job)
    again = pickle.loads(pickle.dumps(job))  # as it travels to a planning process
    assert again.s3 == config
    assert isinstance(again.s3.secret_access_key, SecretStr)
    assert again.s3.secret_access_key.get_secret_value() == "sentinel-secret"


def test_the_resource_hides_its_secrets_once_resolved(monkeypatch):
    from media_import.defs.importing.resources import resources_from_env

    monkeypatch.setenv("BUCKET_NAME", "archive")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sentinel-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "sentinel-token")
    resource = resources_from_env()["s3"].process_config_and_initialize()
    assert resource.aws_secret_access_key == "sentinel-secret"
    assert "sentinel" not in f"{resource!r} {resource} {resource.config()!r}"
    # The event queue's resource shares the connection fields and hides them the same way.
    from media_import.defs.automation.resources import event_queue_from_env

    monkeypatch.setenv("S3_EVENTS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/q")
    queue = event_queue_from_env().process_config_and_initialize()
    assert queue.aws_secret_access_key == "sentinel-secret"
    shown = f"{queue!r} {queue.open().config!r}"
    assert "sentinel" not in shown and "AKIAEXAMPLE" in shown
