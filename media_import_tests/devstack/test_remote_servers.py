"""The loopback SFTP and FTP servers: stoppable, restartable on their port, leaving no thread
behind; client sessions leave none either."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from media_import.devstack.ftp_server import LocalFtpServer
from media_import.devstack.sftp_server import LocalSftpServer
from media_import.storage import RemoteUnreachable, open_remote

THREAD_NAMES = ("sftp-server", "ftp-server", "sftp 127.0.0.1")


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAMES)]


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("kind", ["sftp", "ftp", "ftps"])
def test_servers_stop_restart_on_their_port_and_leave_no_thread(tmp_path: Path, kind: str) -> None:
    before = our_threads()
    if kind == "sftp":
        server: LocalSftpServer | LocalFtpServer = LocalSftpServer(tmp_path / "root")
    else:
        server = LocalFtpServer(tmp_path / "root", tls=kind == "ftps")
    with server:
        port = server.port
        assert server.url == f"{kind}://media@127.0.0.1:{port}/"
        (server.root / "a.txt").write_bytes(b"a")
        with open_remote(server.remote_config()) as remote:
            assert remote.read_bytes("a.txt", max_bytes=1) == b"a"

        server.stop()
        assert not accepts(port)
        with pytest.raises(RemoteUnreachable):
            open_remote(server.remote_config(connect_attempts=1))

        server.start()
        assert server.port == port
        with open_remote(server.remote_config()) as remote:
            assert remote.read_bytes("a.txt", max_bytes=1) == b"a"
    assert not accepts(port)
    assert our_threads() == before


def test_sftp_server_exposes_what_a_client_pins(sftp_server: LocalSftpServer) -> None:
    assert sftp_server.host_key_line.startswith("ssh-ed25519 AAAA")
    assert len(sftp_server.host_key_line.split()) == 2
    assert sftp_server.host_key_fingerprint.startswith("SHA256:")
    assert sftp_server.known_hosts_line == (
        f"[127.0.0.1]:{sftp_server.port} {sftp_server.host_key_line}"
    )


def test_ftps_server_certificate_is_signed_by_its_ca(ftps_server: LocalFtpServer) -> None:
    assert ftps_server.ca_file is not None and ftps_server.ca_file.exists()
    assert ftps_server.remote_config().ca_file == ftps_server.ca_file
