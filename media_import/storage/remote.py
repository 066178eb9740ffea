"""A remote directory reached by URL (`sftp://`, `ftp://`, `ftps://`), behind one small interface.

`open_remote(config)` connects (retrying transient failures with backoff) and returns a
`RemoteDirectory`: list, stat, bounded reads, streamed downloads with a sha256, atomic uploads,
makedirs. Paths are relative to the configured directory and may not leave it. A session holds
one connection, is used from one thread at a time, and reconnects on the next call after its
connection was lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from media_import.storage.errors import (
    RemoteError,
    RemoteFileTooLarge,
    TransientRemoteError,
    is_transient,
)

_logger = logging.getLogger(__name__)

Scheme = Literal["sftp", "ftp", "ftps"]
DEFAULT_PORTS: dict[str, int] = {"sftp": 22, "ftp": 21, "ftps": 21}
CHUNK_BYTES = 1 << 20
TEMP_SUFFIX = ".part"
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0

Source = bytes | Path | IO[bytes]
Sink = Path | IO[bytes]


class RemoteConfig(BaseModel):
    """Where a remote directory is and how to log in; secrets are `SecretStr` (never printed).

    SFTP needs a pinned host key: `host_key` (key lines or SHA256 fingerprints, one a line) or
    `known_hosts` (a file); `insecure_accept_any_host_key` is for throwaway demo servers only.
    """

    # Inputs stay out of validation errors: a plain-text password may be among them.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    scheme: Scheme
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    private_key_passphrase: SecretStr | None = None
    directory: str = ""
    host_key: str | None = None
    known_hosts: Path | None = None
    insecure_accept_any_host_key: bool = False
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    connect_attempts: int = Field(default=4, ge=1)

    @classmethod
    def from_url(cls, url: str, **fields: object) -> Self:
        """`scheme://user@host:port/dir` plus the other fields (password, host_key, ...).

        The URL's path is the directory as the server names it; without one, the login
        directory. A password in the URL is refused: pass it as `password`.
        """
        if _has_password(url):
            raise ValueError("the URL contains a password: remove it and pass it as password")
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(f"URL scheme must be sftp, ftp or ftps, not {parts.scheme!r}")
        try:
            port = parts.port
        except ValueError as error:
            raise ValueError(f"the URL's port is not valid: {error}") from None
        values: dict[str, object] = {
            "scheme": parts.scheme,
            "host": parts.hostname or "",
            "port": port,
            "directory": unquote(parts.path),
        }
        if parts.username:
            values["username"] = unquote(parts.username)
        return cls.model_validate({**values, **fields})

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.scheme]

    @property
    def url(self) -> str:
        """The URL without any secret, for messages and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"{self.scheme}://{quote(self.username)}@{host}:{self.effective_port}{self.directory}"
        )

    @field_validator("host_key")
    @classmethod
    def _host_key_parses(cls, value: str | None) -> str | None:
        if value is not None:
            # Imported here: asyncssh takes a while to import, and FTP does not need it.
            from media_import.storage.host_keys import parse_pins

            parse_pins(value)
        return value

    @model_validator(mode="after")
    def _fits_scheme(self) -> Self:
        has_key = self.private_key is not None or self.private_key_file is not None
        if self.private_key is not None and self.private_key_file is not None:
            raise ValueError("give private_key or private_key_file, not both")
        if self.scheme == "sftp":
            _check_sftp(self, has_key)
        else:
            _check_ftp(self, has_key)
        return self


def _has_password(url: str) -> bool:
    """`user:password@` before the host. Checked on the raw text: a password with `#`, `?` or
    `/` in it would otherwise be cut into a host, port or path and end up in a message."""
    _, separator, rest = url.partition("://")
    userinfo, at, _ = rest.partition("@")
    return bool(separator and at and ":" in userinfo)


def _check_sftp(config: RemoteConfig, has_key: bool) -> None:
    if config.password is None and not has_key:
        raise ValueError("sftp needs a password or a private key")
    if config.host_key is not None and config.known_hosts is not None:
        raise ValueError("give host_key or known_hosts, not both")
    pinned = config.host_key is not None or config.known_hosts is not None
    if pinned and config.insecure_accept_any_host_key:
        raise ValueError("a pinned host key and insecure_accept_any_host_key contradict")
    if config.ca_file is not None:
        raise ValueError("ca_file is for ftps; sftp pins the host key instead")


def _check_ftp(config: RemoteConfig, has_key: bool) -> None:
    if config.password is None:
        raise ValueError(f"{config.scheme} needs a password")
    if has_key or config.private_key_passphrase is not None:
        raise ValueError(f"{config.scheme} has no key login: use sftp, or a password")
    if config.host_key or config.known_hosts or config.insecure_accept_any_host_key:
        raise ValueError(f"host keys are for sftp; {config.scheme} does not use them")
    if config.ca_file is not None and config.scheme != "ftps":
        raise ValueError("ca_file is for ftps (plain ftp has no TLS)")


@dataclass(frozen=True)
class RemoteEntry:
    """One name in a remote directory; `mtime` is timezone-aware (UTC)."""

    name: str
    size: int
    mtime: datetime
    is_dir: bool


@dataclass(frozen=True)
class Transfer:
    """A completed download or upload: the path, its bytes and their sha256 (hex)."""

    path: str
    size: int
    sha256: str


class RemoteDirectory(ABC):
    """A directory on a remote server; subclasses implement the protocol primitives."""

    def __init__(self, config: RemoteConfig) -> None:
        self.config = config
        self._base: str | None = None

    # -- public API --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.config.url

    def list(self, subdir: str = "") -> list[RemoteEntry]:
        """Files and directories in `subdir` (sorted by name), with sizes and mtimes."""
        path = self._abs(subdir, allow_base=True)
        with self._guard("list", subdir or "."):
            return sorted(self._list(path), key=lambda e: e.name)

    def stat(self, path: str) -> RemoteEntry:
        """The entry of one file or directory."""
        with self._guard("stat", path):
            return self._stat(self._abs(path))

    def read_bytes(self, path: str, max_bytes: int) -> bytes:
        """The whole file, refused with `RemoteFileTooLarge` if it has more than `max_bytes`."""
        entry = self.stat(path)
        if entry.size > max_bytes:
            raise _too_large(self.url, path, entry.size, max_bytes)
        chunks: list[bytes] = []
        received = 0

        def keep(chunk: bytes) -> None:
            nonlocal received
            received += len(chunk)
            if received > max_bytes:  # the file grew since stat
                raise _too_large(self.url, path, received, max_bytes)
            chunks.append(chunk)

        with self._guard("read", path):
            self._read(self._abs(path), keep)
        return b"".join(chunks)

    def download(self, path: str, sink: Sink) -> Transfer:
        """Stream the file to `sink` (a local path, written atomically, or a binary file),
        computing its sha256 on the way."""
        if isinstance(sink, Path):
            return _to_local_file(sink, lambda out: self.download(path, out))
        digest = hashlib.sha256()
        size = 0

        def write(chunk: bytes) -> None:
            nonlocal size
            digest.update(chunk)
            size += len(chunk)
            with _local():
                sink.write(chunk)

        with _unwrap_local(), self._guard("read", path):
            self._read(self._abs(path), write)
        return Transfer(path, size, digest.hexdigest())

    def upload(self, path: str, source: Source) -> Transfer:
        """Write `source` to `path` atomically for readers: under a temporary name in the
        same directory (`.<name>.<random>.part`), renamed over `path` once complete."""
        final = self._abs(path)
        temp = posixpath.join(posixpath.dirname(final), temporary_name(posixpath.basename(final)))
        digest = hashlib.sha256()
        size = 0

        def chunks() -> Iterator[bytes]:
            nonlocal size
            with _local():
                for chunk in _chunks(source):
                    digest.update(chunk)
                    size += len(chunk)
                    yield chunk

        try:
            with _unwrap_local(), self._guard("write", path):
                self._store(temp, chunks())
            with self._guard("rename", path):
                self._replace(temp, final)
        except BaseException as error:
            self._discard(temp, error)
            raise
        return Transfer(path, size, digest.hexdigest())

    def makedirs(self, path: str) -> None:
        """Create `path` and its missing parents; existing directories are fine."""
        current = self._base_dir()
        for part in _parts(path):
            current = posixpath.join(current, part)
            with self._guard("create directory", path):
                self._mkdir(current)

    def close(self) -> None:
        self._disconnect()
        self._base = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> Self:
        """Connect and resolve the directory; transient failures are retried with backoff."""
        attempts = self.config.connect_attempts
        for attempt in range(1, attempts + 1):
            try:
                self._base = self._connect()
                return self
            except TransientRemoteError as error:
                if attempt == attempts:
                    raise
                delay = backoff(attempt)
                _logger.info("%s; retrying in %.1f s (%d/%d)", error, delay, attempt, attempts)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _base_dir(self) -> str:
        if self._base is None:
            self.connect()
        assert self._base is not None
        return self._base

    @contextlib.contextmanager
    def _guard(self, operation: str, path: str) -> Iterator[None]:
        """Connects if needed, translates the library's errors, and drops a broken connection
        so that the next call reconnects."""
        self._base_dir()
        try:
            with self._translate(operation, path):
                yield
        except TransientRemoteError:
            self.close()
            raise

    def _discard(self, temp: str, error: BaseException) -> None:
        """Remove a failed upload's temporary file when the connection still works."""
        if is_transient(error) or self._base is None:
            return
        try:
            with self._guard("remove", temp):
                self._remove(temp)
        except RemoteError as cleanup:
            _logger.warning("could not remove the temporary file %s: %s", temp, cleanup)

    def _abs(self, path: str, allow_base: bool = False) -> str:
        parts = _parts(path)
        if not parts and not allow_base:
            raise ValueError("a file path is needed, not the directory itself")
        return posixpath.join(self._base_dir(), *parts)

    # -- protocol primitives (absolute paths) ------------------------------------------------

    @abstractmethod
    def _connect(self) -> str:
        """Open the connection and return the absolute path of the configured directory."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Close the connection if open; never raises."""

    @abstractmethod
    def _translate(self, operation: str, path: str) -> contextlib.AbstractContextManager[None]:
        """Turn the library's exceptions into `RemoteError`s naming `path`."""

    @abstractmethod
    def _list(self, path: str) -> list[RemoteEntry]: ...

    @abstractmethod
    def _stat(self, path: str) -> RemoteEntry: ...

    @abstractmethod
    def _read(self, path: str, write: Callable[[bytes], None]) -> None:
        """Stream the file's bytes to `write`; an exception from `write` aborts the read."""

    @abstractmethod
    def _store(self, path: str, chunks: Iterator[bytes]) -> None:
        """Create or truncate `path` and write the chunks to it."""

    @abstractmethod
    def _replace(self, source: str, target: str) -> None:
        """Rename `source` to `target`, replacing `target` if it exists."""

    @abstractmethod
    def _remove(self, path: str) -> None: ...

    @abstractmethod
    def _mkdir(self, path: str) -> None:
        """Create the directory unless it exists."""


def open_remote(config: RemoteConfig) -> RemoteDirectory:
    """A connected session for the config's scheme (close it, or use it as a context manager)."""
    if config.scheme == "sftp":
        from media_import.storage.sftp import SftpDirectory

        return SftpDirectory(config).connect()
    from media_import.storage.ftp import FtpDirectory

    return FtpDirectory(config).connect()


def temporary_name(name: str) -> str:
    """The name an upload of `name` is written under before its rename."""
    return f".{name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"


def is_temporary_name(name: str) -> bool:
    """True for names `temporary_name` makes: listers can skip uploads in progress."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def backoff(attempt: int) -> float:
    """Seconds before retry `attempt` (1, 2, ...): doubling from 0.5 s, capped, with jitter."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)


def _parts(path: str) -> list[str]:
    """The path's components; refuses absolute paths and `..`, which would leave the directory."""
    if path.startswith("/") or "\\" in path:
        raise ValueError(f"remote paths are relative to the configured directory: {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"remote paths may not contain '..': {path!r}")
    return parts


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            yield bytes(view[start : start + CHUNK_BYTES])
        return
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield from _chunks(stream)
        return
    while chunk := source.read(CHUNK_BYTES):
        yield chunk


def _to_local_file(target: Path, fill: Callable[[IO[bytes]], Transfer]) -> Transfer:
    """Fill a temporary file beside `target`, then rename it over `target`."""
    temp = target.with_name(temporary_name(target.name))
    try:
        with temp.open("wb") as out:
            transfer = fill(out)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return transfer


class _LocalFailure(Exception):
    """An error of the local source or sink, carried through the protocol code so that it is
    not mistaken for a network error, and re-raised as it was."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def _local() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        raise _LocalFailure(error) from error


@contextlib.contextmanager
def _unwrap_local() -> Iterator[None]:
    try:
        yield
    except _LocalFailure as failure:
        raise failure.error from None


def _too_large(url: str, path: str, size: int, limit: int) -> RemoteFileTooLarge:
    return RemoteFileTooLarge(
        f"{path} on {url} has {size} bytes or more, over the {limit} allowed for this read"
    )
