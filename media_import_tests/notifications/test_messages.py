"""The texts of the e-mails, from plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from media_import.core.partition_keys import folder_to_partition_key
from media_import.db.summary import CatalogFigures
from media_import.notify.messages import (
    MAX_LISTED_FAILURES,
    FailedRun,
    RunOutcome,
    StepError,
    failure_email,
    run_folders,
    run_link,
    summary_email,
)

RUN_ID = "0f6c2a1e-5b7d-4c1e-9a51-3c2d7e8f9a10"
FIGURES = CatalogFigures(
    assets_imported=4,
    files_imported=17,
    assets_deleted=1,
    files_deleted=3,
    rejections_first_seen=2,
    rejections_resolved=5,
    rejections_open=9,
)


def test_run_folders_decodes_the_partition_key():
    assert run_folders({"dagster/partition": "BRD"}) == "BRD"
    key = folder_to_partition_key("Nastri audio/1.2")
    assert key != "Nastri audio/1.2"
    assert run_folders({"dagster/partition": key}) == "Nastri audio/1.2"


def test_run_folders_of_a_partition_range():
    tags = {
        "dagster/asset_partition_range_start": folder_to_partition_key("Città"),
        "dagster/asset_partition_range_end": "DVD",
    }
    assert run_folders(tags) == "Città to DVD"
    same = {
        "dagster/asset_partition_range_start": "BRD",
        "dagster/asset_partition_range_end": "BRD",
    }
    assert run_folders(same) == "BRD"


def test_run_folders_of_an_unpartitioned_run():
    assert run_folders({}) is None
    assert run_folders({"dagster/asset_partition_range_start": "BRD"}) is None


def test_run_link_only_with_a_ui_url():
    assert run_link(None, RUN_ID) is None
    assert run_link("http://ui:3000/", RUN_ID) == f"http://ui:3000/runs/{RUN_ID}"


def test_failure_email_names_job_folder_run_and_errors():
    run = FailedRun(
        job="import_folder",
        run_id=RUN_ID,
        message="Execution of run for \"import_folder\" failed. Steps failed: ['s3_objects'].",
        tags={"dagster/partition": folder_to_partition_key("Nastri audio")},
        errors=(
            StepError(None, "DagsterResourceFunctionError: resource catalog"),
            StepError("s3_objects", "NoSuchBucket\ncaused by: The bucket does not exist"),
        ),
    )
    subject, body = failure_email(run, "http://ui:3000")

    assert subject == "[media_import] import_folder failed: Nastri audio"
    assert "Job:    import_folder\n" in body
    assert "Folder: Nastri audio\n" in body
    assert f"Run id: {RUN_ID}\n" in body
    assert f"Run:    http://ui:3000/runs/{RUN_ID}\n" in body
    assert "Steps failed: ['s3_objects']" in body
    assert "Run:\n  DagsterResourceFunctionError: resource catalog\n" in body
    assert "Step s3_objects:\n  NoSuchBucket\n  caused by: The bucket does not exist\n" in body


def test_failure_email_without_folder_or_ui_url():
    subject, body = failure_email(FailedRun("bucket_inventory_job", RUN_ID, "It broke."))
    assert subject == "[media_import] bucket_inventory_job failed"
    assert "Folder" not in body
    assert "/runs/" not in body
    assert body.endswith("It broke.\n")


def test_failure_email_of_a_range_and_a_folder_with_a_line_break():
    ranged = FailedRun(
        "import_folder",
        RUN_ID,
        "failed",
        tags={
            "dagster/asset_partition_range_start": "BRD",
            "dagster/asset_partition_range_end": "DVD",
        },
    )
    assert "Folders: BRD to DVD\n" in failure_email(ranged)[1]

    odd = FailedRun("import_folder", RUN_ID, "failed", tags={"dagster/partition": "two%0Alines"})
    subject, _ = failure_email(odd)
    # A line break in a header would make the message unsendable.
    assert subject == "[media_import] import_folder failed: two lines"


def test_summary_email_counts_runs_lists_failures_and_figures():
    since = datetime(2025, 3, 9, 7, tzinfo=UTC)
    until = datetime(2025, 3, 10, 7, tzinfo=UTC)
    runs = [
        RunOutcome("import_folder", "run-ok-1", "succeeded", {"dagster/partition": "BRD"}),
        RunOutcome("import_folder", "run-ok-2", "succeeded", {"dagster/partition": "DVD"}),
        RunOutcome("import_folder", "run-bad", "failed", {"dagster/partition": "Citt%C3%A0"}),
        RunOutcome("bucket_inventory_job", "run-gone", "canceled"),
    ]
    subject, body = summary_email(since, until, runs, FIGURES, "http://ui:3000")

    assert subject == "[media_import] daily summary 2025-03-10: 4 runs, 1 failed"
    assert "Period: 2025-03-09 07:00 to 2025-03-10 07:00 UTC\n" in body
    assert "Runs: 4\n  succeeded: 2\n  failed:    1\n  canceled:  1\n" in body
    assert "in progress" not in body
    assert "Failed runs:\n  import_folder  Città  http://ui:3000/runs/run-bad\n" in body
    for line in (
        "assets imported:       4",
        "files imported:        17",
        "assets soft-deleted:   1",
        "files soft-deleted:    3",
        "rejections first seen: 2",
        "rejections resolved:   5",
        "rejections open now:   9",
    ):
        assert f"  {line}\n" in body


def test_summary_email_of_a_quiet_day():
    since = datetime(2025, 3, 9, 7, tzinfo=UTC)
    zero = CatalogFigures(0, 0, 0, 0, 0, 0, 3)
    subject, body = summary_email(since, since.replace(day=10), [], zero)
    assert subject == "[media_import] daily summary 2025-03-10: 0 runs, 0 failed"
    assert "Runs: 0\n" in body
    assert "Failed runs" not in body
    assert "rejections open now:   3" in body


def test_summary_email_caps_the_list_of_failures():
    runs = [
        RunOutcome("import_folder", f"run-{i}", "failed") for i in range(MAX_LISTED_FAILURES + 7)
    ]
    runs.append(RunOutcome("import_folder", "run-live", "in progress"))
    moment = datetime(2025, 3, 10, 7, tzinfo=UTC)
    _, body = summary_email(moment, moment, runs, FIGURES)
    assert body.count("  import_folder  -  run-") == MAX_LISTED_FAILURES
    assert "  ... and 7 more\n" in body
    assert "  in progress: 1\n" in body
