"""Phase 2 of a run's large folders in worker processes of their own.

The sidecar GETs' event loop and the planning (the JSON and md5sum parsing, the decisions, the
plans' COPY rows) are Python work, on the run process's one GIL: a first import of many
folders kept that process at one core while the other core was half idle. A folder planned
whole (see media_import.db.scope), as in a first import or a backfill of new folders, is
handed to one of a few worker processes (`python -m media_import.planning`), one folder at a
time each, while the run process plans the others (those planned from their restaged ranges
only) itself. A run with fewer than two folders planned whole, or fewer keys in them than
`min_process_keys`, plans every folder in the run process, as before: a worker costs ~0.4 s
to start and ~80 MB before its first folder.

A worker runs the same `phases.plan_folder`, on a connection of its own, and sends the Plan
back pickled; a failure comes back as the exception it raised, so the step's retries treat it
as they would in the run process. A worker whose run process is gone ends at its next read.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType

import psycopg

from media_import.concurrency import DEFAULT_FOLDER_WORKERS, map_folders
from media_import.core.storage import DEFAULT_LIST_CONCURRENCY, Bucket, S3Config
from media_import.db import listing, scope, session
from media_import.phases import Plan, plan_folder
from media_import.settings import redact_url

# Folders planned whole holding fewer considered keys than this together are planned in the
# run process: below it, starting workers costs more than it spreads (5k keys plan in ~0.4 s).
MIN_PROCESS_KEYS = 20_000
# One per core, as many as a run works on folders at once by default.
DEFAULT_PLAN_PROCESSES = min(os.cpu_count() or 1, DEFAULT_FOLDER_WORKERS)


@dataclass(frozen=True)
class PlanningJob:
    """What a worker needs to plan folders: the bucket and the catalog database."""

    s3: S3Config  # its secrets are SecretStr: masked in its repr
    concurrency: int
    page_size: int
    conninfo: str
    list_concurrency: int = DEFAULT_LIST_CONCURRENCY

    def __repr__(self) -> str:
        return f"PlanningJob(s3={self.s3!r}, conninfo={redact_url(self.conninfo)!r})"


@dataclass(frozen=True)
class Planned:
    plans: list[Plan]  # in the folders' order
    in_processes: int  # of which planned in worker processes


def plan_folders(
    bucket: Bucket,
    connect: Callable[[], AbstractContextManager[psycopg.Connection]],
    job: PlanningJob,
    folders: Sequence[str],
    workers: int,
    processes: int,
    min_process_keys: int = MIN_PROCESS_KEYS,
) -> Planned:
    """Plan every folder, at most `workers` at once: those planned whole in up to
    `processes` worker processes (when there are two or more of them, holding at least
    `min_process_keys` keys together), the rest in this process."""
    large: list[str] = []
    if min(processes, workers) >= 2:  # else no worker could start: nothing to look up
        large = _folders_planned_whole(connect, bucket.name, folders, min_process_keys)
    count = min(processes, workers, len(large))
    if count < 2:
        plans = map_folders(connect, folders, lambda c, f: plan_folder(bucket, c, f), workers)
        return Planned(plans, 0)
    in_workers = set(large)
    small = [f for f in folders if f not in in_workers]
    planned: dict[str, Plan] = {}
    failures: list[BaseException] = []

    def in_processes() -> None:
        try:
            plans = map_folders(lambda: PlanningProcess(job), large, PlanningProcess.plan, count)
            planned.update(zip(large, plans, strict=True))
        except BaseException as exc:  # re-raised in the calling thread
            failures.append(exc)

    thread = threading.Thread(target=in_processes, daemon=True)
    thread.start()
    try:
        local = map_folders(
            connect, small, lambda c, f: plan_folder(bucket, c, f), max(1, workers - count)
        )
        planned.update(zip(small, local, strict=True))
    finally:
        thread.join()
    if failures:
        raise failures[0]
    return Planned([planned[f] for f in folders], len(large))


def _folders_planned_whole(
    connect: Callable[[], AbstractContextManager[psycopg.Connection]],
    bucket: str,
    folders: Sequence[str],
    min_keys: int,
) -> list[str]:
    """The folders planned whole, largest first (so that the workers finish at about the same
    time), if they hold at least `min_keys` considered keys together; else none."""
    if len(folders) < 2:
        return []
    with connect() as conn:
        kept = listing.kept_by_folder(conn, bucket, folders)
        whole = scope.planned_whole(conn, bucket, [f for f in folders if kept.get(f)])
    if sum(kept[f] for f in whole) < min_keys:
        return []
    return sorted(whole, key=lambda f: -kept[f])


class PlanningProcess:
    """A worker process that plans the folders sent to it, one at a time, over a socket."""

    def __init__(self, job: PlanningJob) -> None:
        self.job = job

    def __enter__(self) -> PlanningProcess:
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "media_import.planning", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self.channel = Connection(ours.detach())
        self.channel.send(self.job)
        return self

    def plan(self, folder: str) -> Plan:
        self.channel.send(folder)
        try:
            outcome, value = self.channel.recv()
        except EOFError:
            code = self.process.wait()
            raise RuntimeError(
                f"the planning process for folder {folder!r} ended (exit code {code})"
            ) from None
        if outcome == "failed":
            raise value
        return value

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(None)  # no more folders: the worker ends
        self.channel.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the worker ---------------------------------------------------------------------------


def serve(channel: Connection) -> None:
    """Plan each folder received until told to stop (None) or the run process is gone."""
    _end_with_parent()
    try:
        job: PlanningJob = channel.recv()
        bucket = Bucket(job.s3, job.concurrency, job.page_size, job.list_concurrency)
        with contextlib.ExitStack() as stack:
            conn: psycopg.Connection | None = None
            while (folder := channel.recv()) is not None:
                try:
                    # Opened with the first folder, so that failing to connect is that
                    # folder's failure, sent back as any other.
                    conn = conn or stack.enter_context(session.connect(job.conninfo))
                    outcome: tuple[str, object] = ("planned", plan_folder(bucket, conn, folder))
                except Exception as exc:
                    traceback.print_exc()  # into the step's captured logs, with our frames
                    outcome = ("failed", _picklable(exc))
                channel.send(outcome)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        return  # the run process is gone: nobody waits for the rest


def _end_with_parent() -> None:
    """On Linux, have the kernel stop this worker when the thread that started it ends (the
    run process terminated or killed mid-plan): otherwise it would finish its folder's plan
    for nobody. Elsewhere the worker ends at its next read of the closed socket."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _picklable(exc: Exception) -> BaseException:
    """The exception itself when it pickles (its type is what the step's retries go by),
    else a RuntimeError naming it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
