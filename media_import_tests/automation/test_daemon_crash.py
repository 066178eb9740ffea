"""The real `dagster-daemon`, killed with SIGKILL part way through a burst of uploads.

The daemon runs with a copy of the shipped instance config (dagster_home/dagster.yaml) on its
own PostgreSQL database, loads the code location from workspace.yaml, and its sensors watch the
test's bucket (listing, and S3 notifications delivered by the S3 server into SQS). The test
uploads a burst and kills the daemon process with SIGKILL (only it: the code server and run
workers it started go on or not, both must be fine) at one of two points: as soon as the first
import run exists (the sensor tick that requests the burst's runs may be cut short), or once the
first import has written to the catalog (runs queued and starting). While it is down it uploads
a second burst and removes an object of the first; then it restarts the daemon and checks that
every object ends up catalogued exactly once, by runs that succeeded. A run the kill left
STARTING with no worker is failed by run monitoring (start_timeout_seconds) and retried by run
retries; the retry must succeed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from media_import.defs.importing.jobs import IMPORT_JOB_NAME
from media_import.devstack.events import make_queue, notify_bucket_to_queue, sqs_client
from media_import_tests.conftest import fresh_database
from media_import_tests.pipeline.conftest import AssetFiles, make_asset

REPO = Path(__file__).resolve().parents[2]
DAEMON = Path(sys.executable).parent / "dagster-daemon"
FOLDERS = ("VHS", "BRD", "DVC")
SENSOR_INTERVAL = "1"
START_DEADLINE = 90.0  # seconds from the first upload until the kill point
SETTLE_DEADLINE = 150.0  # from the restart until the catalog holds everything: covers a run
# failed for never starting (60 s start timeout, 15 s monitoring poll) and its retry

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


# -- the daemon's processes ---------------------------------------------------------------------


class Daemons:
    """Starts `dagster-daemon run` (each start in its own session and process group, with its
    own log file), and kills every process group it started, and any straggler, at the end."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.tmp_path = tmp_path
        self.home = home
        self.env: dict[str, str] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"daemon-{len(self.processes) + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(DAEMON), "run", "-w", str(REPO / "workspace.yaml")],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        self.logs.append(log)
        return process

    def check_alive(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            raise AssertionError(f"dagster-daemon exited with {process.returncode}")

    def print_logs(self, lines: int = 150) -> None:
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            print(f"\n===== {log.name}: last {lines} of {len(text)} lines =====")
            print("\n".join(text[-lines:]))

    def stop_all(self) -> None:
        # A process group outlives its leader while members remain (the code server and run
        # workers a killed daemon started): kill every group, then anything left over.
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for pid in self.stragglers():
            print(f"killing straggler {pid}: {_cmdline(pid)}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stragglers(self) -> list[int]:
        """Processes (other than this one) whose environment holds this test's DAGSTER_HOME."""
        marker = f"DAGSTER_HOME={self.home}\0".encode()
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            pid = int(entry.name)
            if pid == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes():
                    found.append(pid)
            except OSError:
                continue
        return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


@pytest.fixture
def dagster_database(pg_server: Any) -> Iterator[str]:
    """A second fresh database, for the Dagster instance (runs, event logs, sensor state)."""
    with fresh_database(pg_server, "dagster") as url:
        yield url


@pytest.fixture
def daemons(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_env: dict[str, str],
    s3_server: Any,
    bucket: str,
    dagster_database: str,
) -> Iterator[Daemons]:
    """The daemon's DAGSTER_HOME, queue and environment (set in this process too, so that
    DagsterInstance.get() opens the same instance); every process it started is killed after
    the test, before the databases are dropped."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    t = s3_server
    queue_url = make_queue(t.endpoint_url, f"events-{bucket}", t.region, t.access_key, t.secret_key)
    notify_bucket_to_queue(t.endpoint_url, bucket, queue_url, t.region, t.access_key, t.secret_key)
    extra = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": dagster_database,
        "S3_EVENTS_QUEUE_URL": queue_url,
        "SQS_ENDPOINT_URL": t.endpoint_url,
        "MEDIA_IMPORT_SENSOR_INTERVAL": SENSOR_INTERVAL,
        "PYTHONUNBUFFERED": "1",
    }
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    manager = Daemons(tmp_path, home)
    manager.env = {**os.environ, **s3_env, **extra}
    try:
        yield manager
    finally:
        manager.stop_all()


# -- reading the catalog and the instance -------------------------------------------------------


def _query(database_url: str, statement: str, params: Any = None) -> list[tuple]:
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()
    except psycopg.errors.UndefinedTable:
        return []  # not migrated yet: the first sensor tick does that


def _catalogued_files(database_url: str) -> int:
    rows = _query(database_url, "SELECT count(*) FROM asset_file")
    return int(rows[0][0]) if rows else 0


def _import_runs(
    instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus] | None = None
) -> list[dg.DagsterRun]:
    return list(instance.get_runs(dg.RunsFilter(job_name=IMPORT_JOB_NAME, statuses=statuses or [])))


def _wait(
    what: str,
    done: Callable[[], bool],
    deadline: float,
    daemon: subprocess.Popen[bytes],
    progress: Callable[[], str],
    every: float = 0.5,
) -> float:
    """Poll `done` every `every` seconds until it holds; returns the seconds waited."""
    started = time.monotonic()
    while not done():
        if daemon.poll() is not None:
            raise AssertionError(f"dagster-daemon exited ({daemon.returncode}) while {what}")
        if time.monotonic() - started > deadline:
            raise AssertionError(f"not {what} after {deadline:.0f}s: {progress()}")
        time.sleep(every)
    return time.monotonic() - started


def _queue_depth(s3_server: Any, queue_url: str) -> int:
    t = s3_server
    sqs = sqs_client(t.endpoint_url, t.region, t.access_key, t.secret_key)
    values = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in values.values())


def _run_failure_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The run's failure and error events, as text, to say why it failed."""
    wanted = {"RUN_FAILURE", "STEP_FAILURE", "ENGINE_EVENT"}
    messages = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value in wanted:
            messages.append(f"{event.event_type_value}: {record.user_message}")
    return messages


def _never_started_and_retried(run: dg.DagsterRun, runs: dict[str, dg.DagsterRun]) -> bool:
    """Whether run monitoring failed `run` for never starting, and its retry succeeded."""
    if run.status != dg.DagsterRunStatus.FAILURE:
        return False
    if run.tags.get("dagster/failure_reason") != "START_TIMEOUT":
        return False
    retries = [r for r in runs.values() if r.tags.get("dagster/parent_run_id") == run.run_id]
    return any(r.status == dg.DagsterRunStatus.SUCCESS for r in retries)


# -- the test -----------------------------------------------------------------------------------


def _assets(first: int, count: int) -> list[AssetFiles]:
    """`count` valid assets spread over FOLDERS, numbered from `first`."""
    return [
        make_asset(folder, f"VO-{folder}-{n:05d}")
        for n in range(first, first + count)
        for folder in [FOLDERS[n % len(FOLDERS)]]
    ]


# When to kill the daemon: as soon as the sensors have requested a run (the tick launching the
# burst's runs may be cut short), or once the first import has written to the catalog.
KILL_POINTS = ("first_run_requested", "first_import_written")


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_killed_daemon_restarts_and_catalogues_every_object_once(
    kill_point: str, daemons: Daemons, put_many, s3, bucket, s3_server, database_url
):
    t0 = time.monotonic()
    first_burst = _assets(1, 30)  # 120 objects, 10 assets per folder
    second_burst = _assets(31, 6)  # 24 objects, uploaded while the daemon is down
    assets = first_burst + second_burst
    objects = {key for a in assets for key in a.objects}
    removed = first_burst[0].key(".pdf")  # removed while the daemon is down
    queue_url = daemons.env["S3_EVENTS_QUEUE_URL"]
    instance = dg.DagsterInstance.get()

    def kill_now() -> bool:
        if not _import_runs(instance):
            return False
        return kill_point == "first_run_requested" or _catalogued_files(database_url) > 0

    def counts() -> tuple[int, ...]:
        row = _query(
            database_url,
            "SELECT (SELECT count(*) FROM asset WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM asset_file WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM ingest.folder_state"
            "  WHERE bucket = %s AND generation > imported_generation)",
            (bucket,),
        )
        live_assets, live_files, dirty = row[0] if row else (0, 0, -1)
        in_flight = len(_import_runs(instance, IN_FLIGHT))
        return live_assets, live_files, dirty, in_flight, _queue_depth(s3_server, queue_url)

    daemon = daemons.start()
    try:
        put_many(item for a in first_burst for item in a.items())
        waited = _wait(
            kill_point.replace("_", " "),
            kill_now,
            START_DEADLINE,
            daemon,
            lambda: f"{len(_import_runs(instance))} import runs",
            every=0.1,
        )
        os.kill(daemon.pid, signal.SIGKILL)  # the daemon only, not its process group
        daemon.wait(timeout=10)
        runs_at_kill = {
            r.run_id[:8]: f"{r.tags.get('dagster/partition')} {r.status.value}"
            for r in _import_runs(instance)
        }
        print(
            f"killed the daemon {waited:.1f}s after the first upload: "
            f"{_catalogued_files(database_url)} files catalogued, runs {runs_at_kill}"
        )

        # While it is down: more uploads, and one object of the first burst removed. Their
        # notifications pile up in SQS; the restarted daemon must catch up.
        put_many(item for a in second_burst for item in a.items())
        s3.delete_object(Bucket=bucket, Key=removed)

        daemon = daemons.start()
        settled = (len(assets), len(objects) - 1, 0, 0, 0)
        _wait(
            "settled",
            lambda: counts() == settled,
            SETTLE_DEADLINE,
            daemon,
            lambda: (
                f"(live assets, live files, dirty folders, runs in flight, queued messages)"
                f" = {counts()}, wanted {settled}"
            ),
        )
        print(f"settled {time.monotonic() - t0:.1f}s after the first start")

        # Every object catalogued exactly once; the removed one soft-deleted if it had been
        # catalogued before its removal, else never catalogued.
        files = _query(
            database_url,
            "SELECT key, run_id, deleted_at IS NOT NULL, deleted_reason, deleted_by_run_id"
            " FROM asset_file",
        )
        keys = [f[0] for f in files]
        assert len(keys) == len(set(keys))
        assert set(keys) - {removed} == objects - {removed}
        assert [(f[0], f[3]) for f in files if f[2]] == (
            [(removed, "removed")] if removed in keys else []
        )
        print(f"{removed}: {'soft-deleted' if removed in keys else 'never catalogued'}")
        asset_rows = _query(database_url, "SELECT inventory_code, run_id, deleted_at FROM asset")
        assert sorted(a[0] for a in asset_rows) == sorted(a.code for a in assets)
        assert all(a[2] is None for a in asset_rows)
        assert _query(database_url, "SELECT count(*) FROM rejection") == [(0,)]

        # Written by runs that exist in the instance and succeeded.
        runs = {r.run_id: r for r in _import_runs(instance)}
        writers = {f[1] for f in files} | {f[4] for f in files if f[4]} | {a[1] for a in asset_rows}
        assert writers <= set(runs), f"catalog rows by unknown runs: {writers - set(runs)}"
        assert {runs[w].status for w in writers} == {dg.DagsterRunStatus.SUCCESS}

        # No run failed (or was left behind), but for one the kill left STARTING without a
        # worker: run monitoring fails it (it never wrote, see above) and run retries launch
        # it again, and that retry succeeded. Say why any other failed.
        failed = [r for r in runs.values() if r.status != dg.DagsterRunStatus.SUCCESS]
        unexplained = [r for r in failed if not _never_started_and_retried(r, runs)]
        for run in failed:
            print(f"run {run.run_id} ({run.tags.get('dagster/partition')}): {run.status.value}")
            print("\n".join(f"  {m}" for m in _run_failure_messages(instance, run.run_id)))
        assert not unexplained
        print(
            f"{len(runs)} import runs: "
            + ", ".join(
                sorted(
                    f"{r.tags.get('dagster/partition')}@{r.tags.get('media_import/generation')}"
                    for r in runs.values()
                )
            )
        )
    except BaseException:
        daemons.print_logs()
        raise
    finally:
        instance.dispose()


def test_a_run_left_starting_without_a_worker_is_failed_and_retried(
    daemons: Daemons, put_many, database_url
):
    """The state the kill above leaves now and then, made on purpose: a run marked STARTING
    (as the daemon does just before it hands the run to the code server) with no worker. Run
    monitoring fails it after start_timeout_seconds, run retries launch it again, and the
    retry imports the folder; nothing else fails."""
    shipped = (daemons.home / "dagster.yaml").read_text()
    assert "max_concurrent_runs: 4" in shipped
    # First a daemon whose queue launches nothing, so the sensor's run stays QUEUED.
    (daemons.home / "dagster.yaml").write_text(
        shipped.replace("max_concurrent_runs: 4", "max_concurrent_runs: 0")
    )
    assets = _assets(1, 6)
    instance = dg.DagsterInstance.get()
    daemon = daemons.start()
    try:
        put_many(item for a in assets for item in a.items())
        _wait(
            "queued",  # a run for each folder, all submitted to the queue
            lambda: len(_import_runs(instance, [dg.DagsterRunStatus.QUEUED])) == len(FOLDERS),
            START_DEADLINE,
            daemon,
            lambda: f"{len(_import_runs(instance))} import runs",
        )
        daemons.stop_all()
        queued = _import_runs(instance)
        assert {r.status for r in queued} == {dg.DagsterRunStatus.QUEUED}
        left = queued[0]
        starting = dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_STARTING.value, job_name=left.job_name
        )
        instance.report_dagster_event(starting, run_id=left.run_id)
        assert instance.get_run_by_id(left.run_id).status == dg.DagsterRunStatus.STARTING

        (daemons.home / "dagster.yaml").write_text(shipped)
        daemon = daemons.start()

        def done() -> bool:
            return (
                _catalogued_files(database_url) == sum(len(a.objects) for a in assets)
                and not _import_runs(instance, IN_FLIGHT)
                and instance.get_run_by_id(left.run_id).is_finished
            )

        _wait(
            "imported",
            done,
            SETTLE_DEADLINE,
            daemon,
            lambda: f"{_catalogued_files(database_url)} files, runs {_statuses(instance)}",
        )
        runs = {r.run_id: r for r in _import_runs(instance)}
        failed = instance.get_run_by_id(left.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        assert failed.tags.get("dagster/failure_reason") == "START_TIMEOUT"
        assert _never_started_and_retried(failed, runs)
        others = [r for r in runs.values() if r.run_id != left.run_id]
        assert {r.status for r in others} == {dg.DagsterRunStatus.SUCCESS}
    except BaseException:
        daemons.print_logs()
        raise
    finally:
        instance.dispose()


def _statuses(instance: dg.DagsterInstance) -> dict[str, str]:
    return {r.run_id[:8]: r.status.value for r in _import_runs(instance)}
