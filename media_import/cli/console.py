"""What the commands print for people: Dagster's own event logs only when asked (`--verbose`),
and no colour codes where the output is not a terminal (a file, a pipe, a cron mail)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# SGR sequences (colours, bold) and the other CSI sequences a logger may send.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class PlainText:
    """A text stream that drops colour codes on their way to another stream."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        return self._target.write(strip_ansi(text))

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextmanager
def plain_stderr_unless_terminal() -> Iterator[None]:
    """Dagster's console logger always colours; it writes to whatever sys.stderr is when it
    logs, so a stand-in stream strips the colour codes when stderr is not a terminal."""
    if is_terminal(sys.stderr):
        yield
        return
    original = sys.stderr
    sys.stderr = PlainText(original)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stderr = original


def console_log_config(verbose: bool) -> dict[str, Any]:
    """Run config for the run's console logger: Dagster's event logs (kept in the instance,
    shown in the UI either way) are printed only when verbose."""
    level = "DEBUG" if verbose else "CRITICAL"
    return {"loggers": {"console": {"config": {"log_level": level}}}}
