"""benchmarks.cpu: CPU-seconds by process group, read through psutil, for real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks import cpu

# Busy for `busy` seconds of CPU, then idle for `idle`, then ends.
_WORKER = """
import sys, time
busy, idle = float(sys.argv[1]), float(sys.argv[2])
start = time.process_time()
while time.process_time() - start < busy:
    pass
print("idle", flush=True)
time.sleep(idle)
"""


def spawn(busy: float, idle: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(busy), str(idle)], stdout=subprocess.PIPE
    )


def test_a_process_tree_is_charged_its_cpu_and_an_idle_one_nothing():
    # A parent that only waits for its busy child: the tree holds both.
    child = f"[sys.executable, '-c', {_WORKER!r}, '0.6', '0.3']"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run({child})"]
    )
    idle = spawn(0.0, 1.5)
    with cpu.CpuSampler({"tree": cpu.tree(parent.pid), "idle": cpu.tree(idle.pid)}, 0.05) as s:
        parent.wait()
    idle.wait()
    used = s.total()
    # The child's 0.6 s of CPU is in its parent's tree (sampled before it ended, idle after).
    assert 0.5 <= used["tree"] <= 1.5
    assert used["idle"] < 0.2


def test_what_ran_before_sampling_is_not_counted():
    early = spawn(0.8, 1.0)
    # Its CPU is spent once it says so: on a loaded machine that takes longer than 0.8 s.
    assert early.stdout is not None and early.stdout.readline() == b"idle\n"
    with cpu.CpuSampler({"early": cpu.tree(early.pid)}, 0.05) as s:
        early.wait()
    assert s.total()["early"] < 0.2


def test_between_takes_the_cpu_of_a_window():
    worker = spawn(0.5, 0.6)
    with cpu.CpuSampler({"w": cpu.tree(worker.pid)}, 0.05) as s:
        started = time.time()
        worker.wait()
        ended = time.time()
    assert s.between(started, ended)["w"] >= 0.4
    assert s.between(ended, ended + 10)["w"] == 0.0


def test_named_groups_find_processes_by_command_name():
    table = cpu.proc_table()
    own = table[os.getpid()]
    assert os.getpid() in cpu.named(own.name)(table)
    assert own.parent == os.getppid()
