"""A local S3-compatible server: moto's server mode as a child process, speaking real HTTP.

moto keeps everything in memory (it has no persistence), accepts any access key and secret
(signatures are not verified unless configured to), and serves S3 and SQS on one port.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3
import psutil
from botocore.config import Config

from media_import.devstack.postgres import find_free_port

START_TIMEOUT_S = 30.0
DEFAULT_REGION = "us-east-1"


class LocalS3Server:
    """moto's server mode as a child process (`python -m moto.server`) on 127.0.0.1:<port>,
    speaking real HTTP (S3 and SQS). Keeps state in memory only (that is moto)."""

    def __init__(self, port: int | None = None) -> None:
        self._requested_port = port
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalS3Server has no port yet: call start() first")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalS3Server:
        """Start the server (idempotent) and wait until it answers HTTP."""
        if self._process is not None and self._process.poll() is None:
            return self
        # A free port can be taken by another process before moto binds it: retry on a new one.
        attempts = 1 if self._requested_port else 3
        for attempt in range(1, attempts + 1):
            try:
                self._launch(self._requested_port or find_free_port())
                self._wait_until_ready()
                return self
            except _PortTaken:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, port: int) -> None:
        self._port = port
        # Request logs go to a file: a PIPE nobody reads would fill up and stall the server.
        self._log = tempfile.NamedTemporaryFile(prefix="moto-server-", suffix=".log")  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_server_env(),
        )
        # A script that dies with an exception would otherwise leave moto running, orphaned.
        atexit.register(self.stop)

    def stop(self) -> None:
        """Terminate the server (its state is lost: moto is in-memory); idempotent."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalS3Server(port={self._port})"

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                tail = self._log_tail()
                error = _PortTaken if "already in use" in tail else RuntimeError
                raise error(
                    f"moto server exited with code {self._process.returncode} on port "
                    f"{self._port}:\n{tail}"
                )
            # Check the listener is our child: another server may hold the port we picked.
            if self._child_listens() and _answers_http(self.endpoint_url):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"moto server did not answer on port {self._port} in time")

    def _child_listens(self) -> bool:
        assert self._process is not None
        try:
            connections = psutil.Process(self._process.pid).net_connections("tcp")
        except psutil.Error:
            return False
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self._port
            for c in connections
        )

    def _log_tail(self, lines: int = 30) -> str:
        if self._log is None:
            return ""
        text = Path(self._log.name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class _PortTaken(RuntimeError):
    """moto could not bind its port (another process took it after we picked it)."""


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    # Credentials or endpoint settings from the parent environment must not leak into moto.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MOTO_PORT"):
        env.pop(name, None)
    return env


def _answers_http(endpoint_url: str) -> bool:
    """Any HTTP response (even an error status) means moto is serving requests."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def s3_client(
    endpoint_url: str,
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
    max_pool_connections: int = 32,
) -> Any:
    """A boto3 S3 client for the given endpoint (path-style addressing: no wildcard DNS needed).

    Clients are thread-safe; creating them is not, and a new Session costs ~200 ms (it loads
    the service models), so all clients come from one shared Session under a lock (~5 ms each).
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                max_pool_connections=max_pool_connections,
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )


def make_bucket(
    endpoint_url: str,
    bucket: str,
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
) -> None:
    """Create `bucket` unless it exists already (and is ours)."""
    client = s3_client(endpoint_url, region, access_key, secret_key)
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # S3 rejects an explicit us-east-1 LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(**kwargs)


def put_objects(
    endpoint_url: str,
    bucket: str,
    objects: Iterable[tuple[str, bytes]],
    region: str = DEFAULT_REGION,
    access_key: str = "test",
    secret_key: str = "test",
    workers: int = 4,
) -> int:
    """Upload (key, body) pairs concurrently (a thread pool sharing one client); returns count.

    moto serves requests under one lock and the GIL (~7 ms per PUT, ~150 PUTs/s), so a few
    workers overlap client-side work with the server; more workers only add contention.
    """
    # One client shared by the worker threads: boto3 clients are thread-safe, and its
    # connection pool is sized to the number of workers.
    client = s3_client(endpoint_url, region, access_key, secret_key, max_pool_connections=workers)

    def put(item: tuple[str, bytes]) -> None:
        key, body = item
        client.put_object(Bucket=bucket, Key=key, Body=body)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-put") as pool:
        # list() re-raises the first failed upload's exception here.
        return len(list(pool.map(put, objects)))
