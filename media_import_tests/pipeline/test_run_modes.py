"""Dry run and safe run, set per run through the ImportSettings resource's config."""

from __future__ import annotations

from media_import.core.inventory import Rule
from media_import_tests.pipeline.conftest import make_asset, md5_lines

ALL_ASSETS = {"s3_objects", "validated_inventory", "new_media_files", "catalog_records"}


def assert_catalog_empty(pipeline) -> None:
    for table in ("asset", "asset_file", "rejection"):
        assert pipeline.count(table) == 0, table


def test_dry_run_runs_every_phase_and_writes_nothing_to_the_catalog(pipeline, put_many):
    assets = [make_asset("BRD", "VO-BRD-00001"), make_asset("BRD", "VC-BRD-00002", "mxf_video")]
    put_many([o for a in assets for o in a.items()])
    put_many([("BRD/VO-BRD-123.mp4", b"bad code")])

    run = pipeline.run("BRD", dry_run=True)

    assert run.success
    assert run.materialized() == ALL_ASSETS
    meta = run.metadata("catalog_records")
    assert meta["dry_run"] is True
    assert meta["would_insert_assets"] == 2
    assert meta["would_insert_files"] == 8
    assert (meta["inserted_assets"], meta["inserted_files"], meta["rejections_recorded"]) == (
        0,
        0,
        0,
    )
    assert run.metadata("validated_inventory")["rejected"] == 1
    assert_catalog_empty(pipeline)
    check = run.checks()["complete_assets_catalogued"]
    assert check.passed
    assert run.check_metadata("complete_assets_catalogued") == {
        "dry_run": True,
        "would_insert_assets": 2,
    }

    # The same folder imported for real afterwards inserts exactly what the dry run announced.
    real = pipeline.run("BRD")
    assert real.metadata("catalog_records")["inserted_assets"] == 2
    assert real.metadata("catalog_records")["inserted_files"] == 8
    assert pipeline.rejections() == {"BRD/VO-BRD-123.mp4": {Rule.BAD_INVENTORY_CODE}}


def test_dry_run_from_the_environment(pipeline, put_many, monkeypatch):
    monkeypatch.setenv("ACH_DRY_RUN", "true")
    put_many(make_asset("CAS", "AO-CAS-00001").items())

    run = pipeline.run("CAS")

    assert run.success
    assert run.metadata("catalog_records")["would_insert_assets"] == 1
    assert_catalog_empty(pipeline)


def test_safe_run_stops_on_a_rejected_file(pipeline, put_many):
    put_many(make_asset("BRD", "VO-BRD-00001").items())
    put_many([("BRD/VO-BRD-123.mp4", b"bad code")])

    run = pipeline.run("BRD", safe_run=True)

    assert not run.success
    check = run.checks()["no_rejected_files"]
    assert not check.passed
    assert check.severity.value == "ERROR"
    assert run.check_metadata("no_rejected_files")["rejected"] == 1
    failures = run.step_failures()
    assert list(failures) == ["validated_inventory"]
    assert "safe run aborted: 1 file(s)" in failures["validated_inventory"]
    assert not run.step_started("new_media_files")
    assert not run.step_started("catalog_records")
    assert "catalog_records" not in run.materialized()
    assert_catalog_empty(pipeline)


def test_safe_run_stops_on_a_rejected_asset(pipeline, put_many):
    fine = make_asset("DVD", "VO-DVD-00001")
    wrong = make_asset("DVD", "VO-DVD-00002")
    wrong.objects[wrong.key(".md5")] = md5_lines([("0" * 32, "VO-DVD-00002.mp4")])
    put_many([*fine.items(), *wrong.items()])

    run = pipeline.run("DVD", safe_run=True)

    assert not run.success
    assert run.checks()["no_rejected_files"].passed
    check = run.checks()["no_rejected_assets"]
    assert not check.passed
    assert check.severity.value == "ERROR"
    assert run.check_metadata("no_rejected_assets")["rejected_assets"] == 1
    assert list(run.step_failures()) == ["new_media_files"]
    assert "safe run aborted" in run.step_failures()["new_media_files"]
    assert run.check_metadata("no_rejected_assets")["rejected_by_rule"] == {
        Rule.CHECKSUM_MISMATCH: 4
    }
    assert not run.step_started("catalog_records")
    assert_catalog_empty(pipeline)


def test_safe_run_stops_on_an_incomplete_asset(pipeline, put_many):
    put_many(make_asset("DVD", "VO-DVD-00001").items())
    put_many(make_asset("DVD", "VO-DVD-00002").items(".mp4"))

    run = pipeline.run("DVD", safe_run=True)

    assert not run.success
    assert not run.checks()["no_rejected_assets"].passed
    assert run.check_metadata("no_rejected_assets")["deferred"] == 1
    assert not run.step_started("catalog_records")
    assert_catalog_empty(pipeline)


def test_safe_run_of_a_clean_folder_imports_normally(pipeline, put_many):
    assets = [make_asset("VHS", "VO-VHS-00001"), make_asset("VHS", "VC-VHS-00002", "avi_video")]
    put_many([o for a in assets for o in a.items()])

    run = pipeline.run("VHS", safe_run=True)

    assert run.success
    assert run.materialized() == ALL_ASSETS
    checks = run.checks()
    assert all(c.passed for c in checks.values()), {n: c.passed for n, c in checks.items()}
    assert checks["no_rejected_files"].severity.value == "ERROR"
    assert set(pipeline.assets()) == {"VO-VHS-00001", "VC-VHS-00002"}
    assert pipeline.count("asset_file") == 8
    assert pipeline.count("rejection") == 0
