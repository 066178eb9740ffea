"""The texts of the notifications: (subject, body) pairs from plain data, Dagster-free."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from media_import.core.partition_keys import partition_key_to_folder
from media_import.db.summary import CatalogFigures

SUBJECT_PREFIX = "[media_import]"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# A bad day (a backfill against a broken bucket) can fail hundreds of runs: the e-mail lists the
# first ones and points to the UI for the rest.
MAX_LISTED_FAILURES = 50

Outcome = Literal["succeeded", "failed", "canceled", "in progress"]


@dataclass(frozen=True)
class StepError:
    step: str | None  # None: the run itself failed, outside any step
    error: str


@dataclass(frozen=True)
class FailedRun:
    job: str
    run_id: str
    message: str
    tags: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[StepError, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    job: str
    run_id: str
    outcome: Outcome
    tags: Mapping[str, str] = field(default_factory=dict)


def run_folders(tags: Mapping[str, str]) -> str | None:
    """The folder(s) a run worked on, from its partition tags; None for unpartitioned runs."""
    key = tags.get(PARTITION_TAG)
    if key:
        return partition_key_to_folder(key)
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if not (start and end):
        return None
    first, last = partition_key_to_folder(start), partition_key_to_folder(end)
    return first if first == last else f"{first} to {last}"


def run_link(ui_url: str | None, run_id: str) -> str | None:
    return f"{ui_url.rstrip('/')}/runs/{run_id}" if ui_url else None


def failure_email(run: FailedRun, ui_url: str | None = None) -> tuple[str, str]:
    decoded = run_folders(run.tags)
    folders = None if decoded is None else _one_line(decoded)
    subject = f"{SUBJECT_PREFIX} {run.job} failed" + (f": {folders}" if folders else "")
    facts = [("Job", run.job)]
    if folders is not None:
        facts.append(("Folders" if _is_range(run.tags) else "Folder", folders))
    facts.append(("Run id", run.run_id))
    link = run_link(ui_url, run.run_id)
    if link:
        facts.append(("Run", link))
    lines = [f"A run of {run.job} failed.", "", *_aligned(facts), "", run.message]
    for error in run.errors:
        where = f"Step {error.step}" if error.step else "Run"
        lines += ["", f"{where}:", _indent(error.error)]
    return subject, "\n".join(lines) + "\n"


def summary_email(
    since: datetime,
    until: datetime,
    runs: Sequence[RunOutcome],
    figures: CatalogFigures,
    ui_url: str | None = None,
) -> tuple[str, str]:
    failed = [r for r in runs if r.outcome == "failed"]
    subject = (
        f"{SUBJECT_PREFIX} daily summary {_utc(until):%Y-%m-%d}: "
        f"{len(runs)} runs, {len(failed)} failed"
    )
    lines = [
        f"Period: {_utc(since):%Y-%m-%d %H:%M} to {_utc(until):%Y-%m-%d %H:%M} UTC",
        "",
        *_runs_section(runs),
        *_failures_section(failed, ui_url),
        "",
        "Catalog:",
        *_catalog_lines(figures),
    ]
    return subject, "\n".join(lines) + "\n"


def _runs_section(runs: Sequence[RunOutcome]) -> list[str]:
    counts = {o: sum(1 for r in runs if r.outcome == o) for o in _OUTCOMES}
    rows = [(o, n) for o, n in counts.items() if n or o != "in progress"]
    return [f"Runs: {len(runs)}", *_aligned([(o, str(n)) for o, n in rows], indent="  ")]


def _failures_section(failed: Sequence[RunOutcome], ui_url: str | None) -> list[str]:
    if not failed:
        return []
    lines = ["", "Failed runs:"]
    for run in failed[:MAX_LISTED_FAILURES]:
        where = run_folders(run.tags) or "-"
        lines.append(
            f"  {run.job}  {_one_line(where)}  {run_link(ui_url, run.run_id) or run.run_id}"
        )
    if len(failed) > MAX_LISTED_FAILURES:
        lines.append(f"  ... and {len(failed) - MAX_LISTED_FAILURES} more")
    return lines


def _catalog_lines(figures: CatalogFigures) -> list[str]:
    rows = [
        ("assets imported", figures.assets_imported),
        ("files imported", figures.files_imported),
        ("assets soft-deleted", figures.assets_deleted),
        ("files soft-deleted", figures.files_deleted),
        ("rejections first seen", figures.rejections_first_seen),
        ("rejections resolved", figures.rejections_resolved),
        ("rejections open now", figures.rejections_open),
    ]
    return _aligned([(label, str(n)) for label, n in rows], indent="  ")


_OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "canceled", "in progress")


def _is_range(tags: Mapping[str, str]) -> bool:
    return PARTITION_TAG not in tags and tags.get(RANGE_START_TAG) != tags.get(RANGE_END_TAG)


def _aligned(rows: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = max((len(label) for label, _ in rows), default=0) + 1
    return [f"{indent}{label + ':':<{width + 1}}{value}" for label, value in rows]


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else "" for line in text.strip().splitlines())


def _one_line(text: str) -> str:
    # Folder names may hold line breaks (their keys percent-encode them); a header must not.
    return re.sub(r"\s+", " ", text).strip()


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
