"""CI's smoke run of the benchmark: the 10k scenarios on moto must finish and be right (their
speed is measured by hand, see docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_10k_benchmark_runs_every_scenario(tmp_path, pg_server):
    out = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.run", "--sizes", "10k", "--endpoints", "moto",
            "--no-baseline", "--database-url", pg_server.admin_url, "--out", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (case,) = json.loads(out.with_suffix(".json").read_text())["cases"]
    results = case["results"]
    first, new, same = (
        results[k] for k in ("first_import", "one_percent_new", "reimport_unchanged")
    )
    assert first["success"] and first["folders"] == 16
    assert first["metadata"]["inserted_files"] == 10_000
    assert new["metadata"]["inserted_files"] == 100  # 1% of the assets, 4 files each
    assert same["metadata"]["inserted_files"] == 0
    reconcile = results["nothing_changed"]  # a whole pass, nothing to do
    assert (reconcile["ticks"], reconcile["runs_requested"]) == (1, 0)
    single = results["single_upload"]
    assert single["success"] and single["ticks"] == 1
    assert single["metadata"]["inserted_files"] == 4  # the streaming copy completes its asset
    # The import runs' CPU by process group, in all and for each of the four phases.
    for result in (first, new, same):
        used = result["cpu_seconds"]
        assert set(used["phases"]) == set(result["phases"])
        assert used["total"]["run"] > 0 and used["total"]["postgres"] >= 0
    # PostgreSQL's share of the small runs can fall between two samples on a fast machine (a
    # backend that ends within one interval is never read); 10k inserts cannot.
    assert first["cpu_seconds"]["total"]["postgres"] > 0
    text = out.read_text()
    assert "### 10k objects, moto" in text
    assert "First import, CPU-seconds by phase" in text
