"""The benchmark baseline and media_import, run side by side on one bucket and one database,
catalog the same assets and files with the same values: the benchmark compares equal work."""

from __future__ import annotations

from benchmarks.baseline import run_baseline
from media_import.samples.archive import load_manifest
from media_import_tests.pipeline.conftest import AssetFiles, make_asset, md5_hex, md5_lines

FOLDER = "BRD"
ASSET_COLUMNS = (
    "media_kind",
    "master_filename",
    "master_mime_type",
    "master_container",
    "master_md5",
    "duration_seconds",
    "metadata_tool",
    "technical_metadata",
)
FILE_COLUMNS = (
    "inventory_code",
    "role",
    "mime_type",
    "size_bytes",
    "etag",
    "md5",
    "md5_source",
    "md5_verified",
)


def every_master() -> list[AssetFiles]:
    """One asset per sample master, alternating the metadata tool."""
    assets = []
    for number, entry in enumerate(load_manifest()["masters"], start=1):
        kind = "V" if entry["media_kind"] == "video" else "A"
        tool = "ffprobe" if number % 2 else "mediainfo"
        code = f"{kind}O-{FOLDER}-{number:05d}"
        assets.append(make_asset(FOLDER, code, entry["name"], tool=tool, pdf=bool(number % 3)))
    return assets


def broken_assets() -> list[AssetFiles]:
    """Assets both importers must reject in phase 3."""
    mismatch = make_asset(FOLDER, "VO-BRD-00080")
    mismatch.objects[mismatch.key(".md5")] = md5_lines([(md5_hex(b"other"), "VO-BRD-00080.mp4")])
    audio_master = make_asset(FOLDER, "VO-BRD-00081", "wav")
    return [mismatch, audio_master]


def baseline_rows(pipeline, table: str, key: str, columns: tuple[str, ...]) -> dict:
    rows = pipeline.query(f"SELECT {key}, {', '.join(columns)} FROM baseline.{table}")
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


def project(rows: dict, columns: tuple[str, ...]) -> dict:
    return {k: {c: row[c] for c in columns} for k, row in rows.items()}


def test_baseline_catalogs_what_media_import_catalogs(pipeline, put_many, s3_server, bucket):
    valid = every_master()
    incomplete = make_asset(FOLDER, "VO-BRD-00082").items(".mp4")
    rejected_keys = [(f"{FOLDER}/XX-BRD-00083.mp4", b"x"), (f"{FOLDER}/VO-DVD-00084.json", b"{}")]
    put_many(
        [*(o for a in (*valid, *broken_assets()) for o in a.items()), *incomplete, *rejected_keys]
    )

    run = pipeline.run(FOLDER)
    t = s3_server
    result = run_baseline(
        t.endpoint_url, bucket, pipeline.database_url, t.access_key, t.secret_key, t.region
    )

    assert run.success
    assert set(pipeline.assets()) == {a.code for a in valid}
    assert result.assets_inserted == len(valid)
    baseline_assets = baseline_rows(pipeline, "asset", "inventory_code", ASSET_COLUMNS)
    assert baseline_assets == project(pipeline.assets(), ASSET_COLUMNS)
    baseline_files = baseline_rows(pipeline, "asset_file", "key", FILE_COLUMNS)
    assert baseline_files == project(pipeline.files(), FILE_COLUMNS)
    # Same phase-3 rejections too: every rejected file of media_import is counted here.
    assert result.rejected == len(pipeline.rejections())
    assert result.deferred == len(incomplete)
