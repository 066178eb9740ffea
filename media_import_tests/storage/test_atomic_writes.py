"""Uploads are atomic for readers: written under a temporary name, then renamed; a server going
down mid-transfer never leaves the final name behind, and a retry completes."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from media_import.devstack.sftp_server import LocalSftpServer
from media_import.storage import (
    RemoteConnectionLost,
    RemoteDirectory,
    TransientRemoteError,
    is_temporary_name,
    open_remote,
)
from media_import_tests.storage.conftest import Served

CHUNK = 1 << 20


class SlowSource(io.RawIOBase):
    """`size` bytes handed out a chunk at a time; `on_second_read` runs once the first chunk
    has gone to the server."""

    def __init__(self, data: bytes, on_second_read: Callable[[], None]) -> None:
        self._data = data
        self._offset = 0
        self._reads = 0
        self._on_second_read = on_second_read

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self._reads += 1
        if self._reads == 2:
            self._on_second_read()
        chunk = self._data[self._offset : self._offset + CHUNK]
        self._offset += len(chunk)
        return chunk


def test_the_upload_is_written_under_a_temporary_name_then_renamed(
    served: Served, remote: RemoteDirectory
) -> None:
    (served.root / "out").mkdir()
    seen: list[list[str]] = []
    data = os.urandom(3 * CHUNK)
    source = SlowSource(data, lambda: seen.append(sorted(os.listdir(served.root / "out"))))

    transfer = remote.upload("out/sidecar.xml", source)

    [during] = seen
    assert len(during) == 1 and "sidecar.xml" not in during
    assert is_temporary_name(during[0]) and during[0].startswith(".sidecar.xml.")
    assert os.listdir(served.root / "out") == ["sidecar.xml"]
    assert (served.root / "out" / "sidecar.xml").read_bytes() == data
    assert transfer.sha256 == hashlib.sha256(data).hexdigest()


def test_a_reader_sees_the_old_file_until_the_new_one_is_complete(
    served: Served, remote: RemoteDirectory
) -> None:
    (served.root / "export.csv").write_bytes(b"old")
    seen: list[bytes] = []
    source = SlowSource(b"n" * (2 * CHUNK), lambda: seen.append(read(served.root / "export.csv")))

    remote.upload("export.csv", source)

    assert seen == [b"old"]
    assert (served.root / "export.csv").read_bytes() == b"n" * (2 * CHUNK)


def test_server_down_mid_upload_leaves_no_final_name_and_a_retry_completes(
    served: Served, remote: RemoteDirectory
) -> None:
    data = os.urandom(8 * CHUNK)
    source = SlowSource(data, served.server.stop)

    with pytest.raises(TransientRemoteError) as lost:
        remote.upload("export-2026-12-07.csv", source)

    assert isinstance(lost.value, RemoteConnectionLost)
    assert "export-2026-12-07.csv" in str(lost.value)
    leftovers = os.listdir(served.root)
    assert "export-2026-12-07.csv" not in leftovers
    assert all(is_temporary_name(name) for name in leftovers)

    served.server.start()  # same port; the session reconnects on its next call
    transfer = remote.upload("export-2026-12-07.csv", data)
    assert (served.root / "export-2026-12-07.csv").read_bytes() == data
    assert transfer.sha256 == hashlib.sha256(data).hexdigest()


def test_server_down_mid_download_leaves_no_local_file(
    served: Served, remote: RemoteDirectory, tmp_path: Path
) -> None:
    (served.root / "big.bin").write_bytes(os.urandom(16 * CHUNK))
    target = tmp_path / "downloads" / "big.bin"
    target.parent.mkdir()

    class StoppingSink(io.BytesIO):
        def write(self, chunk: bytes) -> int:  # type: ignore[override]
            served.server.stop()
            return super().write(chunk)

    with pytest.raises(RemoteConnectionLost):
        remote.download("big.bin", StoppingSink())

    served.server.start()
    with open_remote(served.config) as again:
        assert again.download("big.bin", target).size == 16 * CHUNK
    assert os.listdir(target.parent) == ["big.bin"]


def test_a_failed_upload_removes_its_temporary_file(
    served: Served, remote: RemoteDirectory
) -> None:
    served.server.free_bytes = CHUNK // 2
    with pytest.raises(Exception, match="no space"):
        remote.upload("too-big.bin", b"x" * (2 * CHUNK))
    assert os.listdir(served.root) == []


def test_sftp_rename_without_posix_rename_replaces_the_file(
    sftp_server: LocalSftpServer,
) -> None:
    sftp_server.posix_rename = False
    (sftp_server.root / "export.csv").write_bytes(b"old")
    with open_remote(sftp_server.remote_config()) as remote:
        remote.upload("export.csv", b"new")
        remote.upload("fresh.csv", b"first")
    assert (sftp_server.root / "export.csv").read_bytes() == b"new"
    assert sorted(os.listdir(sftp_server.root)) == ["export.csv", "fresh.csv"]


def read(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""
