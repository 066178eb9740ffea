"""Phase 2 of large folders in worker processes (media_import.planning): the same plans and
staged rows as planning in the run process, failures back as what they were, and the asset's
report of it. Against the test's PostgreSQL and S3 server, with real worker processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from media_import.core.storage import Bucket, S3Config, S3Unavailable
from media_import.db import session
from media_import.db.migrate import migrate
from media_import.defs.importing.partitions import register_folders
from media_import.defs.importing.resources import ImportSettings
from media_import.phases import analyze_discovered, discover_folder
from media_import.planning import Planned, PlanningJob, plan_folders
from media_import_tests.conftest import fresh_database
from media_import_tests.pipeline.conftest import IMPORT_JOB, make_asset, md5_lines

FOLDERS = ["VHS", "BRD", "DVC"]


@pytest.fixture
def other_database_url(pg_server) -> Iterator[str]:
    with fresh_database(pg_server) as url:
        yield url


@pytest.fixture
def archive(put_many) -> None:
    """Three folders: complete assets, one without its .json (deferred), one whose .md5 does
    not match its streaming copy (rejected)."""
    complete = [make_asset("VHS", f"VO-VHS-0000{i}") for i in (1, 2)]
    complete += [make_asset("BRD", "VO-BRD-00001"), make_asset("DVC", "VO-DVC-00001")]
    deferred = make_asset("VHS", "VO-VHS-00003")
    mismatched = make_asset("BRD", "VO-BRD-00002")
    wrong_md5 = md5_lines([("0" * 32, mismatched.master_filename), ("1" * 32, "VO-BRD-00002.mp4")])
    put_many(
        [item for a in complete for item in a.items()]
        + deferred.items(".mp4", ".md5", ".pdf")
        + [*mismatched.items(".mp4", ".json", ".pdf"), (mismatched.key(".md5"), wrong_md5)]
    )


def _config(s3_server, bucket: str, endpoint_url: str | None = None) -> S3Config:
    return S3Config(
        bucket=bucket,
        endpoint_url=endpoint_url or s3_server.endpoint_url,
        region=s3_server.region,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )


def _discovered(config: S3Config, database_url: str) -> Bucket:
    """The folders listed and staged, as phase 1 leaves them for phase 2."""
    migrate(database_url)
    bucket = Bucket(config)
    rules = ImportSettings().rules()
    with session.connect(database_url) as conn:
        found = [discover_folder(bucket, conn, f, rules) for f in FOLDERS]
        analyze_discovered(conn, bucket.name, found)
    return bucket


def _plan(bucket: Bucket, database_url: str, job: PlanningJob, processes: int) -> Planned:
    return plan_folders(
        bucket,
        lambda: session.connect(database_url),
        job,
        FOLDERS,
        workers=3,
        processes=processes,
        min_process_keys=1,
    )


def _summary(planned: Planned) -> list[tuple[Any, ...]]:
    return [
        (
            p.folder,
            p.valid,
            p.new_files,
            p.sidecars_read,
            dict(p.asset_counts),
            dict(p.file_counts),
            sorted((r.key, r.rule) for r in p.rejections),
            sorted(a.inventory_code for a in p.plans),
        )
        for p in planned.plans
    ]


def _staged(database_url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM ingest.{table} ORDER BY 1, 2, 3").fetchall()
            for table in ("pending_asset", "pending_file")
        }


@pytest.mark.usefixtures("archive")
def test_worker_processes_plan_as_the_run_process_does(
    s3_server, bucket, database_url, other_database_url
) -> None:
    config = _config(s3_server, bucket)
    in_workers = _plan(
        _discovered(config, database_url),
        database_url,
        PlanningJob(config, 8, 1000, database_url),
        processes=2,
    )
    in_run = _plan(
        _discovered(config, other_database_url),
        other_database_url,
        PlanningJob(config, 8, 1000, other_database_url),
        processes=0,
    )

    assert (in_workers.in_processes, in_run.in_processes) == (3, 0)
    assert _summary(in_workers) == _summary(in_run)
    assert [p.folder for p in in_workers.plans] == FOLDERS
    vhs, brd, _ = in_workers.plans
    assert [a.inventory_code for a in vhs.plans] == ["VO-VHS-00003"]  # deferred
    assert {r.key for r in brd.rejections} >= {"BRD/VO-BRD-00002.mp4"}
    staged = _staged(database_url)
    assert staged == _staged(other_database_url)
    assert len(staged["pending_asset"]) == 6 and len(staged["pending_file"]) == 23


@pytest.mark.usefixtures("archive")
def test_a_workers_failure_is_raised_as_what_it_was(s3_server, bucket, database_url) -> None:
    """The sidecars' server gone after discovery: the worker's S3Unavailable (which the
    step's retries go by) reaches the run process as itself."""
    bucket_ = _discovered(_config(s3_server, bucket), database_url)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{closed.getsockname()[1]}"
    job = PlanningJob(_config(s3_server, bucket, gone), 8, 1000, database_url)

    with pytest.raises(S3Unavailable):
        _plan(bucket_, database_url, job, processes=2)


@pytest.mark.usefixtures("archive")
def test_a_worker_that_cannot_reach_the_catalog_fails_the_plan(
    s3_server, bucket, database_url
) -> None:
    bucket_ = _discovered(_config(s3_server, bucket), database_url)
    job = PlanningJob(_config(s3_server, bucket), 8, 1000, "postgresql://nobody@127.0.0.1:1/x")

    with pytest.raises(psycopg.OperationalError):
        _plan(bucket_, database_url, job, processes=2)


@pytest.mark.usefixtures("archive")
def test_the_asset_reports_the_folders_planned_in_processes(pipeline) -> None:
    register_folders(pipeline.instance, FOLDERS)
    job = pipeline.defs.resolve_job_def(IMPORT_JOB)

    def run(**settings: Any) -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=pipeline.instance,
            tags={
                "dagster/asset_partition_range_start": FOLDERS[0],
                "dagster/asset_partition_range_end": FOLDERS[-1],
            },
            run_config={"resources": {"import_settings": {"config": settings}}},
            raise_on_error=False,
        )

    result = run(plan_processes=2, plan_process_min_keys=1)

    assert result.success
    (mat, *_) = result.asset_materializations_for_node("new_media_files")
    assert mat.metadata["folders_planned_in_processes"].value == 3
    catalogued = {"VO-VHS-00001", "VO-VHS-00002", "VO-BRD-00001", "VO-DVC-00001"}
    assert set(pipeline.assets()) == catalogued
    # The next run plans only what changed (restaged ranges): nothing is planned whole.
    (again, *_) = run(plan_processes=2, plan_process_min_keys=1).asset_materializations_for_node(
        "new_media_files"
    )
    assert again.metadata["folders_planned_in_processes"].value == 0
