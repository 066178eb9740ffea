"""Removals and objects overwritten in place: soft deletes only, undone by a re-upload."""

from __future__ import annotations

from media_import_tests.pipeline.conftest import make_asset, md5_hex, md5_lines, qc_pdf


def _live(rows: dict) -> set[str]:
    return {k for k, r in rows.items() if r["deleted_at"] is None}


def test_removing_the_streaming_copy_soft_deletes_the_asset_and_its_collaterals(
    pipeline, put_many, s3, bucket
):
    gone = make_asset("VHS", "VO-VHS-00001")
    kept = make_asset("VHS", "VO-VHS-00002")
    put_many([*gone.items(), *kept.items()])
    pipeline.run("VHS")
    ids_before = {k: r["id"] for k, r in pipeline.files().items()}

    s3.delete_object(Bucket=bucket, Key=gone.streaming_key)
    run = pipeline.run("VHS")

    assert run.success
    asset = pipeline.assets()["VO-VHS-00001"]
    assert asset["deleted_at"] is not None
    assert asset["deleted_by_run_id"] == run.run_id
    assert asset["deleted_reason"] == "streaming_copy removed"
    files = pipeline.files()
    reasons = {k: files[k]["deleted_reason"] for k in gone.objects}
    assert reasons == {
        gone.streaming_key: "removed",
        gone.key(".json"): "asset_removed",
        gone.key(".md5"): "asset_removed",
        gone.key(".pdf"): "asset_removed",
    }
    assert {files[k]["deleted_by_run_id"] for k in gone.objects} == {run.run_id}
    # Nothing else moved: the other asset is live, and nothing was hard-deleted.
    assert _live(files) == set(kept.objects)
    assert pipeline.assets()["VO-VHS-00002"]["deleted_at"] is None
    assert {k: r["id"] for k, r in files.items()} == ids_before
    meta = run.metadata("catalog_records")
    assert (meta["soft_deleted_assets"], meta["soft_deleted_files"]) == (1, 4)
    # The collaterals still in the bucket wait for their streaming copy; no rejection.
    assert run.metadata("new_media_files")["deferred"] == 1
    assert pipeline.rejections() == {}

    # A second run finds nothing more to do.
    again = pipeline.run("VHS").metadata("catalog_records")
    assert (again["soft_deleted_assets"], again["soft_deleted_files"]) == (0, 0)


def test_reuploading_restores_the_same_rows(pipeline, put_many, s3, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    first = pipeline.run("VHS")
    ids = {k: r["id"] for k, r in pipeline.files().items()}
    asset_id = pipeline.assets()["VO-VHS-00001"]["id"]

    s3.delete_object(Bucket=bucket, Key=asset.key(".json"))
    pipeline.run("VHS")
    assert pipeline.assets()["VO-VHS-00001"]["deleted_reason"] == "metadata removed"

    put_many(asset.items(".json"))
    restore = pipeline.run("VHS")

    row = pipeline.assets()["VO-VHS-00001"]
    assert (row["id"], row["deleted_at"], row["deleted_reason"]) == (asset_id, None, None)
    assert row["run_id"] == restore.run_id != first.run_id
    files = pipeline.files()
    assert _live(files) == set(asset.objects)
    assert {k: r["id"] for k, r in files.items()} == ids
    assert {r["deleted_by_run_id"] for r in files.values()} == {None}
    assert pipeline.count("asset") == 1 and pipeline.count("asset_file") == 4
    assert restore.checks()["complete_assets_catalogued"].passed


def test_removing_a_collateral_soft_deletes_only_that_file(pipeline, put_many, s3, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")

    s3.delete_object(Bucket=bucket, Key=asset.key(".pdf"))
    run = pipeline.run("VHS")

    files = pipeline.files()
    assert files[asset.key(".pdf")]["deleted_reason"] == "removed"
    assert _live(files) == set(asset.objects) - {asset.key(".pdf")}
    assert pipeline.assets()["VO-VHS-00001"]["deleted_at"] is None
    assert run.checks()["keys_exist_in_bucket"].passed


def test_a_collateral_overwritten_in_place_is_updated_not_duplicated(pipeline, put_many, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    before = pipeline.files()[asset.key(".pdf")]

    new_pdf = qc_pdf() + b"\n% second QC pass\n"
    put_many([(asset.key(".pdf"), new_pdf)])
    run = pipeline.run("VHS")

    after = pipeline.files()[asset.key(".pdf")]
    assert after["id"] == before["id"]
    assert after["deleted_at"] is None
    assert after["size_bytes"] == len(new_pdf) != before["size_bytes"]
    assert after["etag"] == md5_hex(new_pdf)
    assert after["run_id"] == run.run_id
    assert pipeline.count("asset_file") == 4
    assert pipeline.assets()["VO-VHS-00001"]["deleted_at"] is None


def test_a_streaming_copy_overwritten_with_its_checksum_is_reimported(pipeline, put_many, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")

    new_body = asset.objects[asset.streaming_key] + b"\x00" * 16
    md5 = md5_lines(
        [(asset.master["md5"], asset.master_filename), (md5_hex(new_body), "VO-VHS-00001.mp4")]
    )
    put_many([(asset.streaming_key, new_body), (asset.key(".md5"), md5)])
    run = pipeline.run("VHS")

    assert run.success
    row = pipeline.files()[asset.streaming_key]
    assert (row["deleted_at"], row["md5"], row["md5_verified"]) == (None, md5_hex(new_body), True)
    assert row["size_bytes"] == len(new_body)
    assert pipeline.assets()["VO-VHS-00001"]["deleted_at"] is None
    assert _live(pipeline.files()) == set(asset.objects)
    assert pipeline.count("asset_file") == 4


def test_a_streaming_copy_overwritten_with_wrong_bytes_leaves_the_asset_deleted_and_rejected(
    pipeline, put_many, bucket
):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")

    put_many([(asset.streaming_key, asset.objects[asset.streaming_key] + b"corrupt")])
    run = pipeline.run("VHS")

    # The catalog no longer vouches for bytes it could not verify.
    row = pipeline.assets()["VO-VHS-00001"]
    assert row["deleted_reason"] == "streaming_copy replaced"
    assert pipeline.files()[asset.streaming_key]["deleted_reason"] == "replaced"
    assert "checksum_mismatch" in pipeline.rejections()[asset.streaming_key]
    assert not run.checks()["no_rejected_assets"].passed


def test_a_dry_run_reports_removals_without_touching_the_catalog(pipeline, put_many, s3, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    before = pipeline.dump("asset_file")

    s3.delete_object(Bucket=bucket, Key=asset.streaming_key)
    meta = pipeline.run("VHS", dry_run=True).metadata("catalog_records")

    assert (meta["soft_deleted_assets"], meta["soft_deleted_files"]) == (1, 4)
    assert pipeline.dump("asset_file") == before


def test_a_no_longer_allowed_extension_is_not_a_removal(pipeline, put_many):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")

    run = pipeline.run("VHS", allowed_extensions=[".mp4", ".mp3", ".json", ".md5"])

    assert run.metadata("catalog_records")["soft_deleted_files"] == 0
    assert _live(pipeline.files()) == set(asset.objects)
