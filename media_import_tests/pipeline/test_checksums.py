"""Checksums through the job: md5sum sidecars against ETags and, for multipart uploads, bytes."""

from __future__ import annotations

from media_import.core.inventory import Rule
from media_import_tests.pipeline.conftest import make_asset, md5_hex, md5_lines, streaming_body

MIB = 1 << 20


def multipart_upload(s3, bucket: str, key: str, parts: list[bytes]) -> str:
    """Upload `parts` as one multipart object; returns its ETag (`"<hex>-<n>"`)."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for number, body in enumerate(parts, start=1):
        part = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        done.append({"ETag": part["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    return s3.head_object(Bucket=bucket, Key=key)["ETag"]


def big_streaming_copy() -> list[bytes]:
    """The real .mp4 padded past S3's 5 MiB minimum part size, split in two parts."""
    body = streaming_body("V")
    body += bytes(5 * MIB + 4096 - len(body))
    return [body[: 5 * MIB], body[5 * MIB :]]


def test_checksum_mismatch_rejects_the_whole_asset(pipeline, put_many):
    fine = make_asset("DVD", "VO-DVD-00001")
    wrong = make_asset("DVD", "VO-DVD-00002")
    real = md5_hex(streaming_body("V"))
    wrong.objects[wrong.key(".md5")] = md5_lines(
        [(wrong.master["md5"], wrong.master_filename), (real[::-1], "VO-DVD-00002.mp4")]
    )
    put_many([*fine.items(), *wrong.items()])

    run = pipeline.run("DVD")

    assert run.success
    assert pipeline.rejections() == {k: {Rule.CHECKSUM_MISMATCH} for k in wrong.objects}
    assert set(pipeline.assets()) == {"VO-DVD-00001"}
    assert pipeline.query(
        "SELECT count(*) FROM asset_file WHERE inventory_code = 'VO-DVD-00002'"
    ) == [(0,)]
    message = pipeline.query(
        "SELECT message FROM rejection WHERE key = %s", (wrong.streaming_key,)
    )[0][0]
    assert real[::-1] in message and real in message
    assert run.metadata("new_media_files")["rejected_by_rule"] == {Rule.CHECKSUM_MISMATCH: 4}


def test_multipart_upload_is_verified_by_reading_its_bytes(pipeline, put_many, s3, bucket):
    asset = make_asset("BRD", "VC-BRD-00001", "mp4_video")
    parts = big_streaming_copy()
    whole = b"".join(parts)
    etag = multipart_upload(s3, bucket, asset.streaming_key, parts)
    assert etag.strip('"').endswith("-2")
    asset.objects[asset.key(".md5")] = md5_lines(
        [(asset.master["md5"], asset.master_filename), (md5_hex(whole), "VC-BRD-00001.mp4")]
    )
    put_many(asset.items(".json", ".md5", ".pdf"))

    run = pipeline.run("BRD")

    assert run.success
    assert run.metadata("new_media_files")["objects_hashed"] == 1
    row = pipeline.files()[asset.streaming_key]
    assert row["etag"].endswith("-2")
    assert row["size_bytes"] == len(whole)
    assert (row["md5"], row["md5_source"], row["md5_verified"]) == (md5_hex(whole), "md5sum", True)
    assert run.checks()["checksums_verified"].passed
    assert run.check_metadata("checksums_verified")["verified_files"] == 1
    # The conservatory master is not in the bucket: its listed md5 is recorded as is.
    imported = pipeline.assets()["VC-BRD-00001"]
    assert imported["master_md5"] == asset.master["md5"]
    assert imported["master_filename"] == "VC-BRD-00001_master.mp4"
    assert imported["master_mime_type"] == "video/mp4"


def test_multipart_upload_with_wrong_md5_is_rejected(pipeline, put_many, s3, bucket):
    asset = make_asset("BRD", "VC-BRD-00001")
    parts = big_streaming_copy()
    multipart_upload(s3, bucket, asset.streaming_key, parts)
    # The md5 of the unpadded streaming copy: right for a plain upload, wrong for these bytes.
    put_many(asset.items(".json", ".md5", ".pdf"))

    run = pipeline.run("BRD")

    assert run.metadata("new_media_files")["objects_hashed"] == 1
    assert pipeline.rejections() == {k: {Rule.CHECKSUM_MISMATCH} for k in asset.objects}
    assert pipeline.count("asset") == pipeline.count("asset_file") == 0


def test_files_not_listed_in_the_md5_keep_their_etag(pipeline, put_many):
    asset = make_asset("CAS", "AC-CAS-00001", "bwf", list_streaming=False)
    put_many(asset.items())

    run = pipeline.run("CAS")

    assert run.success
    files = pipeline.files()
    streaming = files[asset.streaming_key]
    assert (streaming["md5"], streaming["md5_source"], streaming["md5_verified"]) == (
        md5_hex(asset.objects[asset.streaming_key]),
        "etag",
        False,
    )
    assert not any(f["md5_verified"] for f in files.values())
    assert pipeline.assets()["AC-CAS-00001"]["master_md5"] == asset.master["md5"]
    assert run.checks()["checksums_verified"].passed


def test_unreadable_md5_rejects_the_asset(pipeline, put_many):
    asset = make_asset("BRD", "VO-BRD-00001")
    asset.objects[asset.key(".md5")] = (
        b"MD5 hash of VO-BRD-00001.mov:\r\nbc1bce42b5888ce997d31d74f0973171\r\n"
    )
    put_many(asset.items())

    pipeline.run("BRD")

    assert pipeline.rejections() == {k: {Rule.UNREADABLE_CHECKSUM} for k in asset.objects}
    assert pipeline.count("asset") == 0
