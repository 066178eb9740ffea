"""Fixtures for tests that move files to and from SFTP/FTP servers (registered in conftest.py).

Each test gets servers of its own on free loopback ports, serving an empty directory under
`tmp_path`; a test may switch their faults on (see `LocalSftpServer`, `LocalFtpServer`). The
server objects are the handles: `url`, `username`, `password`, `root`, `remote_config()`, and
for SFTP `host_key_line` / `host_key_fingerprint` / `known_hosts_line`, for FTPS `ca_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from media_import.devstack.ftp_server import LocalFtpServer
from media_import.devstack.sftp_server import LocalSftpServer


@dataclass(frozen=True)
class ClientKey:
    """An SSH key pair for key logins: the private key as OpenSSH text and as a file."""

    private_pem: str
    private_file: Path
    public_line: str


@pytest.fixture
def sftp_client_key(tmp_path: Path) -> ClientKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    private_pem = key.export_private_key("openssh").decode()
    private_file = tmp_path / "id_ed25519"
    private_file.write_text(private_pem)
    private_file.chmod(0o600)
    public_line = key.export_public_key("openssh").decode().strip()
    return ClientKey(private_pem, private_file, public_line)


@pytest.fixture
def sftp_server(tmp_path: Path, sftp_client_key: ClientKey) -> Iterator[LocalSftpServer]:
    """asyncssh's SFTP server on loopback, chrooted to an empty `tmp_path/sftp-root`; logins
    with `password` or `sftp_client_key`."""
    server = LocalSftpServer(tmp_path / "sftp-root", authorized_keys=[sftp_client_key.public_line])
    with server:
        yield server


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[LocalFtpServer]:
    """pyftpdlib on loopback, serving an empty `tmp_path/ftp-root`."""
    with LocalFtpServer(tmp_path / "ftp-root") as server:
        yield server


@pytest.fixture
def ftps_server(tmp_path: Path) -> Iterator[LocalFtpServer]:
    """pyftpdlib with explicit TLS on loopback, serving an empty `tmp_path/ftps-root`; its
    certificate is signed by a throwaway CA (`ca_file`)."""
    with LocalFtpServer(tmp_path / "ftps-root", tls=True) as server:
        yield server
