"""Running a folder again, or twice at once, never duplicates or rewrites catalog rows."""

from __future__ import annotations

import threading

import dagster as dg

from media_import_tests.pipeline.conftest import Pipeline, make_asset

TABLES = ("asset", "asset_file", "rejection")


def seed_folder(put_many) -> int:
    """Three valid assets and a deferred one in DAT/; returns the number of catalogued files."""
    assets = [
        make_asset("DAT", "AO-DAT-00001"),
        make_asset("DAT", "AC-DAT-00002", "flac", tool="mediainfo"),
        make_asset("DAT", "AO-DAT-00003", "mp4_audio", pdf=False),
    ]
    put_many([o for a in assets for o in a.items()])
    put_many(make_asset("DAT", "AO-DAT-00004").items(".mp3"))
    return sum(len(a.objects) for a in assets)


def test_second_run_inserts_nothing_and_changes_no_row(pipeline, put_many):
    files = seed_folder(put_many)
    first = pipeline.run("DAT")
    assert first.metadata("catalog_records")["inserted_files"] == files
    before = {t: pipeline.dump(t) for t in TABLES}

    second = pipeline.run("DAT")

    assert second.success
    assert {t: pipeline.dump(t) for t in TABLES} == before
    meta = second.metadata("new_media_files")
    assert meta["skipped_already_catalogued"] == files
    assert meta["valid"] == files + 1  # the deferred asset's streaming copy
    assert (meta["new"], meta["ready_assets"], meta["deferred"]) == (1, 0, 1)
    records = second.metadata("catalog_records")
    assert (records["inserted_assets"], records["inserted_files"]) == (0, 0)
    assert (records["catalog_assets"], records["catalog_files"]) == (3, files)
    assert all(c.passed for c in second.checks().values())


def test_two_concurrent_runs_of_one_folder(s3_env, database_url, put_many):
    files = seed_folder(put_many)
    pipelines = [Pipeline(dg.DagsterInstance.ephemeral(), database_url) for _ in range(2)]
    for p in pipelines:
        _ = p.defs  # build before starting, so both threads start their runs together
    start = threading.Barrier(len(pipelines))
    runs: list = [None] * len(pipelines)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait(timeout=30)
            runs[i] = pipelines[i].run("DAT")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pipelines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(r is not None and r.success for r in runs)

    catalog = pipelines[0]
    rows = catalog.query("SELECT key, count(*) FROM asset_file GROUP BY key")
    assert len(rows) == files
    assert all(n == 1 for _, n in rows)
    assert catalog.query("SELECT count(*), count(DISTINCT inventory_code) FROM asset") == [(3, 3)]
    assert catalog.count("rejection") == 0
    # Between them, the two runs inserted each asset and each file exactly once.
    records = [r.metadata("catalog_records") for r in runs]
    assert sum(m["inserted_assets"] for m in records) == 3
    assert sum(m["inserted_files"] for m in records) == files
    for r in runs:
        assert r.checks()["unique_inventory_codes"].passed
        assert r.checks()["complete_assets_catalogued"].passed
