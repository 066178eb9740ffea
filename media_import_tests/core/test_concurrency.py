"""map_folders: every folder once, results in order, one connection per worker, failures out."""

import threading
from contextlib import contextmanager

import psycopg
import pytest

from media_import.concurrency import map_folders


@pytest.fixture
def connect(database_url):
    opened: list[int] = []

    @contextmanager
    def open_one():
        with psycopg.connect(database_url, autocommit=True) as conn:
            opened.append(id(conn))
            yield conn

    open_one.opened = opened  # type: ignore[attr-defined]
    return open_one


def test_every_folder_once_in_order_on_one_connection_per_worker(connect) -> None:
    folders = [f"F{i:02d}" for i in range(10)]
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(conn: psycopg.Connection, folder: str) -> str:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        with lock:
            seen.append((folder, pid))
        return folder.lower()

    assert map_folders(connect, folders, work, workers=3) == [f.lower() for f in folders]
    assert sorted(f for f, _ in seen) == folders
    assert len({pid for _, pid in seen}) <= 3
    assert len(connect.opened) == 3


def test_a_failure_is_raised_and_stops_the_workers_taking_more(connect) -> None:
    done: list[str] = []

    def work(conn: psycopg.Connection, folder: str) -> None:
        if folder == "BAD":
            raise ValueError("unreadable folder")
        done.append(folder)

    with pytest.raises(ValueError, match="unreadable folder"):
        map_folders(connect, ["BAD", *[f"F{i}" for i in range(50)]], work, workers=1)
    assert done == []


def test_one_worker_and_no_folders(connect) -> None:
    assert map_folders(connect, [], lambda conn, f: f, workers=4) == []
    assert map_folders(connect, ["A", "B"], lambda conn, f: f, workers=1) == ["A", "B"]
