"""Pause Python's cyclic garbage collector while folders are planned.

Planning a folder allocates tens of thousands of short-lived containers (the parsed ffprobe
and mediainfo documents, the candidates and plans, the rows COPY sends), none of them in
reference cycles: reference counting frees each as soon as it is dropped. The collector still
counts every allocation and every 700 of them scans the young objects, and now and then the
whole heap (Dagster's definitions included). In a 100k first import that was a fifth of the
planning step's CPU, all of it on the GIL the GET loops need.

The pause is counted across threads: a run plans several folders at once, and the collector
comes back when the last of them is done.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the cyclic collector off for the block (and any other thread's block that
    overlaps it); restore what it was when the last block ends."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
