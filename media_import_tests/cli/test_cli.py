"""`media-import run` against a real Dagster instance (PostgreSQL storage), bucket and catalog."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from media_import.cli.main import main
from media_import.samples.archive import build_sample_archive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_server, database_url: str
) -> Iterator[Path]:
    """DAGSTER_HOME with the project's own dagster.yaml, its storage in a fresh database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", pg_server.url(name))
    yield home
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def sample_bucket(s3_env: dict[str, str], put_many) -> dict[str, str]:
    put_many((o.key, o.body) for o in build_sample_archive() if o.key.startswith(("BRD/", "FILE/")))
    return s3_env


def _catalog_counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM asset), (SELECT count(*) FROM asset_file),"
            " (SELECT count(*) FROM rejection)"
        ).fetchone()
    assert row is not None
    return row


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connections to it are refused for the whole test.
    (A port merely freed could be taken by another server meanwhile, and then answer.)"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_run_imports_given_folders_and_records_the_runs(
    sample_bucket: dict[str, str], dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--folder", "FILE"]) == 0
    captured = capsys.readouterr()
    # A progress line and the summary, for a person; Dagster's event logs stay with the run.
    assert captured.out.splitlines() == [
        captured.out.splitlines()[0],
        "folder  found  ignored  rejected  new  skipped  deferred  inserted  soft-deleted  status",
        "FILE    24     0        0         24   0        0         24        0             ok",
    ]
    assert captured.out.startswith("[1/1] FILE: importing... ok (")
    assert captured.err == ""
    assets, files, _ = _catalog_counts(sample_bucket["DATABASE_URL"])
    assert (assets, files) == (6, 24)
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(dg.RunsFilter(tags={"media_import/launched_by": "cli"}))
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
    assert runs[0].tags["dagster/partition"] == "FILE"
    logged = instance.all_logs(runs[0].run_id)
    assert any(e.dagster_event and e.dagster_event.event_type_value == "STEP_START" for e in logged)


def test_json_prints_only_the_summary_and_verbose_adds_dagsters_logs_without_colours(
    sample_bucket: dict[str, str], dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--folder", "BRD", "--json"]) == 0
    captured = capsys.readouterr()
    (brd,) = json.loads(captured.out)
    assert brd["folder"] == "BRD" and brd["status"] == "warnings" and captured.err == ""
    assert (brd["inserted_files"], brd["deferred"], brd["soft_deleted_files"]) == (24, 1, 0)
    assert brd["rejected"] == 8 and brd["failed_checks"] == [
        "no_rejected_assets",
        "no_rejected_files",
    ]

    assert main(["run", "--folder", "BRD", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "STEP_SUCCESS" in captured.err  # Dagster's event log lines
    assert "\x1b[" not in captured.err + captured.out  # not a terminal: no colour codes


def test_run_without_folders_imports_every_folder_and_dry_run_writes_nothing(
    sample_bucket: dict[str, str], dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "BRD" in out and "FILE" in out and "dry" in out
    assert _catalog_counts(sample_bucket["DATABASE_URL"]) == (0, 0, 0)
    partitions = dg.DagsterInstance.get().get_dynamic_partitions("folders")
    assert sorted(partitions) == ["BRD", "FILE"]


def test_safe_run_with_rejections_exits_non_zero_and_writes_nothing(
    sample_bucket: dict[str, str], dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--folder", "BRD", "--safe-run"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "safe run aborted" in out
    assert _catalog_counts(sample_bucket["DATABASE_URL"]) == (0, 0, 0)


def test_missing_bucket_is_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    monkeypatch.delenv("S3_BUCKET_IN", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.chdir(REPO / "media_import_tests")  # no .env here
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "media-import: no bucket configured: set BUCKET_NAME (or S3_BUCKET_IN)"


def test_unreachable_database_names_the_setting_and_hides_the_password(
    sample_bucket: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    closed_port: int,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://media:s3cr3t@127.0.0.1:{closed_port}/x")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL" in err and "s3cr3t" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "Connection refused" in err  # libpq's cause, not only its hint


def _settings_error(argv: list[str], capfd: pytest.CaptureFixture[str]) -> str:
    """The command's one line on stderr (whatever wrote there: Dagster's loggers too), after
    exit status 2 within a few seconds."""
    started = time.monotonic()
    assert main(argv) == 2
    elapsed = time.monotonic() - started
    captured = capfd.readouterr()
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err and elapsed < 5, (elapsed, captured.err)
    return captured.err.strip()


def test_an_instance_variable_missing_is_one_message(
    sample_bucket: dict[str, str],
    dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DAGSTER_POSTGRES_URL")
    line = _settings_error(["run", "--folder", "FILE"], capfd)
    assert line == (
        "media-import: DAGSTER_POSTGRES_URL is not set: the Dagster instance "
        f"({dagster_home / 'dagster.yaml'}) reads it"
    )
    monkeypatch.delenv("DAGSTER_HOME")
    assert "DAGSTER_HOME is not set" in _settings_error(["run", "--folder", "FILE"], capfd)


def test_an_unreachable_instance_database_is_one_message_at_once(
    sample_bucket: dict[str, str],
    dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    closed_port: int,
) -> None:
    url = f"postgresql://dagster:s3cr3t@127.0.0.1:{closed_port}/dagster"
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", url)
    for argv in (["run", "--folder", "FILE"], ["backfill", "--folder", "FILE"]):
        line = _settings_error(argv, capfd)
        assert line.startswith("media-import: cannot connect to the Dagster instance's database")
        assert "DAGSTER_POSTGRES_URL" in line and "Connection refused" in line
        assert "s3cr3t" not in line


def test_unreachable_endpoint_and_missing_bucket_name_the_setting(
    sample_bucket: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    closed_port: int,
) -> None:
    monkeypatch.setenv("BUCKET_NAME", "no-such-bucket")
    assert main(["run"]) == 2
    assert "BUCKET_NAME" in capsys.readouterr().err
    monkeypatch.setenv("S3_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "S3_ENDPOINT_URL" in err and "Traceback" not in err


def test_console_script_runs_in_its_own_process(
    sample_bucket: dict[str, str], dagster_home: Path
) -> None:
    script = Path(sys.executable).with_name("media-import")
    result = subprocess.run(
        [str(script), "run", "--folder", "FILE"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "FILE" in result.stdout
    assert _catalog_counts(sample_bucket["DATABASE_URL"])[0] == 6


def test_count_bucket_materialises_bucket_inventory_in_the_instance(
    sample_bucket: dict[str, str], dagster_home: Path
) -> None:
    from media_import.cli.importing import count_bucket

    assert count_bucket(echo=False)
    instance = dg.DagsterInstance.get()
    event = instance.get_latest_materialization_event(dg.AssetKey("bucket_inventory"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["objects"].value == len(
        [o for o in build_sample_archive() if o.key.startswith(("BRD/", "FILE/"))]
    )
    assert sorted(instance.get_dynamic_partitions("folders")) == ["BRD", "FILE"]


def test_backfill_queues_one_run_per_folder_for_the_daemon_and_can_be_repeated(
    sample_bucket: dict[str, str], dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = str(REPO / "workspace.yaml")
    assert main(["backfill", "--folder", "BRD", "--folder", "FILE", "--workspace", workspace]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "backfilling 2 folder(s): BRD, FILE"
    assert re.fullmatch(r"queued \(backfill \w+\): the daemon .* starts the runs", out[1])
    assert len(out) == 2  # dagster's own output only with --verbose

    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(dg.RunsFilter(tags={"media_import/launched_by": "cli"}))
    # Queued behind the run coordinator's limits, tagged as one backfill, one run per folder.
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["BRD", "FILE"]
    assert len({r.tags["dagster/backfill"] for r in runs}) == 1
    assert {r.job_name for r in runs} == {"import_folder"}

    # Again: another backfill, queued the same way (the import itself is idempotent).
    assert main(["backfill", "--folder", "BRD", "--workspace", workspace, "--verbose"]) == 0
    assert "Launched backfill job" in (verbose := capsys.readouterr().out)
    assert "\x1b[" not in verbose  # not a terminal: no colour codes
    runs = instance.get_runs(dg.RunsFilter(tags={"media_import/launched_by": "cli"}))
    assert len(runs) == 3 and len({r.tags["dagster/backfill"] for r in runs}) == 2


def test_backfill_without_a_workspace_file_says_so(
    sample_bucket: dict[str, str], dagster_home: Path, tmp_path: Path, capsys
) -> None:
    assert main(["backfill", "--workspace", str(tmp_path / "nope.yaml")]) == 2
    assert "workspace file" in capsys.readouterr().err
