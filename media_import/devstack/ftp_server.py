"""A local FTP (or explicit FTPS) server: pyftpdlib on a loopback port, serving one directory.

It runs in a background thread of the calling process (with an IOLoop of its own), so tests
and the demo can switch its faults on and off directly:

- `refuse_logins`: every password is refused;
- `free_bytes`: writes beyond that many bytes fail with "no space left on device";
- `read_only`: storing, renaming, deleting and making directories are refused (550);
- `mlsd=False`: a server without MLSD/MLST (listings fall back to NLST, SIZE and MDTM);
- `stop()` in the middle of a transfer: the server goes down, its connections are cut.

pyftpdlib (and pyOpenSSL for FTPS) are development dependencies, imported when it starts.
"""

from __future__ import annotations

import errno
import logging
import secrets
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from media_import.devstack.certificates import Certificates, make_certificates
from media_import.storage.remote import RemoteConfig

HOST = "127.0.0.1"
POLL_S = 0.05
PERMISSIONS = "elradfmwMT"  # everything: list, read, write, rename, mkdir, delete, mtime
WRITE_PERMISSIONS = "adfmwMT"


class LocalFtpServer:
    """pyftpdlib serving `root` to one user on 127.0.0.1:<port>; with `tls=True`, FTPS with a
    certificate signed by a throwaway CA (`ca_file`)."""

    def __init__(
        self,
        root: Path,
        username: str = "media",
        password: str | None = None,
        port: int | None = None,
        tls: bool = False,
        mlsd: bool = True,
    ) -> None:
        self.root = Path(root).absolute()
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.tls = tls
        self.mlsd = mlsd
        self.refuse_logins = False
        self.free_bytes: int | None = None
        self.read_only = False
        self._requested_port = port
        self._port: int | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._space_lock = threading.Lock()
        self._cert_dir: tempfile.TemporaryDirectory[str] | None = None
        self._certificates: Certificates | None = None

    @property
    def scheme(self) -> str:
        return "ftps" if self.tls else "ftp"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalFtpServer has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """`ftp://user@127.0.0.1:port/` (or `ftps://`): the server's root directory."""
        return f"{self.scheme}://{self.username}@{HOST}:{self.port}/"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate a client trusts for FTPS (None for plain FTP)."""
        return self._certificates.ca_file if self._certificates else None

    def remote_config(self, directory: str = "/", **fields: Any) -> RemoteConfig:
        """A client config for this server (password, and the CA for FTPS) unless `fields`
        say otherwise."""
        values: dict[str, Any] = {"password": self.password}
        if self.ca_file is not None:
            values["ca_file"] = self.ca_file
        values.update(fields)
        url = f"{self.scheme}://{self.username}@{HOST}:{self.port}{directory}"
        return RemoteConfig.from_url(url, **values)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> LocalFtpServer:
        """Listen (idempotent); the port is the requested one, the previous one, or a free one."""
        if self._thread is not None:
            return self
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import FTPServer

        self.root.mkdir(parents=True, exist_ok=True)
        # Without a handler of its own, pyftpdlib installs one on stderr: its records go to
        # whatever the application configured instead.
        logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())
        port = self._requested_port or self._port or 0
        self._server = FTPServer((HOST, port), self._handler_class(), ioloop=IOLoop())
        self._port = int(self._server.address[1])
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="ftp-server", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                # One poll at a time, so that `stop()` is noticed (serve_forever would log
                # a start line on each call).
                self._server.ioloop.loop(timeout=POLL_S, blocking=False)
        finally:
            self._server.close_all()

    def stop(self) -> None:
        """Stop listening and cut every open connection (mid-transfer too); idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join()
        self._server = None

    def restart(self) -> LocalFtpServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and remove the certificates."""
        self.stop()
        if self._cert_dir is not None:
            self._cert_dir.cleanup()
            self._cert_dir = self._certificates = None

    def __enter__(self) -> LocalFtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalFtpServer(scheme={self.scheme!r}, port={self._port})"

    # -- pyftpdlib's parts, configured for this server ---------------------------------------

    def _handler_class(self) -> type:
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler

        base = TLS_FTPHandler if self.tls else FTPHandler
        attributes: dict[str, Any] = {
            "authorizer": self._authorizer(),
            "abstracted_fs": _quota_fs(self),
            "dtp_handler": _disk_full_reply(base.dtp_handler),
            "banner": "media_import devstack FTP server",
            "permit_foreign_addresses": False,
            "auth_failed_timeout": 0.1,  # pyftpdlib's 3 s would only slow the tests down
        }
        if not self.mlsd:
            attributes["proto_cmds"] = {
                name: spec for name, spec in base.proto_cmds.items() if name not in ("MLSD", "MLST")
            }
        if self.tls:
            certificates = self._certificates_for_tls()
            attributes.update(
                certfile=str(certificates.cert_file),
                keyfile=str(certificates.key_file),
                tls_control_required=True,
                tls_data_required=True,
                ssl_context=None,  # built from these files, for this class only
            )
        # A class per server: pyftpdlib configures handlers through class attributes.
        return type("DevstackFTPHandler", (base,), attributes)

    def _authorizer(self) -> Any:
        from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer

        owner = self

        class Authorizer(DummyAuthorizer):
            def validate_authentication(self, username: str, password: str, handler: Any) -> None:
                if owner.refuse_logins:
                    raise AuthenticationFailed("Authentication failed.")
                super().validate_authentication(username, password, handler)

            def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
                if owner.read_only and perm in WRITE_PERMISSIONS:
                    return False
                return super().has_perm(username, perm, path)

        authorizer = Authorizer()
        authorizer.add_user(self.username, self.password, str(self.root), perm=PERMISSIONS)
        return authorizer

    def _certificates_for_tls(self) -> Certificates:
        if self._certificates is None:
            self._cert_dir = tempfile.TemporaryDirectory(prefix="media-import-ftps-")
            self._certificates = make_certificates(Path(self._cert_dir.name), HOST)
        return self._certificates

    def _take_space(self, size: int) -> None:
        """Account for `size` written bytes, or fail like a full disk."""
        with self._space_lock:
            if self.free_bytes is None:
                return
            if size > self.free_bytes:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.free_bytes -= size


def _quota_fs(owner: LocalFtpServer) -> type:
    """pyftpdlib's file system, with files opened for writing counted against the owner's
    free space."""
    from pyftpdlib.filesystems import AbstractedFS

    class QuotaFS(AbstractedFS):
        def open(self, filename: str, mode: str) -> Any:
            file = super().open(filename, mode)
            return _CountedFile(file, owner) if set(mode) & set("wa+") else file

    return QuotaFS


def _disk_full_reply(base: type) -> type:
    """pyftpdlib's data channel, answering a write that failed for want of space with 452 (as
    FTP servers do): pyftpdlib itself loses the error number and answers "426 None"."""

    class DataChannel(base):  # type: ignore[misc, valid-type]
        def handle_error(self) -> None:
            cause = getattr(sys.exc_info()[1], "__cause__", None)
            if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
                log = logging.getLogger("pyftpdlib").warning
                self._resp = ("452 No space left on device; transfer aborted.", log)
                self.close()
                return
            super().handle_error()

    return DataChannel


class _CountedFile:
    """A file whose writes take space from the server's `free_bytes` first."""

    def __init__(self, file: IO[bytes], owner: LocalFtpServer) -> None:
        self._file = file
        self._owner = owner

    def write(self, data: bytes) -> int:
        self._owner._take_space(len(data))
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)
