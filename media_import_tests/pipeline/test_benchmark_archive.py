"""The benchmarks' synthetic archive is importable as it is: every asset of it goes through the
real job with no rejection and no deferral, served by moto and by the benchmark S3 stand-in."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.archive import ArchiveSpec
from benchmarks.s3_standin import StandIn
from media_import.core.inventory import folder_of
from media_import_tests.pipeline.conftest import Pipeline

# 100 assets over 4 folders: every code prefix in every folder and all four master flavours,
# in few enough runs to stay quick.
SPEC = ArchiveSpec(400, seed=7, folders=4)


def assert_imports_everything(pipeline: Pipeline, spec: ArchiveSpec) -> None:
    per_folder = Counter(folder_of(key) for key in spec)
    for folder in spec.folder_names():
        run = pipeline.run(folder)
        assert run.success, run.step_failures()
        assert run.metadata("s3_objects")["considered"] == per_folder[folder]
        assert run.metadata("validated_inventory")["rejected"] == 0
        planned = run.metadata("new_media_files")
        assert (planned["rejected_assets"], planned["deferred"]) == (0, 0), planned
        assert run.metadata("catalog_records")["inserted_assets"] == per_folder[folder] // 4
        checks = run.checks()
        assert checks["checksums_verified"].passed
        # Each .md5 lists its streaming copy (in the bucket) and its master (not in it).
        verified = run.check_metadata("checksums_verified")["verified_files"]
        assert verified == per_folder[folder] // 4
        assert all(check.passed for check in checks.values()), {
            name: check.metadata for name, check in checks.items() if not check.passed
        }
    assert pipeline.count("asset") == spec.assets
    masters = {asset["master_mime_type"] for asset in pipeline.assets().values()}
    assert masters == {"video/quicktime", "video/mp4", "audio/wav", "audio/flac"}
    assert pipeline.count("asset_file") == len(spec)
    assert pipeline.rejections(open_only=False) == {}


def test_synthetic_archive_imports_from_moto(pipeline, put_many):
    assert put_many(SPEC.items()) == len(SPEC)
    assert_imports_everything(pipeline, SPEC)


def test_synthetic_archive_imports_from_the_standin(
    pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StandIn(SPEC, bucket="bench") as server:
        monkeypatch.setenv("S3_ENDPOINT_URL", server.endpoint_url)
        monkeypatch.setenv("BUCKET_NAME", server.bucket)
        pipeline.rebuild()
        assert_imports_everything(pipeline, SPEC)
        stats = server.stats()
    # The stand-in, not some other endpoint, served the runs.
    assert stats["keys_listed"] >= len(SPEC)
    assert stats["gets"] >= 2 * SPEC.assets  # every .json and .md5 at least
