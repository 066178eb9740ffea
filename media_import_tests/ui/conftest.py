"""A demo-like stack for the UI check: the sample archive imported by one single-run backfill
of all its folders into a PostgreSQL-backed instance (the project's dagster.yaml), served by
Dagster's webserver, and the system's Chromium driven by Playwright.

Chromium is Debian's package at /usr/bin/chromium (`./dev test` installs it where it can:
as root with apt-get); Playwright never downloads a browser. Without Chromium the check is
skipped with the reason, except in CI, where it fails: there the set-up must provide it.
Screenshots go to test-artifacts/ui/ (ignored by git), to be looked at after a run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from media_import.devstack import find_free_port
from media_import.samples.archive import build_sample_archive

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MEDIA_IMPORT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts" / "ui"
# As Debian's Chromium runs on a machine with no network but loopback, as root: no sandbox
# (root), no GPU (headless), and none of the background traffic it would try at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SAMPLE_FOLDERS = ["BRD", "CAS", "DAT", "DVD", "FILE", "VHS"]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (
        f"the UI check needs Chromium at {CHROMIUM} (Debian's chromium package; `./dev test` "
        "installs it when run as root where apt-get works; elsewhere install it, or set "
        "MEDIA_IMPORT_CHROMIUM to a Chromium binary)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ui_stack(
    pg_server: Any, s3_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The webserver's address, once the sample archive is imported; torn down after."""
    _require_chromium()
    from media_import_tests.conftest import fresh_database

    with (
        fresh_database(pg_server, "ui_catalog") as catalog_url,
        fresh_database(pg_server, "ui_dagster") as instance_url,
        pytest.MonkeyPatch.context() as env,
    ):
        bucket = _sample_bucket(s3_server)
        home = tmp_path_factory.mktemp("dagster_home")
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        for name, value in {
            "S3_ENDPOINT_URL": s3_server.endpoint_url,
            "BUCKET_NAME": bucket,
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
            "AWS_REGION": s3_server.region,
            "DATABASE_URL": catalog_url,
            "DAGSTER_HOME": str(home),
            "DAGSTER_POSTGRES_URL": instance_url,
        }.items():
            env.setenv(name, value)
        _backfill_in_one_run()
        with _webserver() as url:
            yield url


def _sample_bucket(s3_server: Any) -> str:
    from media_import.devstack import make_bucket, put_objects

    name = f"ui-{uuid.uuid4().hex[:12]}"
    keys = {"access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    make_bucket(s3_server.endpoint_url, name, region=s3_server.region, **keys)
    archive = ((o.key, o.body) for o in build_sample_archive())
    put_objects(s3_server.endpoint_url, name, archive, region=s3_server.region, **keys)
    return name


def _backfill_in_one_run() -> None:
    """What the UI's backfill of the six folders does with the assets' single-run policy."""
    from media_import.definitions import build_definitions
    from media_import.defs.importing.jobs import IMPORT_JOB_NAME
    from media_import.defs.importing.partitions import register_folders

    with dg.DagsterInstance.get() as instance:
        register_folders(instance, SAMPLE_FOLDERS)
        result = (
            build_definitions()
            .resolve_job_def(IMPORT_JOB_NAME)
            .execute_in_process(
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": SAMPLE_FOLDERS[0],
                    "dagster/asset_partition_range_end": SAMPLE_FOLDERS[-1],
                },
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
        )
        assert result.success


class _Server:
    def __init__(self) -> None:
        self.port = find_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = ARTIFACTS / "webserver.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                *("-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(self.port)),
            ],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the webserver exited: see its log"
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the webserver did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@contextmanager
def _webserver() -> Iterator[str]:
    server = _Server()
    try:
        server.wait()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    # As if the operator had already answered the UI's "Join the Dagster community" dialog
    # (it is kept in the browser's storage), which would otherwise cover every page.
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
