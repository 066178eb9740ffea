"""A real server per test for each protocol: the same tests run over SFTP, FTP and FTPS."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from media_import.devstack.ftp_server import LocalFtpServer
from media_import.devstack.sftp_server import LocalSftpServer
from media_import.storage import RemoteConfig, RemoteDirectory, open_remote

SCHEMES = ["sftp", "ftp", "ftps"]


@dataclass
class Served:
    """A server, the directory it serves, and a config to reach it."""

    server: LocalSftpServer | LocalFtpServer
    config: RemoteConfig

    @property
    def root(self) -> Path:
        return self.server.root

    def remote_config(self, **fields: Any) -> RemoteConfig:
        return self.server.remote_config(**fields)


@pytest.fixture(params=SCHEMES)
def served(request: pytest.FixtureRequest) -> Served:
    server = request.getfixturevalue(f"{request.param}_server")
    return Served(server, server.remote_config())


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteDirectory]:
    with open_remote(served.config) as session:
        yield session
