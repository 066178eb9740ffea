"""The per-folder summary printed by `media-import run`, read from the run's own events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

COLUMNS = (
    ("folder", "folder"),
    ("found", "s3_objects.found"),
    ("ignored", "s3_objects.ignored"),
    ("rejected", "rejected"),
    ("new", "new_media_files.new"),
    ("skipped", "new_media_files.skipped_already_catalogued"),
    ("deferred", "new_media_files.deferred"),
    ("inserted", "inserted"),
    ("status", "status"),
)


@dataclass
class FolderSummary:
    folder: str
    run_id: str
    success: bool
    values: dict[str, object] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    error: str | None = None

    def cell(self, source: str) -> str:
        if source == "folder":
            return self.folder
        if source == "status":
            if not self.success:
                return "FAILED"
            return "ok" if not self.failed_checks else "warnings"
        if source == "rejected":
            total = sum(
                int(self.values.get(k, 0) or 0)
                for k in ("validated_inventory.rejected", "new_media_files.rejected_files")
            )
            return str(total)
        if source == "inserted":
            if self.values.get("catalog_records.dry_run"):
                return f"({self.values.get('catalog_records.would_insert_files', 0)} dry)"
            return str(self.values.get("catalog_records.inserted_files", "-"))
        value = self.values.get(source)
        return "-" if value is None else str(value)


def summarize(folder: str, result: dg.ExecuteInProcessResult) -> FolderSummary:
    summary = FolderSummary(folder, result.run_id, result.success)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
            name = materialization.asset_key.path[-1]
            for key, value in materialization.metadata.items():
                summary.values[f"{name}.{key}"] = value.value
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:  # type: ignore[union-attr]
                summary.failed_checks.append(evaluation.check_name)  # type: ignore[union-attr]
        elif event.event_type_value == "STEP_FAILURE" and summary.error is None:
            error = event.event_specific_data.error  # type: ignore[union-attr]
            summary.error = error.message.strip().splitlines()[0] if error else "step failed"
    return summary


def render(summaries: Sequence[FolderSummary]) -> str:
    headers = [name for name, _ in COLUMNS]
    rows = [[s.cell(source) for _, source in COLUMNS] for s in summaries]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for s in summaries:
        if s.error:
            lines.append(f"{s.folder}: {s.error} (run {s.run_id})")
        elif s.failed_checks:
            lines.append(
                f"{s.folder}: checks not passed: {', '.join(sorted(set(s.failed_checks)))}"
            )
    return "\n".join(lines)
