"""The insert step's SQL as rebuilt for archive scale: soft deletes from the gone rows only,
the bucket check answered by the insert itself, one statement per check over all the run's
folders, and statistics refreshed once per run. Each against the real job and database."""

from __future__ import annotations

import hashlib
from typing import Any

import dagster as dg
import psycopg
import pytest

from media_import.db import catalog, checks, listing
from media_import.db.migrate import migrate
from media_import.defs.importing.partitions import register_folders
from media_import_tests.pipeline.conftest import IMPORT_JOB, Pipeline, make_asset

PLAN = ("s3_objects", "validated_inventory", "new_media_files")


def run_assets(pipeline: Pipeline, folder: str, *assets: str) -> dg.ExecuteInProcessResult:
    """Only these assets of the import job, for one folder."""
    register_folders(pipeline.instance, [folder])
    return pipeline.defs.resolve_job_def(IMPORT_JOB).execute_in_process(
        instance=pipeline.instance,
        partition_key=folder,
        asset_selection=[dg.AssetKey(a) for a in assets],
        raise_on_error=True,
    )


def range_run(pipeline: Pipeline, folders: list[str]) -> dg.ExecuteInProcessResult:
    """The whole job over these folders as one run (a single-run backfill)."""
    register_folders(pipeline.instance, folders)
    return pipeline.defs.resolve_job_def(IMPORT_JOB).execute_in_process(
        instance=pipeline.instance,
        tags={
            "dagster/asset_partition_range_start": folders[0],
            "dagster/asset_partition_range_end": folders[-1],
        },
        raise_on_error=True,
    )


def check_metadata(
    result: dg.ExecuteInProcessResult, name: str, folder: str | None = None
) -> dict[str, Any]:
    """The check's one evaluation (of `folder`'s partition, in a run over several folders)."""
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == name and folder in (None, e.partition)
    ]
    return {"passed": evaluation.passed, **{k: v.value for k, v in evaluation.metadata.items()}}


def unlisted_rows(pipeline: Pipeline) -> list[str]:
    """The bucket check's definition, queried directly: live rows their listing lacks."""
    return [
        key
        for (key,) in pipeline.query(
            "SELECT af.key FROM asset_file af WHERE af.deleted_at IS NULL AND NOT EXISTS"
            " (SELECT 1 FROM ingest.listing l WHERE l.bucket = af.bucket AND l.key = af.key)"
            " ORDER BY af.key"
        )
    ]


def execute(pipeline: Pipeline, sql: str, params: tuple = ()) -> None:
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        conn.execute(sql, params)


def add_file_row(
    pipeline: Pipeline, bucket: str, key: str, code: str, body: bytes = b"%PDF"
) -> None:
    """A live catalog row the importer would not write itself (a catalog gone wrong), for an
    object of this body."""
    execute(
        pipeline,
        "INSERT INTO asset_file (bucket, key, folder, inventory_code, role, mime_type,"
        " size_bytes, etag, last_modified, run_id)"
        " VALUES (%s, %s, split_part(%s, '/', 1), %s, 'qc_report', 'application/pdf', %s, %s,"
        " now(), 'by-hand')",
        (bucket, key, key, code, len(body), hashlib.md5(body).hexdigest()),
    )


# -- the bucket check, answered by the insert -------------------------------------------------


@pytest.fixture(params=["probed", "one pass"])
def unlisted_lookup(request, monkeypatch) -> str:
    """Both ways the insert finds its unlisted rows: key by key, or one pass over the listing
    (taken above PROBE_ROWS ready files, which these small folders reach only with it at 0)."""
    if request.param == "one pass":
        monkeypatch.setattr(catalog, "PROBE_ROWS", 0)
    return request.param


def test_a_plan_older_than_the_listing_writes_a_row_the_bucket_check_reports(
    pipeline, put_many, s3, bucket, unlisted_lookup
):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    run_assets(pipeline, "VHS", *PLAN)
    # Another run lists the folder again after the pdf is deleted, before this plan is inserted.
    s3.delete_object(Bucket=bucket, Key=asset.key(".pdf"))
    run_assets(pipeline, "VHS", "s3_objects")

    result = run_assets(pipeline, "VHS", "catalog_records")

    assert check_metadata(result, "keys_exist_in_bucket") == {
        "passed": False,
        "missing_keys": 1,
        "preview": [asset.key(".pdf")],
    }
    assert unlisted_rows(pipeline) == [asset.key(".pdf")]
    # The next complete run soft-deletes it, and the check holds again.
    again = pipeline.run("VHS")
    assert again.checks()["keys_exist_in_bucket"].passed
    assert pipeline.files()[asset.key(".pdf")]["deleted_reason"] == "removed"
    assert unlisted_rows(pipeline) == []


def test_a_restored_row_the_listing_lacks_is_reported_too(
    pipeline, put_many, s3, bucket, unlisted_lookup
):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    s3.delete_object(Bucket=bucket, Key=asset.key(".pdf"))
    pipeline.run("VHS")  # soft-deletes the pdf
    put_many(asset.items(".pdf"))
    run_assets(pipeline, "VHS", *PLAN)  # plans its restore
    s3.delete_object(Bucket=bucket, Key=asset.key(".pdf"))
    run_assets(pipeline, "VHS", "s3_objects")

    result = run_assets(pipeline, "VHS", "catalog_records")

    assert check_metadata(result, "keys_exist_in_bucket")["preview"] == [asset.key(".pdf")]
    assert unlisted_rows(pipeline) == [asset.key(".pdf")]


# -- soft deletes --------------------------------------------------------------------------------


def test_a_removed_asset_takes_its_files_in_other_folders(pipeline, put_many, s3, bucket):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    add_file_row(pipeline, bucket, "BRD/VO-VHS-00001.pdf", "VO-VHS-00001")
    s3.delete_object(Bucket=bucket, Key=asset.streaming_key)

    dry = pipeline.run("VHS", dry_run=True).metadata("catalog_records")
    run = pipeline.run("VHS").metadata("catalog_records")

    assert (dry["soft_deleted_assets"], dry["soft_deleted_files"]) == (1, 5)
    assert (run["soft_deleted_assets"], run["soft_deleted_files"]) == (1, 5)
    files = pipeline.files()
    assert files["BRD/VO-VHS-00001.pdf"]["deleted_reason"] == "asset_removed"
    assert files[asset.streaming_key]["deleted_reason"] == "removed"
    assert pipeline.assets()["VO-VHS-00001"]["deleted_reason"] == "streaming_copy removed"


def test_a_first_import_restores_a_soft_deleted_asset_of_its_code_from_elsewhere(
    pipeline, put_many, bucket
):
    # The folder holds no catalog file, so its rows are inserted plainly; the code's asset,
    # soft-deleted in another folder, conflicts, and the upserts take over and restore it.
    migrate(pipeline.database_url)
    execute(
        pipeline,
        "INSERT INTO asset (inventory_code, media_kind, bucket, folder, master_mime_type,"
        " technical_metadata, run_id, deleted_at, deleted_by_run_id, deleted_reason)"
        " VALUES ('VO-VHS-00001', 'video', %s, 'OLD', 'video/quicktime', '{}', 'earlier',"
        " now(), 'earlier', 'streaming_copy removed')",
        (bucket,),
    )
    (before,) = pipeline.query("SELECT id FROM asset WHERE inventory_code = 'VO-VHS-00001'")
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    run = pipeline.run("VHS").metadata("catalog_records")
    assert (run["inserted_assets"], run["inserted_files"]) == (1, 4)
    restored = pipeline.assets()["VO-VHS-00001"]
    assert (restored["id"], restored["folder"], restored["deleted_at"]) == (before[0], "VHS", None)
    assert {k for k, f in pipeline.files().items() if f["deleted_at"] is None} == set(asset.objects)


def test_an_unchanged_folder_writes_nothing(pipeline, put_many):
    put_many(make_asset("VHS", "VO-VHS-00001").items())
    pipeline.run("VHS")
    before = pipeline.query("SELECT xmin::text, id FROM asset_file ORDER BY id")

    meta = pipeline.run("VHS").metadata("catalog_records")

    assert (meta["soft_deleted_files"], meta["inserted_files"]) == (0, 0)
    assert pipeline.query("SELECT xmin::text, id FROM asset_file ORDER BY id") == before


# -- the checks, one statement over all the run's folders ----------------------------------


def test_a_code_in_two_folders_is_reported_once_per_folder_of_the_run(
    pipeline, put_many, bucket, monkeypatch
):
    monkeypatch.setenv("ACH_FOLDER_TYPES", "FILE=FIL,BRD")
    put_many(
        [*make_asset("BRD", "VO-BRD-00001").items(), *make_asset("FILE", "VO-BRD-00002").items()]
    )
    first = range_run(pipeline, ["BRD", "FILE"])
    for folder in ("BRD", "FILE"):
        assert check_metadata(first, "unique_inventory_codes", folder) == {
            "passed": True,
            "duplicated": [],
        }
    add_file_row(pipeline, bucket, "FILE/VO-BRD-00001.pdf", "VO-BRD-00001")
    put_many([("FILE/VO-BRD-00001.pdf", b"%PDF")])  # listed, so not soft-deleted as removed

    both = range_run(pipeline, ["BRD", "FILE"])
    one = range_run(pipeline, ["FILE"])

    entry = {"code": "VO-BRD-00001", "folders": 2, "streaming_copies": 1}
    for folder in ("BRD", "FILE"):  # as BRD's and as FILE's
        assert check_metadata(both, "unique_inventory_codes", folder) == {
            "passed": False,
            "duplicated": [entry],
        }
    assert check_metadata(one, "unique_inventory_codes")["duplicated"] == [entry]
    figures = {
        m.partition: (m.metadata["catalog_assets"].value, m.metadata["catalog_files"].value)
        for m in both.asset_materializations_for_node("catalog_records")
    }
    assert figures == {"BRD": (1, 4), "FILE": (1, 5)}
    # Each asset's streaming copy is listed in its .md5 and verified.
    for folder in ("BRD", "FILE"):
        assert check_metadata(both, "checksums_verified", folder)["verified_files"] == 1


def test_two_live_streaming_copies_of_a_code_fail_the_check(pipeline, put_many):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    execute(
        pipeline,
        "UPDATE asset_file SET role = 'streaming_copy' WHERE key = %s",
        (asset.key(".pdf"),),
    )

    run = pipeline.run("VHS")

    assert run.check_metadata("unique_inventory_codes") == {
        "duplicated": [{"code": "VO-VHS-00001", "folders": 1, "streaming_copies": 2}]
    }


def test_an_unverified_checksum_is_reported(pipeline, put_many):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    pipeline.run("VHS")
    execute(
        pipeline,
        "UPDATE asset_file SET md5_verified = false WHERE key = %s",
        (asset.streaming_key,),
    )

    run = pipeline.run("VHS")

    assert run.check_metadata("checksums_verified") == {
        "verified_files": 0,
        "unverified_files": 1,
        "preview": [asset.streaming_key],
    }


@pytest.fixture
def planned_only(pipeline, put_many, bucket) -> list[set[str]]:
    """Two folders planned but not inserted: everything they made ready is missing. Returns
    each folder's codes and keys."""
    assets = [make_asset("VHS", "VO-VHS-00001"), make_asset("BRD", "VO-BRD-00001")]
    put_many([o for a in assets for o in a.items()])
    for a in assets:
        run_assets(pipeline, a.folder, *PLAN)
    return [{a.code, *a.objects} for a in assets]


def test_missing_rows_are_found_by_probes_and_by_a_join_alike(pipeline, bucket, planned_only):
    vhs, brd = planned_only
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        probed = checks.missing_from_catalog(conn, bucket, {"VHS": 5, "BRD": 5})
        joined = checks.missing_from_catalog(conn, bucket, {"VHS": 10**6, "BRD": 10**6})
        mixed = checks.missing_from_catalog(conn, bucket, {"VHS": 5, "BRD": 10**6})
        nothing_ready = checks.missing_from_catalog(conn, bucket, {"VHS": 0, "BRD": 0})
    assert probed == joined == mixed
    # Folder by folder, in the run's order.
    assert (set(probed[:5]), set(probed[5:])) == (vhs, brd) and len(probed) == 10
    assert nothing_ready == []


def test_the_missing_check_fails_when_a_ready_file_cannot_be_inserted(
    pipeline, bucket, planned_only
):
    # By hand, between the plan and the insert: the code is catalogued live in another
    # folder. The asset is not overwritten, and its files attach only to an asset of their
    # own folder, so none of the plan's files can be inserted.
    execute(
        pipeline,
        "INSERT INTO asset (inventory_code, media_kind, bucket, folder, master_mime_type,"
        " technical_metadata, run_id)"
        " VALUES ('VO-VHS-00001', 'video', %s, 'BRD', 'video/quicktime', '{}', 'by-hand')",
        (bucket,),
    )

    result = run_assets(pipeline, "VHS", "catalog_records")

    meta = check_metadata(result, "complete_assets_catalogued")
    assert (meta["passed"], meta["missing"]) == (False, 4)
    assert sorted(meta["preview"]) == sorted(planned_only[0] - {"VO-VHS-00001"})


def test_carried_out_plans_are_dropped_and_what_waits_is_kept(pipeline, put_many):
    ready = make_asset("VHS", "VO-VHS-00001")
    waiting = make_asset("VHS", "VO-VHS-00002")  # no streaming copy yet: deferred
    put_many([*ready.items(), *[(k, b) for k, b in waiting.items() if not k.endswith(".mp4")]])
    run_assets(pipeline, "VHS", *PLAN)
    staged = pipeline.query("SELECT count(*) FROM ingest.pending_file")

    first = run_assets(pipeline, "VHS", "catalog_records")

    assert staged == [(7,)] and set(pipeline.assets()) == {"VO-VHS-00001"}
    assert pipeline.query("SELECT inventory_code, decision FROM ingest.pending_asset") == [
        ("VO-VHS-00002", "deferred")
    ]
    assert pipeline.query("SELECT count(*) FROM ingest.pending_file") == [(3,)]
    assert pipeline.query("SELECT assets, files FROM ingest.pending_plan") == [(1, 3)]
    assert check_metadata(first, "complete_assets_catalogued")["passed"]
    # The insert step again on its own: the plan was consumed, not lost, and nothing is due.
    again = run_assets(pipeline, "VHS", "catalog_records")
    assert again.success and check_metadata(again, "complete_assets_catalogued")["passed"]
    assert set(pipeline.assets()) == {"VO-VHS-00001"}


# -- rejections ----------------------------------------------------------------------------------


def rejection_row(pipeline: Pipeline, key: str) -> dict[str, Any]:
    names = ("first_seen_at", "last_seen_at", "resolved_at", "run_id")
    (row,) = pipeline.query(f"SELECT {', '.join(names)} FROM rejection WHERE key = %s", (key,))
    return dict(zip(names, row, strict=True))


def test_a_rejection_is_seen_again_resolved_and_reopened(pipeline, put_many, s3, bucket):
    bad = "VHS/not-a-code.mp4"
    put_many([*make_asset("VHS", "VO-VHS-00001").items(), (bad, b"x")])
    first = pipeline.run("VHS")
    seen = rejection_row(pipeline, bad)

    second = pipeline.run("VHS")
    again = rejection_row(pipeline, bad)
    s3.delete_object(Bucket=bucket, Key=bad)
    third = pipeline.run("VHS")
    resolved = rejection_row(pipeline, bad)
    put_many([(bad, b"x")])
    fourth = pipeline.run("VHS")

    counts = [
        (r.metadata("catalog_records")["rejections_recorded"],
         r.metadata("catalog_records")["rejections_resolved"])
        for r in (first, second, third, fourth)
    ]  # fmt: skip
    assert counts == [(1, 0), (1, 0), (0, 1), (1, 0)]
    assert again["first_seen_at"] == seen["first_seen_at"] < again["last_seen_at"]
    assert (seen["run_id"], again["run_id"]) == (first.run_id, second.run_id)
    assert resolved["resolved_at"] is not None and resolved["last_seen_at"] == again["last_seen_at"]
    assert rejection_row(pipeline, bad)["resolved_at"] is None
    assert fourth.metadata("catalog_records")["open_rejections"] == 1


# -- statistics ----------------------------------------------------------------------------------


def planned_rows(conn: psycopg.Connection, table: str) -> float:
    return conn.execute("SELECT reltuples FROM pg_class WHERE relname = %s", (table,)).fetchone()[0]


def test_statistics_are_refreshed_once_a_run_grows_a_table_by_a_tenth(database_url):
    migrate(database_url)
    add_assets = (
        "INSERT INTO asset (inventory_code, media_kind, bucket, folder, master_mime_type,"
        " technical_metadata, run_id)"
        " SELECT 'VO-AAA-' || lpad(i::text, 5, '0'), 'video', 'b', 'AAA', 'video/mp4', '{}', 'r'"
        " FROM generate_series(%s::int, %s::int) AS i"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE asset SET (autovacuum_enabled = false)")  # only ours count
        catalog.analyze_after_import(conn, 10, 0)  # too few rows to be worth sampling
        assert planned_rows(conn, "asset") == -1  # never analyzed
        conn.execute(add_assets, (1, 30_000))
        catalog.analyze_after_import(conn, 30_000, 0)
        assert planned_rows(conn, "asset") == 30_000

        conn.execute(add_assets, (30_001, 32_500))
        catalog.analyze_after_import(conn, 2_500, 0)  # under a tenth of 30,000
        assert planned_rows(conn, "asset") == 30_000
        conn.execute(add_assets, (32_501, 36_000))
        catalog.analyze_after_import(conn, 3_500, 0)
        assert planned_rows(conn, "asset") == 36_000


def test_the_pending_tables_are_analyzed_once_a_run_changed_a_tenth_either_way(database_url):
    migrate(database_url)
    add_plans = (
        "INSERT INTO ingest.pending_asset (bucket, folder, inventory_code, decision, media_kind,"
        " technical_metadata)"
        " SELECT 'b', 'AAA', 'VO-AAA-' || lpad(i::text, 5, '0'), 'import', 'video', '{\"a\": 1}'"
        " FROM generate_series(%s::int, %s::int) AS i"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ingest.pending_asset SET (autovacuum_enabled = false)")
        conn.execute(add_plans, (1, 30_000))
        catalog.analyze_pending(conn, [catalog.PendingChange(assets=10)])  # too few
        assert planned_rows(conn, "pending_asset") == -1
        catalog.analyze_pending(conn, [catalog.PendingChange(assets=n) for n in (15_000, 15_000)])
        assert planned_rows(conn, "pending_asset") == 30_000
        # Only the columns queries filter on: the technical metadata is never sampled.
        sampled = conn.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = 'ingest'"
            " AND tablename = 'pending_asset' ORDER BY attname"
        ).fetchall()
        assert sampled == [("bucket",), ("decision",), ("folder",), ("inventory_code",)]

        conn.execute("DELETE FROM ingest.pending_asset WHERE inventory_code > 'VO-AAA-27500'")
        catalog.analyze_pending(conn, [catalog.PendingChange(assets=2_500)])  # under a tenth
        assert planned_rows(conn, "pending_asset") == 30_000
        conn.execute("DELETE FROM ingest.pending_asset WHERE inventory_code > 'VO-AAA-00500'")
        catalog.analyze_pending(conn, [catalog.PendingChange(assets=27_000)])  # dropped
        assert planned_rows(conn, "pending_asset") == 500


def planned_folder_rows(conn: psycopg.Connection, table: str, folder: str) -> float:
    (plan,) = conn.execute(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE bucket = 'b' AND folder = %s",
        (folder,),
    ).fetchone()
    return plan[0]["Plan"]["Plan Rows"]


def test_a_folder_the_statistics_do_not_know_refreshes_them_though_under_a_tenth(database_url):
    """A run's 6k new rows in a 100k-row listing are under a tenth, but a folder staged after
    the last ANALYZE is taken for a row or two, and its queries planned as nested loops."""
    migrate(database_url)
    stage = (
        "INSERT INTO ingest.listing (bucket, folder, key, size_bytes, etag, last_modified,"
        " listed_at, considered)"
        " SELECT 'b', %(folder)s, %(folder)s || '/k' || i, 1, 'e', now(), now(), true"
        " FROM generate_series(1, %(n)s) AS i"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ingest.listing SET (autovacuum_enabled = false)")
        for folder in ("AAA", "BBB", "CCC", "DDD"):
            conn.execute(stage, {"folder": folder, "n": 25_000})
        assert listing.analyze_staged(conn, "b", {"AAA": (100_000, 25_000)})
        conn.execute(stage, {"folder": "EEE", "n": 6_000})
        assert planned_folder_rows(conn, "ingest.listing", "EEE") < 100

        # Rewritten rows of a folder the statistics know: under a tenth, not worth sampling.
        assert not listing.analyze_staged(conn, "b", {"AAA": (6_000, 25_000)})
        assert listing.analyze_staged(conn, "b", {"AAA": (0, 25_000), "EEE": (6_000, 6_000)})
        assert 3_000 < planned_folder_rows(conn, "ingest.listing", "EEE") < 12_000
        assert not listing.analyze_staged(conn, "b", {"EEE": (6_000, 6_000)})  # known now
        # Only the columns the per-folder queries filter and join on are sampled.
        sampled = conn.execute(
            "SELECT attname FROM pg_stats WHERE schemaname = 'ingest'"
            " AND tablename = 'listing' ORDER BY attname"
        ).fetchall()
        assert sampled == [
            ("bucket",), ("considered",), ("folder",), ("inventory_code",), ("key",), ("rule",)
        ]  # fmt: skip


def test_the_catalog_is_analyzed_after_a_run_that_filled_a_folder_it_did_not_know(database_url):
    migrate(database_url)
    add_assets = (
        "INSERT INTO asset (inventory_code, media_kind, bucket, folder, master_mime_type,"
        " technical_metadata, run_id)"
        " SELECT 'VO-' || %(folder)s || '-' || lpad(i::text, 5, '0'), 'video', 'b', %(folder)s,"
        " 'video/mp4', '{}', 'r' FROM generate_series(1, %(n)s) AS i"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE asset SET (autovacuum_enabled = false)")
        conn.execute(add_assets, {"folder": "AAA", "n": 40_000})
        catalog.analyze_after_import(conn, 40_000, 0, "b", {"AAA": (40_000, 0)})
        conn.execute(add_assets, {"folder": "BBB", "n": 3_000})
        catalog.analyze_after_import(conn, 3_000, 0)  # under a tenth, folders not named
        assert planned_folder_rows(conn, "asset", "BBB") < 100
        catalog.analyze_after_import(conn, 3_000, 0, "b", {"BBB": (3_000, 0)})
        assert planned_folder_rows(conn, "asset", "BBB") > 1_500


# -- the staged plans are unlogged -----------------------------------------------------------


def test_the_staged_plans_are_unlogged_and_each_folders_plan_is_recorded(pipeline, put_many):
    put_many(make_asset("VHS", "VO-VHS-00001").items())
    run_assets(pipeline, "VHS", *PLAN)
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        persistence = conn.execute(
            "SELECT relname, relpersistence FROM pg_class"
            " WHERE relnamespace = 'ingest'::regnamespace"
            " AND relname IN ('pending_asset', 'pending_file', 'pending_plan') ORDER BY relname"
        ).fetchall()
        plan = conn.execute("SELECT folder, assets, files FROM ingest.pending_plan").fetchall()
    assert persistence == [("pending_asset", "u"), ("pending_file", "u"), ("pending_plan", "p")]
    assert plan == [("VHS", 1, 4)]


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry run"])
def test_a_plan_emptied_by_a_crash_restart_fails_the_insert_step_and_writes_nothing(
    pipeline, put_many, dry_run
):
    """PostgreSQL truncates unlogged tables when it restarts after a crash. The insert step
    must not take the emptied plan for "nothing new" (and mark the folder imported)."""
    put_many(make_asset("VHS", "VO-VHS-00001").items())
    run_assets(pipeline, "VHS", *PLAN)
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE ingest.pending_asset, ingest.pending_file")  # what recovery does

    register_folders(pipeline.instance, ["VHS"])
    failed = pipeline.defs.resolve_job_def(IMPORT_JOB).execute_in_process(
        instance=pipeline.instance,
        partition_key="VHS",
        asset_selection=[dg.AssetKey("catalog_records")],
        run_config={"resources": {"import_settings": {"config": {"dry_run": dry_run}}}},
        raise_on_error=False,
    )

    assert not failed.success
    error = next(e for e in failed.all_events if e.is_step_failure).step_failure_data.error
    assert "staged plan of folder 'VHS' (1 asset(s)" in str(error)
    assert pipeline.assets() == {} and pipeline.files() == {}
    with psycopg.connect(pipeline.database_url, autocommit=True) as conn:
        imported = conn.execute(
            "SELECT imported_run_id FROM ingest.folder_state WHERE folder = 'VHS'"
        ).fetchall()
    assert (failed.run_id,) not in imported  # still due: the sensors ask for it again
    # Planning again (what the sensors' next request does) imports it.
    assert pipeline.run("VHS").success
    assert set(pipeline.assets()) == {"VO-VHS-00001"}


def vacuums(conn: psycopg.Connection, table: str) -> int:
    """How many times the table was vacuumed by hand (autovacuum is off for it here)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")  # read the statistics afresh
    row = conn.execute(
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = 'ingest' AND relname = %s",
        (table,),
    ).fetchone()
    return row[0]


def test_plans_dropped_by_the_thousands_are_vacuumed_away_once_per_run(database_url):
    """The insert step reads each folder's plans through bitmap scans, which never mark dead
    rows: after a first import's plans were replaced, every statement waded through them."""
    migrate(database_url)
    add_files = (
        "INSERT INTO ingest.pending_file (bucket, folder, key, inventory_code, role, decision,"
        " mime_type, size_bytes, md5_verified, last_modified)"
        " SELECT 'b', 'AAA', 'AAA/k' || i, 'VO-AAA-00001', 'metadata', 'import', 'a/b', 1,"
        " false, now() FROM generate_series(1, %s) AS i"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE ingest.pending_file SET (autovacuum_enabled = false)")
        conn.execute(add_files, (30_000,))
        catalog.analyze_pending(conn, [catalog.PendingChange(files=30_000)])
        before = vacuums(conn, "pending_file")
        dropped = conn.execute("DELETE FROM ingest.pending_file WHERE key > 'AAA/k2'").rowcount
        catalog.analyze_pending(conn, [catalog.PendingChange(files=dropped)])  # not dropped
        assert vacuums(conn, "pending_file") == before
        catalog.analyze_pending(conn, [catalog.PendingChange(files=dropped, files_dropped=dropped)])
        assert vacuums(conn, "pending_file") == before + 1
        assert planned_rows(conn, "pending_file") == 30_000 - dropped  # analyzed as well
