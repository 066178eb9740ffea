"""The results as Markdown: the machine and versions, then one table per archive and endpoint."""

from __future__ import annotations

from typing import Any

from benchmarks.cpu import SAMPLE_SECONDS, SHORTEST_PHASE_SECONDS

SCENARIOS = (
    ("first_import", "1. first import (all new)"),
    ("one_percent_new", "2. steady state, 1% new"),
)
REIMPORT = ("reimport_unchanged", "3b. import run over an unchanged bucket")
PHASES = ("s3_objects", "validated_inventory", "new_media_files", "catalog_records")
PHASE_NAMES = dict(zip(PHASES, ("listing", "validation", "new files", "insert"), strict=True))
CPU_GROUPS = (("run", "run"), ("postgres", "PostgreSQL"), ("s3", "S3 server"))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _objects(case: Any) -> int:
    return {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}[case.size]


def _import_row(name: str, r: dict[str, Any], objects: int) -> str:
    total = r["load_seconds"] + r["run_seconds"]
    phases = " | ".join(_s(r["phases"].get(p)) for p in PHASES)
    meta = r.get("metadata", {})
    inserted = meta.get("inserted_files", "-")
    return (
        f"| {name} | {total:.2f} | {objects / total:,.0f} | {_client_cpu(r, objects)} | "
        f"{phases} | {_s(r['dagster_overhead_seconds'])} | {r['peak_rss_mb']:.0f} | {inserted} |"
    )


def _client_cpu(r: dict[str, Any], objects: int) -> str:
    """The importer's own CPU-seconds (its run process and planning workers, not PostgreSQL's
    or the S3 server's) per 1,000 objects in the bucket."""
    used = r.get("cpu_seconds", {}).get("total", {}).get("run")
    return "-" if used is None else f"{used / objects * 1000:.3f}"


def _total_seconds(r: dict[str, Any]) -> float:
    return float(r.get("total_seconds") or r["load_seconds"] + r["run_seconds"])


TARGETS = (
    ("first_import", "first import", 90.0, "s"),
    ("one_percent_new", "1% new", 15.0, "s"),
    ("nothing_changed", "reconciliation pass, nothing changed", 10.0, "s"),
)


def render_targets(case: Any) -> list[str]:
    """The production-shaped case against its targets."""
    lines = [
        f"## Targets: {case.size} objects, {case.endpoint}",
        "",
        "| | target | measured | client CPU s per 1,000 objects | |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    objects = _objects(case)
    peak = 0.0
    for key, name, target, unit in TARGETS:
        r = case.results.get(key)
        if not r:
            continue
        seconds = _total_seconds(r)
        peak = max(peak, r["peak_rss_mb"])
        met = "met" if seconds < target else "**not met**"
        lines.append(
            f"| {name} | < {target:g} {unit} | {seconds:.1f} {unit} | "
            f"{_client_cpu(r, objects)} | {met} |"
        )
    met = "met" if peak < 1024 else "**not met**"
    lines += [f"| peak memory (any of them) | < 1,024 MB | {peak:.0f} MB | | {met} |", ""]
    return lines


def render_case(case: Any) -> list[str]:
    objects = _objects(case)
    lines = [
        f"### {case.size} objects, {case.endpoint}",
        "",
        *([f"Measured {case.measured}.", ""] if getattr(case, "measured", "") else []),
        "| scenario | total s | objects/s | client CPU s / 1k objects | listing s | "
        "validation s | new files s | insert s | Dagster overhead s | peak MB | files inserted |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, name in SCENARIOS:
        if key in case.results:
            lines.append(_import_row(name, case.results[key], objects))
    same = case.results.get("nothing_changed")
    if same:
        lines.append(
            f"| 3. nothing changed: one reconciliation pass | {same['total_seconds']:.2f} | "
            f"{objects / same['total_seconds']:,.0f} | {_client_cpu(same, objects)} | "
            f"{same['ticks']} tick(s), {same['runs_requested']} run(s) requested | | | | | "
            f"{same['peak_rss_mb']:.0f} | 0 |"
        )
    if REIMPORT[0] in case.results:
        lines.append(_import_row(REIMPORT[1], case.results[REIMPORT[0]], objects))
    single = case.results.get("single_upload")
    if single:
        lines.append(
            f"| 4. single upload via the sensor | {single['total_seconds']:.2f} | - | - | "
            f"detect {single['detect_seconds']:.2f} ({single['ticks']} tick(s)) | | | "
            f"run {single['run_seconds']:.2f} | | {single['peak_rss_mb']:.0f} | "
            f"{single.get('metadata', {}).get('inserted_files', '-')} |"
        )
    lines += _cpu_table(case.results.get("first_import", {}))
    base = case.results.get("baseline_first_import")
    if base:
        first = case.results["first_import"]
        ours = first["load_seconds"] + first["run_seconds"]
        t = base["timings"]
        lines += [
            "",
            f"Baseline (the original importer's approach), first import: "
            f"**{base['total_seconds']:.2f} s** ({objects / base['total_seconds']:,.0f} objects/s; "
            f"list {t['list']:.2f}, validate {t['validate']:.2f}, "
            f"load catalogued {t['load_catalogued']:.2f}, sidecars {t['read_sidecars']:.2f}, "
            f"insert {t['insert']:.2f}; peak {base['peak_rss_mb']:.0f} MB). "
            f"media_import is **{base['total_seconds'] / ours:.1f}x** faster, side by side.",
        ]
    return [*lines, ""]


def _cpu_table(first: dict[str, Any]) -> list[str]:
    """The first import's CPU-seconds by phase and process group (benchmarks.cpu)."""
    used = first.get("cpu_seconds")
    if not used:
        return []
    names = " | ".join(label for _, label in CPU_GROUPS)
    lines = [
        "",
        "First import, CPU-seconds by phase: *run* is the run's process and its planning "
        "workers; *cores busy* is all three over the phase's wall time (2 at most here). "
        f"Sampled every {SAMPLE_SECONDS:g} s: a phase under {SHORTEST_PHASE_SECONDS:g} s has "
        "rough CPU figures and no *cores busy*.",
        "",
        f"| phase | wall s | {names} | cores busy |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [
        (PHASE_NAMES[p], first["phases"].get(p), used["phases"][p])
        for p in PHASES
        if p in used["phases"]
    ]
    rows.append(("whole run", first["load_seconds"] + first["run_seconds"], used["total"]))
    for name, wall, groups in rows:
        cells = " | ".join(f"{groups.get(g, 0.0):.1f}" for g, _ in CPU_GROUPS)
        busy = (
            f"{sum(groups.values()) / wall:.2f}" if wall and wall >= SHORTEST_PHASE_SECONDS else "-"
        )
        lines.append(f"| {name} | {_s(wall)} | {cells} | {busy} |")
    return lines


def render_markdown(cases: list[Any], info: dict[str, str]) -> str:
    head = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.run` (see the README); do not edit by hand.",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "media_import runs through Dagster: the import job over every folder as one run (what a "
        "single-run backfill does), in its own process. *total* includes loading the "
        "definitions; the phases are the four assets' step times; *Dagster overhead* is the "
        "run's time outside them; *peak MB* is the run's maximum resident set: its process "
        "together with its planning worker processes, where it starts them; *client CPU* is "
        "the CPU-seconds the importer itself used (its run process and planning workers; not "
        "PostgreSQL's or the S3 server's), per 1,000 objects in the bucket.",
        "",
    ]
    # The production shape first: AWS-like latency, the largest archive.
    ordered = sorted(cases, key=lambda c: ("ms/LIST" not in c.endpoint, -_objects(c)))
    headline = [c for c in ordered if "ms/LIST" in c.endpoint and c.size == "1M"]
    targets = render_targets(headline[0]) if headline else []
    body = [line for case in ordered for line in render_case(case)]
    return "\n".join(head + targets + body)


LATENCY_PARTS = (
    ("total", "upload to catalog row"),
    ("detect", "detect: until a sensor requested the run"),
    ("queue_launch", "queue and launch: until the run started in its process"),
    ("run", "run: until the row was there"),
)


def render_demo_latency(results: dict[str, Any]) -> list[str]:
    """The section of `python -m benchmarks.demo_latency`'s results (docs/demo_latency.json)."""
    summary = results["summary"]
    interval = results["sensor_interval_seconds"]
    lines = [
        "### Demo: upload to catalog",
        "",
        f"Measured {results['measured']} by `python -m benchmarks.demo_latency`: "
        f"{results['uploads']} uploads of a complete asset into the demo's BRD/ (its stack: "
        f"`dg dev` with its daemon, sensors every {interval:g} s, moto's S3 and SQS, the "
        "embedded PostgreSQL), each at a random moment of the sensors' cycle, timed from the "
        "start of the upload to the asset's catalog row.",
        "",
        "| part | median s | 95th percentile s | max s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, label in LATENCY_PARTS:
        part = summary[key]
        lines.append(f"| {label} | {part['median']:.2f} | {part['p95']:.2f} | {part['max']:.2f} |")
    load = results.get("load_average")
    if load:
        lines += [
            "",
            f"The machine's load average (1 min) was {load[0]:.1f} when the uploads began and "
            f"{load[1]:.1f} when they ended: the run's process start, the larger part of *queue "
            "and launch*, slows with a busy machine.",
        ]
    return lines
