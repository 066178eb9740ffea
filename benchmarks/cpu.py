"""CPU-seconds by process group during a measurement, sampled through psutil.

A run's wall time moves with the machine (the same code took 63-107 s for a 1M first import
on different days), and on two cores it shares them with PostgreSQL and the S3 server. What
each part used tells code from machine: a change that saves CPU shows here even when the
machine's noise hides it in the wall time. Groups are the run (its process and its planning
workers), PostgreSQL's processes and the S3 server's.

Sampled every `interval` seconds: a process that ends between two samples loses at most its
last interval's CPU (the planning workers end with their run, so at most ~0.2 s a worker).
Processes already running when sampling starts count from then, not from their start. A
process is put in its groups when first seen (by its parent, or by its command name then).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import psutil


@dataclass(frozen=True, slots=True)
class Proc:
    name: str  # the command name
    parent: int
    cpu: float  # user and system CPU-seconds so far


ProcTable = Mapping[int, Proc]
# The benchmark's sampling interval: a phase shorter than a few of these gets a whole
# interval's CPU or none, so its CPU figures are rough and its cores busy meaningless.
SAMPLE_SECONDS = 0.25
SHORTEST_PHASE_SECONDS = 4 * SAMPLE_SECONDS
Group = Callable[[ProcTable], set[int]]


def running() -> set[int]:
    return set(psutil.pids())


def read(processes: Iterable[psutil.Process]) -> dict[int, tuple[psutil.Process, Proc]]:
    """Those of `processes` still running, each with what a group needs of it."""
    found: dict[int, tuple[psutil.Process, Proc]] = {}
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                proc = Proc(process.name(), process.ppid(), times.user + times.system)
        except psutil.Error:  # ended meanwhile, or not ours to read
            continue
        found[process.pid] = (process, proc)
    return found


def proc_table() -> dict[int, Proc]:
    """Every process that can be read."""
    return {pid: proc for pid, (_, proc) in read(psutil.process_iter()).items()}


def tree(root: int) -> Group:
    """A process and its descendants."""

    def pids(table: ProcTable) -> set[int]:
        found = {root} if root in table else set()
        children: dict[int, list[int]] = {}
        for pid, proc in table.items():
            children.setdefault(proc.parent, []).append(pid)
        todo = list(found)
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    return pids


def named(name: str) -> Group:
    """Every process of that command name (PostgreSQL's backends are all "postgres")."""
    return lambda table: {pid for pid, proc in table.items() if proc.name == name}


@dataclass
class CpuSampler:
    """Cumulative CPU-seconds of each group, sampled in a thread while in a `with` block."""

    groups: Mapping[str, Group]
    interval: float = 0.2
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _seen: dict[int, float] = field(default_factory=dict)
    _known: dict[int, psutil.Process] = field(default_factory=dict)  # in a group when last read
    _ignored: set[int] = field(default_factory=set)  # in no group when first seen
    _totals: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuSampler:
        self._totals = dict.fromkeys(self.groups, 0.0)
        found = read(psutil.process_iter())
        # What already ran counts from now: baselines, not CPU of this measurement.
        self._seen = {pid: proc.cpu for pid, (_, proc) in found.items()}
        self._classify(found, set(found))
        self.samples.append((time.time(), dict(self._totals)))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        # Only the grouped processes and the new ones are read: reading every process took
        # ~5 ms a sample, 2% of a core taken from what is measured.
        new = running() - self._known.keys() - self._ignored
        found = read([*self._known.values(), *_processes(new)])
        table = self._classify(found, new)
        for group, pids in self.groups.items():
            for pid in pids(table):
                cpu = table[pid].cpu
                self._totals[group] += cpu - self._seen.get(pid, 0.0)
                self._seen[pid] = cpu
        self.samples.append((time.time(), dict(self._totals)))

    def _classify(
        self, found: Mapping[int, tuple[psutil.Process, Proc]], new: set[int]
    ) -> ProcTable:
        """Keep reading the processes of a group; a new one in none never joins one (its
        parent, whose children a tree follows, does not change). The table read."""
        table = {pid: proc for pid, (_, proc) in found.items()}
        grouped = set().union(*(pids(table) for pids in self.groups.values()))
        self._known = {pid: found[pid][0] for pid in grouped}
        self._ignored |= new - grouped
        if len(self._ignored) > 10_000:  # forget the ended ones now and then
            self._ignored &= running()
        return table

    def at(self, moment: float) -> dict[str, float]:
        """The groups' cumulative CPU at the last sample taken at or before `moment`."""
        last = self.samples[0][1]
        for when, totals in self.samples:
            if when > moment:
                break
            last = totals
        return last

    def between(self, start: float, end: float) -> dict[str, float]:
        first, last = self.at(start), self.at(end)
        return {group: round(last[group] - first[group], 2) for group in self.groups}

    def total(self) -> dict[str, float]:
        return {group: round(value, 2) for group, value in self.samples[-1][1].items()}


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:  # ended since it was listed
            continue
    return found
