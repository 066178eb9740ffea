"""`benchmarks.run --merge`: a run over some cases keeps the others of the published results,
each dated, so a table can be brought up to date without re-running every case."""

from __future__ import annotations

import json

from benchmarks.report import render_markdown
from benchmarks.run import Case, _earlier_cases, _merged, main, write_results


def case(size: str, endpoint: str, seconds: float, measured: str = "") -> Case:
    result = {"total_seconds": seconds, "ticks": 1, "runs_requested": 0, "peak_rss_mb": 100.0}
    return Case(size, endpoint, {"nothing_changed": result}, measured)


def test_a_merge_replaces_the_cases_measured_again_and_keeps_the_rest(tmp_path):
    out = tmp_path / "benchmarks.md"
    earlier = [case("10k", "stand-in", 1.0), case("100k", "moto", 9.0), case("1M", "stand-in", 5.0)]
    write_results(out, earlier, {"run": "2026-11-22 07:22 UTC"}, "18.6")
    # Cases written before they were dated take the earlier run's date.
    kept = _earlier_cases(out)
    assert [(c.size, c.endpoint, c.measured) for c in kept] == [
        ("10k", "stand-in", "2026-11-22 07:22 UTC"),
        ("100k", "moto", "2026-11-22 07:22 UTC"),
        ("1M", "stand-in", "2026-11-22 07:22 UTC"),
    ]
    new = [case("1M", "stand-in", 4.0, "2026-12-01 22:40 UTC at commit abc1234"),
           case("100k", "stand-in", 0.5, "2026-12-01 22:45 UTC at commit abc1234")]  # fmt: skip
    merged = _merged(kept, new)
    assert [(c.size, c.endpoint) for c in merged] == [
        ("10k", "stand-in"), ("100k", "moto"), ("1M", "stand-in"), ("100k", "stand-in")
    ]  # fmt: skip
    assert merged[2].results["nothing_changed"]["total_seconds"] == 4.0
    write_results(out, merged, {"run": "2026-12-01 22:40 UTC"}, "18.6")
    text = out.read_text()
    assert "Measured 2026-11-22 07:22 UTC." in text
    assert "Measured 2026-12-01 22:40 UTC at commit abc1234." in text
    assert len(json.loads(out.with_suffix(".json").read_text())["cases"]) == 4
    assert text == render_markdown(merged, {"run": "2026-12-01 22:40 UTC", "postgresql": "18.6"})
    # --render writes the same Markdown again from the .json, measuring nothing.
    out.write_text("stale")
    assert main(["--render", "--out", str(out)]) == 0
    assert out.read_text() == text


def test_without_earlier_results_nothing_is_kept(tmp_path):
    assert _earlier_cases(tmp_path / "benchmarks.md") == []


def test_the_first_import_gets_a_table_of_its_cpu_by_phase():
    groups = {"run": 3.0, "postgres": 1.5, "s3": 0.5}
    first = {
        "load_seconds": 0.5,
        "run_seconds": 4.5,
        "phases": {"s3_objects": 1.0, "validated_inventory": 0.1, "new_media_files": 2.0,
                   "catalog_records": 1.0},
        "dagster_overhead_seconds": 0.4,
        "peak_rss_mb": 200.0,
        "metadata": {"inserted_files": 10_000},
        "cpu_seconds": {
            "total": groups,
            "phases": {"new_media_files": {"run": 2.5, "postgres": 1.0, "s3": 0.5}},
        },
    }  # fmt: skip
    text = render_markdown([Case("10k", "moto", {"first_import": first})], {})
    assert "| phase | wall s | run | PostgreSQL | S3 server | cores busy |" in text
    assert "| new files | 2.00 | 2.5 | 1.0 | 0.5 | 2.00 |" in text
    assert "| whole run | 5.00 | 3.0 | 1.5 | 0.5 | 1.00 |" in text
    # A phase shorter than a few sampling intervals: its cores busy cannot be told.
    first["cpu_seconds"]["phases"]["validated_inventory"] = {"run": 0.2, "postgres": 0.0}
    text = render_markdown([Case("10k", "moto", {"first_import": first})], {})
    assert "| validation | 0.10 | 0.2 | 0.0 | 0.0 | - |" in text
    # Results measured before CPU was sampled render without the table.
    del first["cpu_seconds"]
    text = render_markdown([Case("10k", "moto", {"first_import": first})], {})
    assert "CPU-seconds by phase" not in text
    # ...and with no client CPU per 1,000 objects either.
    assert "| 1. first import (all new) | 5.00 | 2,000 | - |" in text
