"""An asyncio event loop running in a thread of its own, for sync facades over async libraries.

Coroutines submitted from any thread run on that loop; the caller blocks for the result. Keeping
one loop per facade (rather than `asyncio.run` per call) lets connections outlive a single call,
and works whether or not the calling thread runs an event loop itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A daemon thread running an event loop until `close()`."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (re-raising its exception).

        On `timeout` the coroutine is cancelled and `TimeoutError` raised.
        """
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("the event loop of this connection is closed")
        if timeout is not None:
            coro = asyncio.wait_for(coro, timeout)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        """Cancel what still runs, stop the loop and join its thread; idempotent."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            self.run(_cancel_other_tasks())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
