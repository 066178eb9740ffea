"""The per-folder summary printed by `media-import run` and the demo: from a run's own events,
or from each folder's latest materialisations in the instance (whatever run made them)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from media_import.core.partition_keys import folder_to_partition_key

IMPORT_ASSETS = ("s3_objects", "validated_inventory", "new_media_files", "catalog_records")

# (header, source): a source is "<asset>.<metadata key>" or one of the computed cells below.
COLUMNS = (
    ("folder", "folder"),
    ("found", "s3_objects.found"),
    ("ignored", "s3_objects.ignored"),
    ("rejected", "rejected"),
    ("new", "new_media_files.new"),
    ("skipped", "new_media_files.skipped_already_catalogued"),
    ("deferred", "new_media_files.deferred"),
    ("inserted", "inserted"),
    ("soft-deleted", "soft_deleted"),
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

    @property
    def dry_run(self) -> bool:
        return bool(self.values.get("catalog_records.dry_run"))

    def _int(self, source: str) -> int:
        return int(self.values.get(source, 0) or 0)  # type: ignore[call-overload]

    @property
    def rejected(self) -> int:
        return self._int("validated_inventory.rejected") + self._int(
            "new_media_files.rejected_files"
        )

    @property
    def deferred(self) -> int:
        return self._int("new_media_files.deferred")

    @property
    def inserted(self) -> int:
        key = "would_insert_files" if self.dry_run else "inserted_files"
        return self._int(f"catalog_records.{key}")

    @property
    def soft_deleted(self) -> int:
        return self._int("catalog_records.soft_deleted_files")

    @property
    def status(self) -> str:
        if not self.success:
            return "FAILED"
        return "ok" if not self.failed_checks else "warnings"

    def cell(self, source: str) -> str:
        if source == "folder":
            return self.folder
        if source == "status":
            return self.status
        if source == "rejected":
            return str(self.rejected)
        if source in ("inserted", "soft_deleted"):
            if "catalog_records.dry_run" not in self.values:
                return "-"  # the insert step did not run
            count = self.inserted if source == "inserted" else self.soft_deleted
            return f"({count} dry)" if self.dry_run else str(count)
        value = self.values.get(source)
        return "-" if value is None else str(value)

    def as_dict(self) -> dict[str, object]:
        """The figures a script reads (`--json`)."""
        numbers = {
            header: self.values.get(source)
            for header, source in COLUMNS
            if "." in source and self.values.get(source) is not None
        }
        return {
            "folder": self.folder,
            "status": self.status,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            **numbers,
            "rejected": self.rejected,
            "inserted_files": self.inserted,
            "soft_deleted_files": self.soft_deleted,
            "failed_checks": sorted(set(self.failed_checks)),
            "error": self.error,
        }


def summarize(folder: str, result: dg.ExecuteInProcessResult) -> FolderSummary:
    summary = FolderSummary(folder, result.run_id, result.success)
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
            _add_metadata(summary, materialization)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:  # type: ignore[union-attr]
                summary.failed_checks.append(evaluation.check_name)  # type: ignore[union-attr]
        elif event.event_type_value == "STEP_FAILURE" and summary.error is None:
            summary.error = _failure_text(event)
    return summary


def latest_summaries(instance: dg.DagsterInstance, folders: Iterable[str]) -> list[FolderSummary]:
    """Each folder's latest materialisations and check results, as recorded in the instance."""
    return [_latest(instance, folder) for folder in folders]


def _latest(instance: dg.DagsterInstance, folder: str) -> FolderSummary:
    partition = folder_to_partition_key(folder)
    summary = FolderSummary(folder, run_id="", success=True)
    runs: dict[str, str] = {}  # asset -> the run of its latest materialisation of the folder
    for asset in IMPORT_ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]),
            limit=1,
        ).records
        if records and records[0].asset_materialization is not None:
            _add_metadata(summary, records[0].asset_materialization)
            summary.run_id = runs[asset] = records[0].run_id
    summary.failed_checks = _failed_checks(instance, runs, partition)
    return summary


def _failed_checks(instance: dg.DagsterInstance, runs: dict[str, str], partition: str) -> list[str]:
    """The checks of the folder's partition that failed in the runs of its latest
    materialisations (each asset emits its own checks)."""
    failed = set()
    for run_id in set(runs.values()):
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data  # type: ignore[union-attr]
            asset = evaluation.asset_key.path[-1]  # type: ignore[union-attr]
            if (
                runs.get(asset) == run_id
                and evaluation.partition == partition  # type: ignore[union-attr]
                and not evaluation.passed  # type: ignore[union-attr]
            ):
                failed.add(evaluation.check_name)  # type: ignore[union-attr]
    return sorted(failed)


def _add_metadata(summary: FolderSummary, materialization: dg.AssetMaterialization) -> None:
    name = materialization.asset_key.path[-1]
    for key, value in materialization.metadata.items():
        summary.values[f"{name}.{key}"] = value.value


def _failure_text(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    user = data.user_failure_data if data else None
    if user and user.description:
        return user.description.strip().splitlines()[0]
    error = data.error if data else None
    return error.message.strip().splitlines()[0] if error else "step failed"


def render(summaries: Sequence[FolderSummary]) -> str:
    headers = [name for name, _ in COLUMNS]
    rows = [[s.cell(source) for _, source in COLUMNS] for s in summaries]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    for s in summaries:
        if s.error:
            lines.append(f"{s.folder}: {s.error} (run {s.run_id}; its logs are in the UI)")
        elif s.failed_checks:
            lines.append(
                f"{s.folder}: checks not passed: {', '.join(sorted(set(s.failed_checks)))}"
            )
    return "\n".join(lines)


def render_json(summaries: Sequence[FolderSummary]) -> str:
    return json.dumps([s.as_dict() for s in summaries], indent=2, default=str)
