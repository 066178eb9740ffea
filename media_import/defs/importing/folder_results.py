"""Each folder's own results, also when one run imports several (a single-run backfill).

A step over several folders materialises one partition per folder. Its metadata goes to each
partition through `add_asset_metadata(..., partition_key=...)`, so every folder's page shows
that folder's counts; only figures about the run as a whole go on the `MaterializeResult`,
shared by all its partitions. An `AssetCheckResult` has no partition in Dagster 1.13 (a step
over a range evaluates it once, for no partition), so such a step reports each folder's check
outcome as an `AssetCheckEvaluation` of that folder's partition, pointing at the partition's
materialisation (the UI counts a partition's check as current only then) and yields each
check's (empty) output itself, all as Dagster does for an `AssetCheckResult`; a step over one
folder returns plain `AssetCheckResult`s.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

# Not exported by Dagster 1.13, which builds it only for an AssetCheckResult of a step over one
# partition; a step over several builds it here, the same way.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from media_import.core.partition_keys import folder_to_partition_key


@dataclass(frozen=True)
class FolderResult:
    """One folder's materialisation metadata and check outcomes."""

    metadata: Mapping[str, Any]
    checks: Sequence[dg.AssetCheckResult] = field(default_factory=list)


def emit(
    context: dg.AssetExecutionContext,
    results: Mapping[str, FolderResult],
    run_metadata: Mapping[str, Any] | None = None,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    """The step's events for `results` (folder -> its result, in the run's order)."""
    for folder, result in results.items():
        context.add_asset_metadata(
            dict(result.metadata), partition_key=folder_to_partition_key(folder)
        )
    if len(results) == 1:
        (only,) = results.values()
        yield dg.MaterializeResult(metadata=run_metadata, check_results=only.checks)
        return
    yield dg.MaterializeResult(metadata=run_metadata)
    selected = context.assets_def.check_specs_by_output_name
    for output_name in selected:
        yield dg.Output(None, output_name=output_name)
    specs = {spec.name: spec for spec in selected.values()}
    for folder, result in results.items():
        target = _materialization(context, folder_to_partition_key(folder))
        for check in result.checks:
            spec = specs.get(check.check_name or "")
            if spec is None:
                continue  # not selected in this run
            yield dg.AssetCheckEvaluation(
                asset_key=spec.asset_key,
                check_name=spec.name,
                passed=check.passed,
                metadata=check.metadata,
                severity=check.severity,
                description=check.description,
                blocking=spec.blocking,
                partition=folder_to_partition_key(folder),
                target_materialization_data=target,
            )


def _materialization(
    context: dg.AssetExecutionContext, partition: str
) -> TargetMaterialization | None:
    """The partition's latest materialisation: the one this step just recorded."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return TargetMaterialization(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
