"""SFTP remote directories with asyncssh, behind a synchronous facade.

asyncssh is both the client here and the loopback server of the dev stack, so one maintained
library covers the two. Each session runs its connection on an event loop in a thread of its
own (`LoopThread`); calls block the caller until the loop answers. Nothing of the user's SSH
set-up is used implicitly (no ~/.ssh keys, config, known_hosts or agent): a session uses only
what its `RemoteConfig` says.
"""

from __future__ import annotations

import contextlib
import logging
import re
import stat
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncssh

from media_import.storage.errors import (
    HostKeyMismatch,
    HostKeyNotPinned,
    HostKeyUnknown,
    RemoteAuthFailed,
    RemoteConnectionLost,
    RemoteDiskFull,
    RemoteError,
    RemoteFileNotFound,
    RemoteOperationFailed,
    RemotePermissionDenied,
    RemoteUnreachable,
)
from media_import.storage.host_keys import HostKeyCheck, describe_key, parse_pins
from media_import.storage.loop_thread import LoopThread
from media_import.storage.remote import RemoteConfig, RemoteDirectory, RemoteEntry

_logger = logging.getLogger(__name__)

T = TypeVar("T")

# asyncssh splits each read or write into parallel requests, so large chunks keep a
# high-latency link busy.
READ_CHUNK_BYTES = 4 << 20
KEEPALIVE_INTERVAL_S = 15.0
CLOSE_TIMEOUT_S = 2.0
_NO_SPACE = re.compile(r"space|quota", re.IGNORECASE)


class SftpDirectory(RemoteDirectory):
    """A directory on an SFTP server (see `RemoteDirectory`)."""

    def __init__(self, config: RemoteConfig) -> None:
        if config.scheme != "sftp":
            raise ValueError(f"SftpDirectory needs an sftp config, not {config.scheme}")
        super().__init__(config)
        self._loop: LoopThread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> str:
        check = _host_key_check(self.config)
        client_key = _client_key(self.config)
        self._loop = self._loop or LoopThread(f"sftp {self.config.host}")
        try:
            self._conn = self._loop.run(self._open(check, client_key))
            self._sftp = self._run(self._conn.start_sftp_client())
            with self._translate("open directory", self.config.directory or "."):
                base = self._run(self._sftp.realpath(self.config.directory or "."))
                if not self._run(self._sftp.isdir(base)):
                    raise RemoteFileNotFound(
                        f"the directory {self.config.directory!r} does not exist on {self.url}"
                    )
                return base
        except BaseException as error:
            self._disconnect()
            raise _connect_error(self.config, check, error) from None

    async def _open(
        self, check: HostKeyCheck | None, client_key: asyncssh.SSHKey | None
    ) -> asyncssh.SSHClientConnection:
        config = self.config
        conn, _ = await asyncssh.create_connection(
            lambda: _PinnedClient(check),
            config.host,
            config.effective_port,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            client_keys=[client_key] if client_key else None,
            known_hosts=check.trusted if check else None,
            agent_path=None,
            config=None,
            x509_trusted_certs=None,
            gss_host=None,
            connect_timeout=config.timeout_seconds,
            login_timeout=config.timeout_seconds,
            keepalive_interval=KEEPALIVE_INTERVAL_S,
        )
        if check is None:
            _warn_insecure(config, conn.get_server_host_key())
        return conn

    def _disconnect(self) -> None:
        conn, loop = self._conn, self._loop
        self._conn = self._sftp = None
        self._loop = None
        if loop is None:
            return
        if conn is not None:
            with contextlib.suppress(Exception):
                loop.run(_close(conn), timeout=CLOSE_TIMEOUT_S)
        loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RemoteConnectionLost(f"the connection to {self.url} is closed")
        return self._loop.run(coro, self.config.timeout_seconds)

    @property
    def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            raise RemoteConnectionLost(f"the connection to {self.url} is closed")
        return self._sftp

    # -- primitives --------------------------------------------------------------------------

    def _list(self, path: str) -> list[RemoteEntry]:
        names = self._run(self._client.readdir(path))
        return [_entry(n.filename, n.attrs) for n in names if n.filename not in (".", "..")]

    def _stat(self, path: str) -> RemoteEntry:
        return _entry(path.rsplit("/", 1)[-1], self._run(self._client.stat(path)))

    def _read(self, path: str, write: Callable[[bytes], None]) -> None:
        with self._opened(path, "rb") as remote:
            while chunk := self._run(remote.read(READ_CHUNK_BYTES)):
                write(chunk)

    def _store(self, path: str, chunks: Iterator[bytes]) -> None:
        with self._opened(path, "wb") as remote:
            for chunk in chunks:
                self._run(remote.write(chunk))

    def _replace(self, source: str, target: str) -> None:
        try:
            self._run(self._client.posix_rename(source, target))
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        # SFTPv3's rename refuses an existing target: remove it, then rename. Readers may see
        # no file in between, but never a partial one.
        try:
            self._run(self._client.rename(source, target))
        except asyncssh.SFTPError as error:
            lost = isinstance(error, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection)
            if lost or not self._run(self._client.isfile(target)):
                raise
            self._run(self._client.remove(target))
            self._run(self._client.rename(source, target))

    def _remove(self, path: str) -> None:
        self._run(self._client.remove(path))

    def _mkdir(self, path: str) -> None:
        try:
            self._run(self._client.mkdir(path))
        except asyncssh.SFTPError as error:
            lost = isinstance(error, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection)
            if lost or not self._run(self._client.isdir(path)):
                raise

    @contextlib.contextmanager
    def _opened(self, path: str, mode: str) -> Iterator[asyncssh.SFTPClientFile]:
        remote = self._run(self._client.open(path, mode))
        try:
            yield remote
        finally:
            if self._sftp is not None:
                with contextlib.suppress(Exception):
                    self._run(remote.close())

    @contextlib.contextmanager
    def _translate(self, operation: str, path: str) -> Iterator[None]:
        try:
            yield
        except RemoteError:
            raise
        except asyncssh.SFTPError as error:
            raise _sftp_error(self.url, self.config.username, operation, path, error) from None
        except (OSError, asyncssh.Error) as error:
            raise RemoteConnectionLost(_lost_message(self.url, operation, path, error)) from None


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    """Say goodbye to the server; a broken connection just times out."""
    conn.close()
    await conn.wait_closed()


class _PinnedClient(asyncssh.SSHClient):
    """Records the key the server presented, and accepts it if it matches a pinned fingerprint
    (asyncssh itself accepts the pinned public keys)."""

    def __init__(self, check: HostKeyCheck | None) -> None:
        self._check = check

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._check is not None and self._check.accepts(key)


def _host_key_check(config: RemoteConfig) -> HostKeyCheck | None:
    """How to check the server's key; None only when insecurity was asked for explicitly."""
    if config.insecure_accept_any_host_key:
        return None
    if config.host_key is not None:
        return HostKeyCheck(pins=parse_pins(config.host_key))
    if config.known_hosts is not None:
        if not config.known_hosts.is_file():
            raise HostKeyNotPinned(
                f"the known_hosts file {config.known_hosts} for {config.url} does not exist"
            )
        return HostKeyCheck(known_hosts=config.known_hosts)
    raise HostKeyNotPinned(
        f"no host key pinned for {config.url}: set host_key to the server's public key line "
        f"(ssh-keyscan -p {config.effective_port} {config.host}) or its SHA256 fingerprint "
        "(ssh-keygen -lf on the server's key), checked out of band, or known_hosts to a file "
        "that lists the host"
    )


def _client_key(config: RemoteConfig) -> asyncssh.SSHKey | None:
    passphrase = (
        config.private_key_passphrase.get_secret_value() if config.private_key_passphrase else None
    )
    try:
        if config.private_key is not None:
            return asyncssh.import_private_key(config.private_key.get_secret_value(), passphrase)
        if config.private_key_file is not None:
            return asyncssh.read_private_key(config.private_key_file, passphrase)
    except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
        where = config.private_key_file or "private_key"
        raise RemoteAuthFailed(
            f"the private key for {config.url} ({where}) cannot be loaded: check that it is an "
            "OpenSSH or PEM private key and its passphrase"
        ) from None
    return None


def _connect_error(
    config: RemoteConfig, check: HostKeyCheck | None, error: BaseException
) -> BaseException:
    """The `RemoteError` for a failed connect; other exceptions (interrupts) unchanged."""
    if isinstance(error, RemoteError):
        return error
    if isinstance(error, asyncssh.HostKeyNotVerifiable):
        return _host_key_error(config, check)
    if isinstance(error, asyncssh.KeyExchangeFailed):
        return _key_exchange_error(config, check, error)
    if isinstance(error, asyncssh.PermissionDenied):
        return _auth_error(config)
    if isinstance(error, OSError | asyncssh.Error):
        return RemoteUnreachable(_unreachable_message(config, error))
    return error


def _host_key_error(config: RemoteConfig, check: HostKeyCheck | None) -> RemoteError:
    presented = describe_key(check.presented) if check and check.presented else "an unknown key"
    if check is not None and check.host_unknown:
        return HostKeyUnknown(
            f"{config.host}:{config.effective_port} is not in the known_hosts file "
            f"{check.known_hosts}; the server presented {presented}: add its key line once "
            "you have checked it out of band"
        )
    expected = check.expected.describe() if check else "no key"
    if check is not None and check.pins is not None:
        expected = check.pins.describe()
    return HostKeyMismatch(
        f"the host key of {config.url} is not the pinned one: expected {expected}, presented "
        f"{presented}. If the server's key was changed on purpose, pin the new one; otherwise "
        "do not connect (the connection may be intercepted)"
    )


def _key_exchange_error(
    config: RemoteConfig, check: HostKeyCheck | None, error: Exception
) -> RemoteError:
    """No host key algorithm in common: the server has no key of the pinned key types."""
    if check is not None and "host key" in str(error).lower():
        return HostKeyMismatch(
            f"the server at {config.url} offers no host key of the pinned type "
            f"(expected {check.expected.describe()}); if its key was changed on purpose, pin "
            "the new one"
        )
    return RemoteUnreachable(_unreachable_message(config, error))


def _auth_error(config: RemoteConfig) -> RemoteAuthFailed:
    methods = []
    if config.password is not None:
        methods.append("password")
    if config.private_key is not None or config.private_key_file is not None:
        methods.append("private key")
    return RemoteAuthFailed(
        f"{config.url} refused the login of user {config.username!r}: check the user name and "
        f"its {' and '.join(methods)}"
    )


def _unreachable_message(config: RemoteConfig, error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    if isinstance(error, TimeoutError):
        reason = f"no answer within {config.timeout_seconds:g} s"
    return (
        f"cannot reach {config.host}:{config.effective_port} ({config.url}): {reason}; check the "
        "host and port, and that the server is running and reachable from here"
    )


def _lost_message(url: str, operation: str, path: str, error: BaseException) -> str:
    reason = str(error) or type(error).__name__
    if isinstance(error, TimeoutError):
        reason = "no answer in time"
    return f"the connection to {url} was lost during {operation} {path}: {reason}"


def _sftp_error(
    url: str, user: str, operation: str, path: str, error: asyncssh.SFTPError
) -> RemoteError:
    reason = error.reason or type(error).__name__
    if isinstance(error, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return RemoteFileNotFound(f"{path} does not exist on {url} (removed or renamed?)")
    if isinstance(error, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
        return RemotePermissionDenied(
            f"{url} denied {operation} {path} ({reason}): check that user {user!r} may "
            f"{operation} there"
        )
    no_space = isinstance(error, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded)
    if no_space or (isinstance(error, asyncssh.SFTPFailure) and _NO_SPACE.search(reason)):
        return RemoteDiskFull(
            f"{url} has no space left for {path} ({reason}): free space or raise the quota "
            "on the server"
        )
    if isinstance(error, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return RemoteConnectionLost(_lost_message(url, operation, path, error))
    hint = ""
    if operation == "write" and isinstance(error, asyncssh.SFTPFailure):
        # OpenSSH's server answers a full disk or quota with a bare "Failure".
        hint = f"; check the free space and quota on the server, and that {user!r} may write there"
    return RemoteOperationFailed(f"{url} refused {operation} {path}: {reason}{hint}")


def _entry(name: str, attrs: asyncssh.SFTPAttrs) -> RemoteEntry:
    if attrs.permissions is not None:
        is_dir = stat.S_ISDIR(attrs.permissions)
    else:
        is_dir = attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY
    mtime = datetime.fromtimestamp(attrs.mtime or 0, UTC)
    return RemoteEntry(name=name, size=attrs.size or 0, mtime=mtime, is_dir=is_dir)


def _warn_insecure(config: RemoteConfig, key: asyncssh.SSHKey | None) -> None:
    presented = describe_key(key) if key else "no key"
    _logger.warning(
        "INSECURE: accepted the host key of %s without checking it (presented %s), as "
        "insecure_accept_any_host_key asks; this is for throwaway demo servers only: pin the "
        "key with host_key instead",
        config.url,
        presented,
    )
