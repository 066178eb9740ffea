"""The benchmark baseline imports what media_import would, the original importer's way."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from benchmarks.baseline import PHASES, BaselineResult, main, reset_baseline, run_baseline
from media_import_tests.conftest import S3Target
from media_import_tests.pipeline.conftest import (
    AssetFiles,
    make_asset,
    md5_hex,
    md5_lines,
    streaming_body,
)

# Phase 1 rejects these (bad inventory code; code type not allowed in the folder).
REJECTED_KEYS = ("BRD/XX-BRD-00090.mp4", "DVD/VO-BRD-00091.json")
# Not the importer's to judge: no folder, excluded folder, extension not allowed.
IGNORED_KEYS = ("VO-BRD-00092.mp4", "UMT/VO-UMT-00093.mp4", "BRD/VO-BRD-00094.txt")


def valid_assets() -> list[AssetFiles]:
    return [
        make_asset("BRD", "VO-BRD-00001"),
        make_asset("BRD", "VC-BRD-00002", "mp4_video", tool="mediainfo"),
        make_asset("DAT", "AO-DAT-00003", "flac", pdf=False),
        make_asset("DAT", "AC-DAT-00004", "bwf", tool="mediainfo"),
    ]


@pytest.fixture
def baseline(s3_server: S3Target, bucket: str, database_url: str) -> Callable[[], BaselineResult]:
    def run() -> BaselineResult:
        t = s3_server
        return run_baseline(t.endpoint_url, bucket, database_url, t.access_key, t.secret_key)

    return run


def query(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def catalogued_keys(database_url: str) -> set[str]:
    return {key for (key,) in query(database_url, "SELECT key FROM baseline.asset_file")}


def catalogued_codes(database_url: str) -> set[str]:
    return {code for (code,) in query(database_url, "SELECT inventory_code FROM baseline.asset")}


def test_imports_exactly_the_valid_assets(baseline, put_many, database_url):
    assets = valid_assets()
    incomplete = make_asset("BRD", "VO-BRD-00005").items(".mp4")  # no .json yet
    others = [(key, b"x") for key in (*REJECTED_KEYS, *IGNORED_KEYS)]
    put_many([*(o for a in assets for o in a.items()), *incomplete, *others])

    result = baseline()

    assert catalogued_codes(database_url) == {a.code for a in assets}
    assert catalogued_keys(database_url) == {k for a in assets for k in a.objects}
    files = sum(len(a.objects) for a in assets)
    assert (result.assets_inserted, result.files_inserted) == (len(assets), files)
    assert result.listed == files + len(incomplete) + len(others)
    assert result.valid == result.new == files + len(incomplete)
    assert (result.rejected, result.deferred) == (len(REJECTED_KEYS), 1)
    assert set(result.timings) == set(PHASES)
    assert all(seconds > 0 for seconds in result.timings.values())


def test_second_run_inserts_nothing(baseline, put_many, database_url):
    assets = valid_assets()
    put_many([o for a in assets for o in a.items()])
    first = baseline()
    before = query(database_url, "SELECT * FROM baseline.asset_file ORDER BY id")
    # A file arriving later for a new code is still imported: the diff is by key.
    late = make_asset("DAT", "AO-DAT-00006")
    put_many(late.items())

    second = baseline()

    assert second.valid == first.valid + len(late.objects)
    assert second.new == len(late.objects)
    assert (second.assets_inserted, second.files_inserted) == (1, len(late.objects))
    after = query(database_url, "SELECT * FROM baseline.asset_file ORDER BY id")
    assert after[: len(before)] == before
    third = baseline()
    assert (third.new, third.assets_inserted, third.files_inserted) == (0, 0, 0)


def test_master_mime_type_comes_from_the_technical_metadata(baseline, put_many, database_url):
    assets = valid_assets()
    put_many([o for a in assets for o in a.items()])

    baseline()

    rows = query(
        database_url,
        "SELECT inventory_code, master_mime_type, master_container, master_filename, master_md5"
        " FROM baseline.asset",
    )
    expected = {
        a.code: (a.master["expected_mime"], a.master["container"], a.master_filename)
        for a in assets
    }
    assert {code: (mime, container, name) for code, mime, container, name, _ in rows} == expected
    assert {code: md5 for code, *_, md5 in rows} == {a.code: a.master["md5"] for a in assets}


def test_invalid_sidecars_reject_the_whole_asset(baseline, put_many, database_url):
    fine = make_asset("DVD", "VO-DVD-00001")
    wrong_md5 = make_asset("DVD", "VO-DVD-00002")
    wrong_md5.objects[wrong_md5.key(".md5")] = md5_lines(
        [(md5_hex(b"something else"), "VO-DVD-00002.mp4")]
    )
    bad_json = make_asset("DVD", "VO-DVD-00003")
    bad_json.objects[bad_json.key(".json")] = b"{not json"
    fake_pdf = make_asset("DVD", "VO-DVD-00004")
    fake_pdf.objects[fake_pdf.key(".pdf")] = b"not a pdf"
    audio_in_video = make_asset("DVD", "VO-DVD-00005", "wav")  # a video code, an audio master
    broken = [wrong_md5, bad_json, fake_pdf, audio_in_video]
    put_many([o for a in (fine, *broken) for o in a.items()])

    result = baseline()

    assert catalogued_codes(database_url) == {fine.code}
    assert result.rejected == sum(len(a.objects) for a in broken)


def test_multipart_streaming_copy_is_verified_from_its_bytes(
    baseline, put_many, s3, bucket, database_url
):
    asset = make_asset("BRD", "VC-BRD-00007", "mp4_video")
    upload = s3.create_multipart_upload(Bucket=bucket, Key=asset.streaming_key)
    part = s3.upload_part(
        Bucket=bucket,
        Key=asset.streaming_key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=streaming_body("V"),
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=asset.streaming_key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    put_many(asset.items(".json", ".md5", ".pdf"))

    baseline()

    row = query(
        database_url,
        "SELECT etag, md5, md5_source, md5_verified FROM baseline.asset_file"
        f" WHERE key = '{asset.streaming_key}'",
    )
    # The ETag of a multipart upload is not the object's MD5: the bytes were hashed.
    [(etag, md5, source, verified)] = row
    assert etag.endswith("-1")
    assert (md5, source, verified) == (md5_hex(streaming_body("V")), "md5sum", True)


def test_reset_empties_the_baseline_schema_only(baseline, put_many, database_url):
    put_many(make_asset("BRD", "VO-BRD-00008").items())
    baseline()

    reset_baseline(database_url)

    assert query(database_url, "SELECT count(*) FROM baseline.asset") == [(0,)]
    assert query(database_url, "SELECT count(*) FROM baseline.asset_file") == [(0,)]
    # The real catalog's tables were never created: the baseline keeps to its own schema.
    assert query(
        database_url,
        "SELECT count(*) FROM pg_tables WHERE schemaname <> 'baseline'"
        " AND schemaname NOT IN ('pg_catalog', 'information_schema')",
    ) == [(0,)]


def test_cli_prints_the_result_as_json(s3_server, bucket, database_url, put_many, capsys):
    asset = make_asset("BRD", "VO-BRD-00009")
    put_many(asset.items())
    t = s3_server
    args = ["--endpoint", t.endpoint_url, "--bucket", bucket, "--database-url", database_url]
    args += ["--access-key", t.access_key, "--secret-key", t.secret_key, "--reset"]

    assert main(args) == 0

    printed = json.loads(capsys.readouterr().out)
    assert (printed["assets_inserted"], printed["files_inserted"]) == (1, len(asset.objects))
    assert set(printed["timings"]) == set(PHASES)
    assert printed["total_seconds"] == pytest.approx(sum(printed["timings"].values()))
