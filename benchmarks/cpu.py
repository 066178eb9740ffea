"""CPU-seconds by process group during a measurement, sampled from /proc (Linux).

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

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Proc:
    name: str  # the command name (/proc/PID/stat's comm)
    parent: int
    cpu: float  # user and system CPU-seconds so far


ProcTable = Mapping[int, Proc]
Group = Callable[[ProcTable], set[int]]


def available() -> bool:
    return (_PROC / "self" / "stat").exists()


def running() -> set[int]:
    return {int(name) for name in os.listdir(_PROC) if name.isdigit()}


def proc_table(pids: Iterable[int] | None = None) -> dict[int, Proc]:
    """The processes `pids` (all by default) that are still running."""
    table: dict[int, Proc] = {}
    for pid in running() if pids is None else pids:
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # comm may hold spaces and parentheses: it ends at the last ")".
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        table[pid] = Proc(name, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK)
    return table


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
    _known: dict[int, Proc] = field(default_factory=dict)  # in a group when last read
    _ignored: set[int] = field(default_factory=set)  # in no group when first seen
    _totals: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuSampler:
        self._totals = dict.fromkeys(self.groups, 0.0)
        # What already ran counts from now: baselines, not CPU of this measurement.
        table = proc_table()
        self._seen = {pid: proc.cpu for pid, proc in table.items()}
        self._classify(table, set(table))
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
        # Only the grouped processes and the new ones are read: reading every process's stat
        # took ~5 ms a sample, 2% of a core taken from what is measured.
        alive = running()
        new = alive - self._known.keys() - self._ignored
        table = proc_table((self._known.keys() & alive) | new)
        self._classify(table, new)
        for group, pids in self.groups.items():
            for pid in pids(table):
                cpu = table[pid].cpu
                self._totals[group] += cpu - self._seen.get(pid, 0.0)
                self._seen[pid] = cpu
        self.samples.append((time.time(), dict(self._totals)))

    def _classify(self, table: ProcTable, new: set[int]) -> None:
        """Keep reading the processes of a group; a new one in none never joins one (its
        parent, whose children a tree follows, does not change)."""
        grouped = set().union(*(pids(table) for pids in self.groups.values()))
        self._known = {pid: table[pid] for pid in grouped}
        self._ignored |= new - grouped
        if len(self._ignored) > 10_000:  # forget the ended ones now and then
            self._ignored &= running()

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
