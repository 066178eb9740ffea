"""`media-import backfill`: queue an import of historical folders for the daemon to run.

The folders become partitions (registered first, so a folder never imported is accepted), and
Dagster's own `dagster job backfill` submits one run per folder to the instance's run queue:
the runs are tagged with the backfill, respect the queue's limits (one run per folder, backfills
below sensor imports) and show in the UI like a backfill launched there. Repeating a backfill is
safe: an import of an already imported folder inserts nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from media_import.cli.console import is_terminal, strip_ansi
from media_import.cli.importing import choose_folders, instance_from_env
from media_import.core.partition_keys import folder_to_partition_key
from media_import.settings import SettingsError


def submit_backfill(folders: list[str], workspace: Path, verbose: bool = False) -> int:
    """Register the folders and submit the backfill; returns the dagster command's exit code.
    The command's own output (its code server's log lines) is printed only when verbose, or
    when it fails."""
    if not workspace.is_file():
        raise SettingsError(f"workspace file {workspace} not found (run from the project folder)")
    chosen = choose_folders(folders)
    instance = instance_from_env()

    from media_import.defs.importing.jobs import IMPORT_JOB_NAME
    from media_import.defs.importing.partitions import register_folders

    register_folders(instance, chosen)
    keys = ",".join(folder_to_partition_key(f) for f in chosen)  # commas are percent-encoded
    command = [
        sys.executable, "-m", "dagster", "job", "backfill",
        "-w", str(workspace), "-j", IMPORT_JOB_NAME, "--location", "media_import",
        "--partitions", keys, "--noprompt",
        "--tags", json.dumps({"media_import/launched_by": "cli"}),
    ]  # fmt: skip
    print(f"backfilling {len(chosen)} folder(s): {', '.join(chosen)}", flush=True)
    done = subprocess.run(
        command,
        env=os.environ.copy(),
        cwd=workspace.parent,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = done.stdout if is_terminal(sys.stdout) else strip_ansi(done.stdout)
    if verbose:
        print(output, end="")
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-20:])
        print(f"{tail}\nmedia-import: dagster job backfill failed", file=sys.stderr)
        return done.returncode
    launched = re.search(r"Launched backfill job `([^`]+)`", strip_ansi(done.stdout))
    name = f" (backfill {launched.group(1)})" if launched else ""
    print(f"queued{name}: the daemon (dg dev, or dagster-daemon run) starts the runs")
    return 0
