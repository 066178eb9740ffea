"""The catalog's asset checks, evaluated by the real job against the real catalog."""

from __future__ import annotations

from media_import_tests.pipeline.conftest import make_asset

CATALOG_CHECKS = (
    "complete_assets_catalogued",
    "unique_inventory_codes",
    "keys_exist_in_bucket",
    "checksums_verified",
)


def test_checks_pass_after_a_normal_import(pipeline, put_many):
    assets = [make_asset("BRD", "VO-BRD-00001"), make_asset("BRD", "VC-BRD-00002", "mp4_video")]
    put_many([o for a in assets for o in a.items()])

    run = pipeline.run("BRD")

    checks = run.checks()
    assert set(checks) == {"no_rejected_files", "no_rejected_assets", *CATALOG_CHECKS}
    assert {n: c.passed for n, c in checks.items()} == dict.fromkeys(checks, True)
    assert run.check_metadata("unique_inventory_codes") == {"duplicated": []}
    assert run.check_metadata("complete_assets_catalogued")["missing"] == 0
    assert run.check_metadata("keys_exist_in_bucket")["missing_keys"] == 0
    assert run.check_metadata("checksums_verified")["verified_files"] == 2
    for name in CATALOG_CHECKS:
        assert checks[name].asset_key.to_user_string() == "catalog_records"
        assert checks[name].partition == "BRD"


def test_keys_exist_in_bucket_holds_after_a_removal_and_fails_on_a_dry_run(
    pipeline, put_many, s3, bucket
):
    asset = make_asset("VHS", "VO-VHS-00001")
    other = make_asset("VHS", "VO-VHS-00002")
    put_many([*asset.items(), *other.items()])
    assert pipeline.run("VHS").checks()["keys_exist_in_bucket"].passed

    s3.delete_object(Bucket=bucket, Key=asset.streaming_key)
    # A dry run leaves the catalog untouched: its live row now points at nothing, and the
    # check says so (not blocking: the operator is told, the run goes on).
    dry = pipeline.run("VHS", dry_run=True)
    assert dry.success
    check = dry.checks()["keys_exist_in_bucket"]
    assert not check.passed
    assert check.severity.value == "ERROR"
    assert dry.check_metadata("keys_exist_in_bucket") == {
        "missing_keys": 1,
        "preview": [asset.streaming_key],
    }
    assert pipeline.files()[asset.streaming_key]["deleted_at"] is None

    # A real run soft-deletes the row, and the check holds again.
    run = pipeline.run("VHS")
    assert run.checks()["keys_exist_in_bucket"].passed
    assert run.checks()["unique_inventory_codes"].passed
    assert run.checks()["complete_assets_catalogued"].passed
    assert pipeline.files()[asset.streaming_key]["deleted_at"] is not None
