"""The import against a second, independent S3 implementation that checks signatures
(SeaweedFS), over HTTPS with a private CA given by AWS_CA_BUNDLE, into a bucket whose name has
dots, directly and through an HTTP CONNECT proxy given by HTTPS_PROXY. (moto, the suite's
default server, runs every other pipeline test.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from media_import_tests.pipeline.conftest import Pipeline, make_asset, md5_lines
from media_import_tests.s3servers import (
    ACCESS_KEY,
    SECRET_KEY,
    Certificates,
    ConnectProxy,
    SeaweedFS,
    certificates,
)

FOLDER = "BRD"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def seaweedfs(tls: Certificates) -> Iterator[SeaweedFS]:
    with SeaweedFS(tls) as server:
        yield server


@pytest.fixture
def archive(seaweedfs: SeaweedFS) -> tuple[str, list[str]]:
    """A dotted bucket with two valid assets and one whose .md5 contradicts its streaming copy."""
    name = f"media.archive.{uuid.uuid4().hex[:12]}"
    client = seaweedfs.client()
    client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    good = [make_asset(FOLDER, f"VO-BRD-0000{n}") for n in (1, 2)]
    bad = make_asset(FOLDER, "VO-BRD-00003")
    bad.objects[bad.key(".md5")] = md5_lines([("0" * 32, "VO-BRD-00003.mp4")])
    for asset in [*good, bad]:
        for key, body in asset.items():
            client.put_object(Bucket=name, Key=key, Body=body)  # type: ignore[attr-defined]
    return name, [*good[0].objects, *good[1].objects]


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    seaweedfs: SeaweedFS,
    tls: Certificates,
    archive: tuple[str, list[str]],
    database_url: str,
    no_chain: pytest.MonkeyPatch,
) -> dict[str, str]:
    values = {
        "S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "BUCKET_NAME": archive[0],
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_CA_BUNDLE": str(tls.ca_file),
        "DATABASE_URL": database_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    return values


def _catalogued(pipeline: Pipeline, imported: list[str]) -> None:
    assert set(pipeline.assets()) == {"VO-BRD-00001", "VO-BRD-00002"}
    assert set(pipeline.files()) == set(imported)
    assert pipeline.rejections() == {
        f"{FOLDER}/VO-BRD-00003.{e}": {"checksum_mismatch"} for e in ("mp4", "json", "md5", "pdf")
    }
    verified = pipeline.query("SELECT count(*) FROM asset_file WHERE md5_verified")
    assert verified == [(2,)]  # each streaming copy, against its .md5


def test_import_from_a_signature_checking_server_over_https_into_a_dotted_bucket(
    env: dict[str, str], database_url: str, archive: tuple[str, list[str]]
) -> None:
    pipeline = Pipeline(dg.DagsterInstance.ephemeral(), database_url)
    run = pipeline.run(FOLDER)
    assert run.success, run.step_failures()
    _catalogued(pipeline, archive[1])
    # Run again: nothing changes.
    before = pipeline.dump("asset_file")
    assert pipeline.run(FOLDER).success
    assert pipeline.dump("asset_file") == before


def test_import_through_an_https_proxy(
    env: dict[str, str],
    database_url: str,
    archive: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        pipeline = Pipeline(dg.DagsterInstance.ephemeral(), database_url)
        run = pipeline.run(FOLDER)
        assert run.success, run.step_failures()
        port = env["S3_ENDPOINT_URL"].rsplit(":", 1)[1]
        # Both clients (obstore and botocore) went through the proxy's tunnels.
        assert len([t for t in proxy.tunnels if t.strip().endswith(f":{port}")]) >= 2
    _catalogued(pipeline, archive[1])


def test_a_wrong_secret_fails_the_run_at_once_and_rejects_nothing(
    env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    pipeline = Pipeline(dg.DagsterInstance.ephemeral(), database_url)
    run = pipeline.run(FOLDER)
    assert not run.success
    assert run.step_failures()["s3_objects"] == (
        f"S3 at {env['S3_ENDPOINT_URL']} refused the credentials (SignatureDoesNotMatch): "
        "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    assert "STEP_UP_FOR_RETRY" not in {e.event_type_value for e in run.result.all_events}
    assert pipeline.count("rejection") == 0 and pipeline.count("asset") == 0


def test_without_the_ca_bundle_the_certificate_is_named(
    env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from media_import.preflight import preflight
    from media_import.settings import SettingsError

    monkeypatch.delenv("AWS_CA_BUNDLE")
    with pytest.raises(SettingsError, match=r"not trusted \(check AWS_CA_BUNDLE"):
        preflight({k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"})
