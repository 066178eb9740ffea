"""`media-import demo` as a person sees it in a fresh project folder: a few lines of progress
and its result, no warnings, no colour codes (the output is a file here), Dagster's own logs
in .demo/dagster.log; Ctrl-C stops it all and forgets where its S3 server was."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from media_import.devstack import find_free_port

REPO = Path(__file__).resolve().parents[2]


def _project_copy(root: Path) -> Path:
    """What `dg dev` and the demo read from a clone: pyproject.toml, the package (linked),
    and dagster_home/."""
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "media_import").symlink_to(REPO / "media_import")
    (root / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    return root


def _wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text()
        if text in output:
            return output
        assert process.poll() is None, output
        time.sleep(1)
    raise AssertionError(f"{text!r} not printed within {timeout:.0f}s:\n{path.read_text()}")


def test_the_demo_prints_its_result_for_a_person(tmp_path: Path) -> None:
    root = _project_copy(tmp_path)
    console = tmp_path / "console.txt"
    env = {
        **os.environ,
        "DEMO_UI_PORT": str(find_free_port()),
        "DEMO_S3_PORT": str(find_free_port()),
    }
    script = Path(sys.executable).with_name("media-import")
    with console.open("w") as out:
        demo = subprocess.Popen(
            [str(script), "demo"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        output = _wait_for_line(console, "Press Ctrl-C", demo, timeout=400)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=120)
    lines = console.read_text().splitlines()

    before_result = lines[: lines.index("imported 6 folders")]
    assert len(before_result) <= 30, output
    assert "\x1b[" not in output and "Warning" not in output, output
    assert "catalog: 32 assets, 128 files, 34 open rejections" in lines
    assert any(line.startswith("BRD ") and line.endswith("warnings") for line in lines)
    assert "  .venv/bin/media-import demo-upload BRD" in output
    # Dagster's own logs went to the log file, the run workers' event logs included.
    log = (root / ".demo" / "dagster.log").read_text()
    assert "RUN_SUCCESS" in log and "\x1b[" not in log
    assert not (root / ".demo" / "s3.json").exists()  # a stopped demo is no running demo
    assert demo.returncode == 0 and lines[-1].startswith("stopping the UI")
