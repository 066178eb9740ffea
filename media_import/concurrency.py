"""Work on several folders of a run at once, each worker with its own database connection (or
another resource of its own, such as a planning process).

A run over many folders (a single-run backfill) is a chain of waits on other processes: the
S3 server answering pages and GETs, PostgreSQL loading and joining. Working on a few folders
at once keeps both cores busy where one folder at a time leaves them idle in turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TypeVar

# Three: enough to overlap one folder's S3 waits with another's PostgreSQL work on two cores;
# more only adds contention (and memory: each folder being planned holds its sidecars).
DEFAULT_FOLDER_WORKERS = 3
# The insert step is the database server's CPU alone (row inserts, their indexes and foreign
# key checks), and inserts beyond its cores contend: at 1M objects on a 2-core server, three
# folders at once took 24-30 s where two took 20-25 s (eight runs, alternated).
DEFAULT_INSERT_WORKERS = 2

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")


def map_folders(
    connect: Callable[[], AbstractContextManager[R]],
    folders: Sequence[K],
    work: Callable[[R, K], T],
    workers: int,
) -> list[T]:
    """`work(conn, folder)` for every folder, at most `workers` at once, results in the
    folders' order; each worker opens `connect()` once and uses it for all its folders. The
    first failure is raised once the workers have stopped; a worker stops taking folders as
    soon as any has failed."""
    todo: queue.SimpleQueue[tuple[int, K]] = queue.SimpleQueue()
    for item in enumerate(folders):
        todo.put(item)
    results: dict[int, T] = {}
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with connect() as conn:
                while not failures:
                    try:
                        index, folder = todo.get_nowait()
                    except queue.Empty:
                        return
                    results[index] = work(conn, folder)
        except BaseException as exc:  # re-raised in the calling thread
            failures.append(exc)

    count = max(1, min(workers, len(folders)))
    if count == 1:
        worker()
    else:
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    return [results[i] for i in range(len(folders))]


def run_together(
    connect: Callable[[], AbstractContextManager[R]], tasks: Sequence[Callable[[R], T]]
) -> list[T]:
    """Each task on a connection of its own, all at once (independent statements that would
    otherwise wait for one another on one connection); results in the tasks' order."""
    return map_folders(connect, tasks, lambda conn, task: task(conn), len(tasks))
