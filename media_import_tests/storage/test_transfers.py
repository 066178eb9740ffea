"""The remote directory interface against real servers on loopback, over SFTP, FTP and FTPS."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from media_import.devstack.ftp_server import LocalFtpServer
from media_import.storage import (
    RemoteDirectory,
    RemoteFileNotFound,
    RemoteFileTooLarge,
    open_remote,
)
from media_import_tests.storage.conftest import Served

MTIME = 1_764_000_000  # a whole second: FTP listings carry seconds only


def put(root: Path, name: str, data: bytes, mtime: int = MTIME) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_list_gives_names_sizes_mtimes_and_directories(
    served: Served, remote: RemoteDirectory
) -> None:
    put(served.root, "PRESS_2026-12-01.xlsx", b"x" * 1234)
    put(served.root, "empty.csv", b"", mtime=MTIME + 60)
    (served.root / "archive").mkdir()

    entries = {e.name: e for e in remote.list()}

    assert sorted(entries) == ["PRESS_2026-12-01.xlsx", "archive", "empty.csv"]
    press = entries["PRESS_2026-12-01.xlsx"]
    assert (press.size, press.is_dir) == (1234, False)
    assert press.mtime == datetime.fromtimestamp(MTIME, UTC)
    assert entries["empty.csv"].size == 0
    assert entries["empty.csv"].mtime == datetime.fromtimestamp(MTIME + 60, UTC)
    assert entries["archive"].is_dir


def test_list_and_stat_in_a_subdirectory(served: Served, remote: RemoteDirectory) -> None:
    put(served.root, "in/2026/a.csv", b"abc")

    assert [e.name for e in remote.list("in/2026")] == ["a.csv"]
    entry = remote.stat("in/2026/a.csv")
    assert (entry.name, entry.size, entry.is_dir) == ("a.csv", 3, False)
    assert entry.mtime == datetime.fromtimestamp(MTIME, UTC)
    assert remote.stat("in").is_dir


def test_the_configured_directory_is_the_root_of_paths(served: Served) -> None:
    put(served.root, "cp/OR-123/sidecar.xml", b"<x/>")
    with open_remote(served.remote_config(directory="/cp")) as remote:
        assert [e.name for e in remote.list()] == ["OR-123"]
        assert remote.read_bytes("OR-123/sidecar.xml", max_bytes=100) == b"<x/>"


def test_read_bytes_is_bounded(served: Served, remote: RemoteDirectory) -> None:
    put(served.root, "manifest.csv", b"a" * 100)

    assert remote.read_bytes("manifest.csv", max_bytes=100) == b"a" * 100
    with pytest.raises(RemoteFileTooLarge) as refused:
        remote.read_bytes("manifest.csv", max_bytes=99)
    assert "manifest.csv" in str(refused.value)
    assert "100 bytes" in str(refused.value)
    assert "99 allowed" in str(refused.value)
    # The session is still usable after a refusal.
    assert remote.read_bytes("manifest.csv", max_bytes=1000) == b"a" * 100


def test_download_streams_with_the_files_sha256(
    served: Served, remote: RemoteDirectory, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks, and a partial one
    put(served.root, "essence.mxf", data)
    expected = hashlib.sha256(data).hexdigest()

    sink = io.BytesIO()
    transfer = remote.download("essence.mxf", sink)
    assert (transfer.size, transfer.sha256) == (len(data), expected)
    assert sink.getvalue() == data

    target = tmp_path / "local" / "essence.mxf"
    target.parent.mkdir()
    assert remote.download("essence.mxf", target).sha256 == expected
    assert target.read_bytes() == data
    assert os.listdir(target.parent) == ["essence.mxf"]  # no temporary file left


def test_upload_from_bytes_path_and_stream(
    served: Served, remote: RemoteDirectory, tmp_path: Path
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()

    for name, source in [("a.bin", data), ("b.bin", local), ("c.bin", io.BytesIO(data))]:
        transfer = remote.upload(name, source)
        assert (transfer.path, transfer.size, transfer.sha256) == (name, len(data), expected)
        assert (served.root / name).read_bytes() == data

    assert sorted(os.listdir(served.root)) == ["a.bin", "b.bin", "c.bin"]


def test_upload_replaces_an_existing_file(served: Served, remote: RemoteDirectory) -> None:
    put(served.root, "export.csv", b"old contents, longer than the new")
    remote.upload("export.csv", b"new")
    assert (served.root / "export.csv").read_bytes() == b"new"
    assert os.listdir(served.root) == ["export.csv"]


def test_makedirs_creates_missing_parents_and_accepts_existing(
    served: Served, remote: RemoteDirectory
) -> None:
    remote.makedirs("exports/2026/12/07")
    remote.makedirs("exports/2026/12/07")
    remote.makedirs("exports/2026/12/08")
    assert (served.root / "exports/2026/12/07").is_dir()
    assert sorted(os.listdir(served.root / "exports/2026/12")) == ["07", "08"]
    remote.upload("exports/2026/12/07/day.csv", b"1")
    assert (served.root / "exports/2026/12/07/day.csv").read_bytes() == b"1"


@pytest.mark.parametrize("path", ["../outside.txt", "a/../../outside.txt", "/etc/passwd"])
def test_paths_may_not_leave_the_directory(remote: RemoteDirectory, path: str) -> None:
    with pytest.raises(ValueError, match=r"relative|'\.\.'"):
        remote.upload(path, b"x")
    with pytest.raises(ValueError):
        remote.read_bytes(path, max_bytes=10)


def test_a_file_that_vanished_is_named(served: Served, remote: RemoteDirectory) -> None:
    put(served.root, "PRESS_1.xlsx", b"rows")
    assert [e.name for e in remote.list()] == ["PRESS_1.xlsx"]
    (served.root / "PRESS_1.xlsx").unlink()  # removed between listing and reading

    for action in (
        lambda: remote.read_bytes("PRESS_1.xlsx", max_bytes=10),
        lambda: remote.download("PRESS_1.xlsx", io.BytesIO()),
        lambda: remote.stat("PRESS_1.xlsx"),
    ):
        with pytest.raises(RemoteFileNotFound) as missing:
            action()
        assert "PRESS_1.xlsx" in str(missing.value)
        assert not missing.value.transient


def test_ftp_without_mlsd_lists_with_size_and_mdtm(tmp_path: Path) -> None:
    with LocalFtpServer(tmp_path / "root", mlsd=False) as server:
        put(server.root, "a.csv", b"abc")
        (server.root / "sub").mkdir()
        with open_remote(server.remote_config()) as remote:
            entries = {e.name: e for e in remote.list()}
    assert sorted(entries) == ["a.csv", "sub"]
    assert (entries["a.csv"].size, entries["a.csv"].is_dir) == (3, False)
    assert entries["a.csv"].mtime == datetime.fromtimestamp(MTIME, UTC)
    assert entries["sub"].is_dir
