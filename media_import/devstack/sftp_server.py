"""A local SFTP server: asyncssh's server on a loopback port, serving one directory.

It runs on an event loop in a background thread of the calling process, so tests and the demo
can switch its faults on and off directly:

- `refuse_logins`: every password and key is refused;
- `free_bytes`: writes beyond that many bytes fail with "no space left on device";
- `read_only`: creating, writing, renaming and removing fail with "permission denied";
- `posix_rename`: False refuses the posix-rename extension (as servers without it do);
- `stop()` in the middle of a transfer: the server goes down, its connections are cut;
- `restart(new_host_key=True)`: the same port with a new host key.
"""

from __future__ import annotations

import errno
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh

from media_import.storage.host_keys import fingerprint, public_key_line
from media_import.storage.loop_thread import LoopThread
from media_import.storage.remote import RemoteConfig

HOST = "127.0.0.1"


class LocalSftpServer:
    """asyncssh's SFTP server for one user, chrooted to `root`, on 127.0.0.1:<port>."""

    def __init__(
        self,
        root: Path,
        username: str = "media",
        password: str | None = None,
        authorized_keys: Iterable[str] = (),
        port: int | None = None,
        host_key_type: str = "ssh-ed25519",
    ) -> None:
        self.root = Path(root).absolute()
        self.username = username
        self.password = password or secrets.token_urlsafe(16)
        self.refuse_logins = False
        self.free_bytes: int | None = None
        self.posix_rename = True
        self.read_only = False
        self._authorized = [asyncssh.import_public_key(k) for k in authorized_keys]
        self._requested_port = port
        self._port: int | None = None
        self._host_key = asyncssh.generate_private_key(host_key_type)
        self._loop: LoopThread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._space_lock = threading.Lock()

    # -- what clients need -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LocalSftpServer has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """`sftp://user@127.0.0.1:port/`: the server's root directory."""
        return f"sftp://{self.username}@{HOST}:{self.port}/"

    @property
    def host_key_line(self) -> str:
        """The public host key to pin (`ssh-ed25519 AAAA...`)."""
        return public_key_line(self._host_key)

    @property
    def host_key_fingerprint(self) -> str:
        return fingerprint(self._host_key)

    @property
    def known_hosts_line(self) -> str:
        return f"[{HOST}]:{self.port} {self.host_key_line}"

    def remote_config(self, directory: str = "/", **fields: Any) -> RemoteConfig:
        """A client config for this server: the password and the pinned host key, unless
        `fields` say otherwise."""
        values: dict[str, Any] = {"password": self.password, "host_key": self.host_key_line}
        values.update(fields)
        url = f"sftp://{self.username}@{HOST}:{self.port}{directory}"
        return RemoteConfig.from_url(url, **values)

    def authorize_key(self, public_key_line: str) -> None:
        """Accept logins with the private key of this public key line."""
        self._authorized.append(asyncssh.import_public_key(public_key_line))

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> LocalSftpServer:
        """Listen (idempotent); the port is the requested one, the previous one, or a free one."""
        if self._acceptor is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        self._loop = LoopThread("sftp-server")
        port = self._requested_port or self._port or 0
        try:
            self._acceptor = self._loop.run(self._listen(port))
        except BaseException:
            self._loop.close()
            self._loop = None
            raise
        self._port = self._acceptor.get_port()
        return self

    async def _listen(self, port: int) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            HOST,
            port,
            server_host_keys=[self._host_key],
            server_factory=lambda: _Server(self),
            sftp_factory=lambda chan: _SftpServer(chan, self),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            config=None,
        )

    def stop(self) -> None:
        """Stop listening and cut every open connection (mid-transfer too); idempotent."""
        loop, acceptor = self._loop, self._acceptor
        self._loop = self._acceptor = None
        if loop is None:
            return
        if acceptor is not None:
            loop.run(self._shut(acceptor))
        loop.close()

    async def _shut(self, acceptor: asyncssh.SSHAcceptor) -> None:
        acceptor.close()
        for conn in list(self._connections):
            conn.abort()
        await acceptor.wait_closed()

    def restart(self, new_host_key: bool = False, key_type: str | None = None) -> LocalSftpServer:
        """Stop, then listen again on the same port; with a new host key if asked (of another
        type with `key_type`, e.g. "ecdsa-sha2-nistp256")."""
        self.stop()
        if new_host_key or key_type:
            algorithm = key_type or self._host_key.get_algorithm()
            self._host_key = asyncssh.generate_private_key(algorithm)
        return self.start()

    def __enter__(self) -> LocalSftpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalSftpServer(port={self._port}, root={str(self.root)!r})"

    # -- used by the server's handlers -------------------------------------------------------

    def _accepts_password(self, username: str, password: str) -> bool:
        return (
            not self.refuse_logins
            and username == self.username
            and secrets.compare_digest(password.encode(), self.password.encode())
        )

    def _accepts_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return not self.refuse_logins and username == self.username and key in self._authorized

    def _take_space(self, size: int) -> None:
        """Account for `size` written bytes, or fail like a full disk."""
        with self._space_lock:
            if self.free_bytes is None:
                return
            if size > self.free_bytes:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.free_bytes -= size


class _Server(asyncssh.SSHServer):
    """Logins for the one user, by password or authorized key; tracks connections."""

    def __init__(self, owner: LocalSftpServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._owner._accepts_password(username, password)

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self._owner._accepts_key(username, key)


class _SftpServer(asyncssh.SFTPServer):
    """asyncssh's file system SFTP server, chrooted, with the owner's simulated faults."""

    def __init__(self, chan: asyncssh.SSHServerChannel, owner: LocalSftpServer) -> None:
        super().__init__(chan, chroot=str(owner.root).encode())
        self._owner = owner

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & _WRITING:
            self._refuse_if_read_only()
        return super().open(path, pflags, attrs)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        self._owner._take_space(len(data))
        return super().write(file_obj, offset, data)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        if not self._owner.posix_rename:
            raise asyncssh.SFTPOpUnsupported("posix-rename is switched off on this server")
        self._refuse_if_read_only()
        super().posix_rename(oldpath, newpath)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._refuse_if_read_only()
        super().rename(oldpath, newpath)

    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self._refuse_if_read_only()
        super().mkdir(path, attrs)

    def remove(self, path: bytes) -> None:
        self._refuse_if_read_only()
        super().remove(path)

    def _refuse_if_read_only(self) -> None:
        # Permission bits would not do: the tests may run as root, which ignores them.
        if self._owner.read_only:
            raise PermissionError(errno.EACCES, "Permission denied")


_WRITING = asyncssh.FXF_WRITE | asyncssh.FXF_APPEND | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
