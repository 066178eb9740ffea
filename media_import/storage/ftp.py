"""FTP and FTPS (explicit, `AUTH TLS`) remote directories with the standard library's ftplib.

Transfers are binary and passive. Listings use MLSD (RFC 3659) and fall back to NLST with SIZE
and MDTM per name on servers without it. FTP reply codes are coarse (550 covers both "no such
file" and "permission denied"), so a 550 is told apart by looking whether the path exists.
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
import re
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from media_import.storage.errors import (
    RemoteAuthFailed,
    RemoteCertificateError,
    RemoteConnectionLost,
    RemoteDiskFull,
    RemoteError,
    RemoteFileNotFound,
    RemoteOperationFailed,
    RemotePermissionDenied,
    RemoteUnreachable,
    TransientRemoteError,
)
from media_import.storage.remote import RemoteConfig, RemoteDirectory, RemoteEntry

BLOCK_BYTES = 256 << 10
_NO_SPACE = re.compile(r"space|quota|storage", re.IGNORECASE)
_READ_OPERATIONS = frozenset({"list", "stat", "read"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FtpDirectory(RemoteDirectory):
    """A directory on an FTP or FTPS server (see `RemoteDirectory`)."""

    def __init__(self, config: RemoteConfig) -> None:
        if config.scheme not in ("ftp", "ftps"):
            raise ValueError(f"FtpDirectory needs an ftp or ftps config, not {config.scheme}")
        super().__init__(config)
        self._ftp: ftplib.FTP | None = None

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> str:
        ftp = self._new_client()
        try:
            ftp.connect(self.config.host, self.config.effective_port)
            self._login(ftp)
            directory = posixpath.join(ftp.pwd(), self.config.directory)
            ftp.cwd(directory)  # checks the directory exists; paths stay absolute anyway
        except BaseException as error:
            _close_quietly(ftp)
            raise self._connect_error(error) from None
        self._ftp = ftp
        return posixpath.normpath(directory)

    def _new_client(self) -> ftplib.FTP:
        timeout = self.config.timeout_seconds
        if self.config.scheme == "ftps":
            cafile = str(self.config.ca_file) if self.config.ca_file else None
            context = ssl.create_default_context(cafile=cafile)
            return ftplib.FTP_TLS(context=context, timeout=timeout)
        return ftplib.FTP(timeout=timeout)

    def _login(self, ftp: ftplib.FTP) -> None:
        password = self.config.password.get_secret_value() if self.config.password else ""
        try:
            ftp.login(self.config.username, password)
        except ftplib.error_perm as error:
            if _code(error) == "530":
                raise RemoteAuthFailed(
                    f"{self.url} refused the login of user {self.config.username!r}: check the "
                    "user name and its password"
                ) from None
            raise
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()  # encrypt the data connections too, not only the commands

    def _connect_error(self, error: BaseException) -> BaseException:
        config = self.config
        if isinstance(error, RemoteError):
            return error
        if isinstance(error, ssl.SSLCertVerificationError):
            return RemoteCertificateError(
                f"the TLS certificate of {config.url} is not trusted ({error.verify_message}): "
                "set ca_file to the certificate authority that signed it"
            )
        if isinstance(error, ftplib.error_perm) and _code(error) == "550":
            return RemoteFileNotFound(
                f"the directory {config.directory!r} does not exist on {config.url}"
            )
        if isinstance(error, ftplib.error_temp | OSError | EOFError):
            reason = _reason(error)
            if isinstance(error, TimeoutError):
                reason = f"no answer within {config.timeout_seconds:g} s"
            return RemoteUnreachable(
                f"cannot reach {config.host}:{config.effective_port} ({config.url}): {reason}; "
                "check the host and port, and that the server is running and reachable from here"
            )
        if isinstance(error, ftplib.Error):
            return RemoteOperationFailed(f"{config.url} refused the login: {_reason(error)}")
        return error

    def _disconnect(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            _close_quietly(ftp)

    @property
    def _client(self) -> ftplib.FTP:
        if self._ftp is None:
            raise RemoteConnectionLost(f"the connection to {self.url} is closed")
        return self._ftp

    # -- primitives --------------------------------------------------------------------------

    def _list(self, path: str) -> list[RemoteEntry]:
        try:
            listing = list(self._client.mlsd(path, facts=["type", "size", "modify"]))
        except ftplib.error_perm as error:
            if _code(error) not in ("500", "501", "502"):  # MLSD or its OPTS not implemented
                raise
            return [self._probe(posixpath.join(path, n)) for n in self._names(path)]
        return [_mlsd_entry(name, facts) for name, facts in listing if _listed(name, facts)]

    def _names(self, path: str) -> list[str]:
        names = [posixpath.basename(n.rstrip("/")) for n in self._client.nlst(path)]
        return [n for n in names if n not in ("", ".", "..")]

    def _stat(self, path: str) -> RemoteEntry:
        entry = self._probe(path)
        if not entry.is_dir or entry.mtime != _EPOCH:
            return entry
        # SIZE and MDTM are for files: a directory's time is in its parent's listing.
        parent = posixpath.dirname(path)
        found = [e for e in self._list(parent) if e.name == entry.name] if parent != path else []
        return found[0] if found else entry

    def _probe(self, path: str) -> RemoteEntry:
        """An entry from SIZE and MDTM (a directory has no size, and maybe no time)."""
        self._binary()
        name = posixpath.basename(path)
        try:
            size = self._client.size(path) or 0
        except ftplib.error_perm:
            if not self._is_dir(path):
                raise
            return RemoteEntry(name=name, size=0, mtime=self._mtime(path) or _EPOCH, is_dir=True)
        return RemoteEntry(name=name, size=size, mtime=self._mtime(path) or _EPOCH, is_dir=False)

    def _binary(self) -> None:
        """SIZE counts bytes only in binary mode, and listings switch to ASCII mode."""
        self._client.voidcmd("TYPE I")

    def _mtime(self, path: str) -> datetime | None:
        try:
            reply = self._client.sendcmd(f"MDTM {path}")
        except ftplib.error_perm:
            return None
        return _timestamp(reply.split()[-1])

    def _is_dir(self, path: str) -> bool:
        try:
            self._client.cwd(path)
        except ftplib.error_perm:
            return False
        return True

    def _read(self, path: str, write: Callable[[bytes], None]) -> None:
        with self._transfer():
            self._client.retrbinary(f"RETR {path}", write, BLOCK_BYTES)

    def _store(self, path: str, chunks: Iterator[bytes]) -> None:
        with self._transfer():
            self._client.storbinary(f"STOR {path}", _ChunkReader(chunks), BLOCK_BYTES)

    def _replace(self, source: str, target: str) -> None:
        try:
            self._client.rename(source, target)
        except ftplib.error_perm:
            # Servers whose rename refuses an existing target: remove it, then rename. Readers
            # may see no file in between, but never a partial one.
            if not self._is_file(target):
                raise
            self._client.delete(target)
            self._client.rename(source, target)

    def _is_file(self, path: str) -> bool:
        self._binary()
        try:
            self._client.size(path)
        except ftplib.error_perm:
            return False
        return True

    def _remove(self, path: str) -> None:
        self._client.delete(path)

    def _mkdir(self, path: str) -> None:
        try:
            self._client.mkd(path)
        except ftplib.error_perm:
            if not self._is_dir(path):
                raise

    @contextlib.contextmanager
    def _transfer(self) -> Iterator[None]:
        """A data transfer cut short leaves the server's reply to it unread: read it, so that
        the next command gets its own reply; a reply saying why the server cut it wins."""
        try:
            yield
        except ftplib.Error:
            raise
        except (OSError, EOFError) as error:
            reply = self._pending_reply()
            if isinstance(reply, ftplib.Error):
                raise reply from error
            raise
        except BaseException:
            self._pending_reply()
            raise

    def _pending_reply(self) -> BaseException | None:
        try:
            self._client.voidresp()
        except ftplib.Error as reply:
            return reply
        except (OSError, EOFError, RemoteError):
            self._disconnect()  # no reply: the connection's state is unknown
        return None

    @contextlib.contextmanager
    def _translate(self, operation: str, path: str) -> Iterator[None]:
        try:
            yield
        except RemoteError:
            raise
        except ftplib.error_perm as error:
            raise self._refused(operation, path, error) from None
        except ftplib.error_temp as error:
            raise self._temporary(operation, path, error) from None
        except ftplib.Error as error:
            raise RemoteOperationFailed(
                f"{self.url} refused {operation} {path}: {_reason(error)}"
            ) from None
        except (OSError, EOFError) as error:
            reason = _reason(error)
            raise RemoteConnectionLost(
                f"the connection to {self.url} was lost during {operation} {path}: {reason}"
            ) from None

    def _refused(self, operation: str, path: str, error: ftplib.Error) -> RemoteError:
        code, reason, url = _code(error), _reason(error), self.url
        if code in ("452", "552") or _NO_SPACE.search(reason):
            return RemoteDiskFull(
                f"{url} has no space left for {path} ({reason}): free space or raise the quota "
                "on the server"
            )
        if code == "530":
            return RemoteAuthFailed(f"{url} no longer accepts user {self.config.username!r}")
        if code in ("550", "553") and self._missing(operation, path):
            return RemoteFileNotFound(f"{path} does not exist on {url} (removed or renamed?)")
        if code in ("550", "553"):
            return RemotePermissionDenied(
                f"{url} denied {operation} {path} ({reason}): check that user "
                f"{self.config.username!r} may {operation} there"
            )
        return RemoteOperationFailed(f"{url} refused {operation} {path}: {reason}")

    def _missing(self, operation: str, path: str) -> bool:
        """Whether a 550 means "not there": the file for reads, its directory for writes."""
        if self._ftp is None or self._base is None:
            return False
        target = posixpath.join(self._base, path)
        if operation not in _READ_OPERATIONS:
            target = posixpath.dirname(target)
        try:
            return not (self._is_file(target) or self._is_dir(target))
        except (ftplib.Error, OSError, EOFError):
            return False

    def _temporary(self, operation: str, path: str, error: ftplib.Error) -> RemoteError:
        reason = _reason(error)
        if _code(error) == "452" or _NO_SPACE.search(reason):
            return RemoteDiskFull(
                f"{self.url} has no space left for {path} ({reason}): free space or raise the "
                "quota on the server"
            )
        return TransientRemoteError(
            f"{self.url} could not {operation} {path} for now ({reason}); retry later"
        )


class _ChunkReader:
    """A file-like `read()` over an iterator of chunks, for ftplib's storbinary."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")


def _listed(name: str, facts: dict[str, str]) -> bool:
    return name not in (".", "..") and facts.get("type", "").lower() not in ("cdir", "pdir")


def _mlsd_entry(name: str, facts: dict[str, str]) -> RemoteEntry:
    is_dir = facts.get("type", "").lower() == "dir"
    size = int(facts.get("size") or 0)
    mtime = _timestamp(facts["modify"]) if "modify" in facts else _EPOCH
    return RemoteEntry(name=name, size=size, mtime=mtime, is_dir=is_dir)


def _timestamp(value: str) -> datetime:
    """An RFC 3659 time-val (`YYYYMMDDHHMMSS[.sss]`, UTC)."""
    whole, _, fraction = value.partition(".")
    stamp = datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return stamp.replace(microsecond=int((fraction + "000000")[:6])) if fraction else stamp


def _code(error: BaseException) -> str:
    return str(error)[:3]


def _reason(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


def _close_quietly(ftp: ftplib.FTP) -> None:
    with contextlib.suppress(Exception):
        ftp.close()
