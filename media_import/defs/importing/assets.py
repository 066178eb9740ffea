"""The import as a lineage of folder-partitioned assets:

s3_objects -> validated_inventory -> new_media_files -> catalog_records

Each asset runs one phase (media_import.phases) for the folders of its run, stages its result
in the database's `ingest` schema for the next one, and reports what happened as metadata,
folder by folder (media_import.defs.importing.folder_results). Checks are emitted by the
assets themselves (no extra step per check). None is blocking: rejections are expected in a
live archive, so their checks warn, and a safe run stops before `catalog_records` by failing
the step that found them.
"""

import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import psycopg

from media_import.concurrency import map_folders, run_together
from media_import.core.assembly import Decision
from media_import.db import checks as catalog_checks
from media_import.db.catalog import analyze_after_import, analyze_pending
from media_import.defs.importing import metadata as md
from media_import.defs.importing.folder_results import FolderResult, emit
from media_import.defs.importing.partitions import folder_partitions, folders_of
from media_import.defs.importing.resources import CatalogDatabase, ImportSettings, S3BucketResource
from media_import.defs.importing.retries import transient_retries
from media_import.phases import (
    Imported,
    Plan,
    Validation,
    analyze_discovered,
    discover_folder,
    import_folder,
    validate_folder,
)
from media_import.planning import plan_folders

GROUP = "media_import"
# A backfill of many folders runs as one run: each step loops over its folders, so Dagster's
# per-run and per-step overhead is paid once instead of once per folder. (Sensors still request
# one run per folder.) Each folder still gets its own materialisation and check results.
ONE_RUN = dg.BackfillPolicy.single_run()


# Partitioned asset checks are a preview feature of Dagster 1.13; we rely on them on purpose
# (check results per folder in the UI), so the warning repeated at every load is noise.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
# Likewise backfill_policy, beta in 1.13, which single-run backfills need.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`")


def _check(name: str, asset: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name, asset=asset, description=description, partitions_def=folder_partitions
    )


def _severity(settings: ImportSettings) -> dg.AssetCheckSeverity:
    # Rejections are expected in a live archive (operators fix them); in a safe run they are not.
    return dg.AssetCheckSeverity.ERROR if settings.safe_run else dg.AssetCheckSeverity.WARN


def _abort_safe_run(problems: int, what: str) -> None:
    raise dg.Failure(
        description=f"safe run aborted: {problems} {what}; nothing was written to the catalog.",
        allow_retries=False,
    )


@dg.asset(
    partitions_def=folder_partitions,
    backfill_policy=ONE_RUN,
    group_name=GROUP,
    kinds={"s3"},
    description="Phase 1, discovery: the folder's objects, listed once (paginated) and staged "
    "with each key's phase 1 verdict, judged once per page. Other extensions and excluded "
    "folders are counted as ignored, not rejected.",
)
def s3_objects(
    context: dg.AssetExecutionContext,
    s3: S3BucketResource,
    catalog: CatalogDatabase,
    import_settings: ImportSettings,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    bucket, rules = s3.open(), import_settings.rules()
    started = datetime.now(UTC)
    with transient_retries(context, s3.config()):
        found = map_folders(
            catalog.connect,
            folders_of(context),
            lambda conn, folder: discover_folder(bucket, conn, folder, rules),
            import_settings.folder_workers,
        )
        with catalog.connect() as conn:  # once per run: the next steps' queries need them
            analyze_discovered(conn, bucket.name, found)
    yield from emit(
        context,
        {d.folder: FolderResult(md.discovery_metadata(d)) for d in found},
        {"listing_seconds": round((datetime.now(UTC) - started).total_seconds(), 3)},
    )


@dg.asset(
    deps=[s3_objects],
    partitions_def=folder_partitions,
    backfill_policy=ONE_RUN,
    group_name=GROUP,
    kinds={"postgres"},
    check_specs=[
        _check(
            "no_rejected_files",
            "validated_inventory",
            "Every file name starts with a valid inventory code that belongs in its folder. "
            "A warning; in a safe run an error, and the run stops before catalog_records.",
        )
    ],
    description="Phase 1, validation: inventory code (^[VA][OC]-[A-Z0-9]{3}-\\d{5}$, the first "
    "12 characters of the file name) and folder rule (folder = the code's type segment, or "
    "configured mapping), as discovery judged them. Failures are rejections with a rule name.",
)
def validated_inventory(
    context: dg.AssetExecutionContext,
    catalog: CatalogDatabase,
    s3: S3BucketResource,
    import_settings: ImportSettings,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    with transient_retries(context, s3.config()), catalog.connect() as conn:
        results = [validate_folder(conn, s3.bucket, folder) for folder in folders_of(context)]
    severity = _severity(import_settings)
    yield from emit(
        context,
        {
            v.folder: FolderResult(md.validation_metadata(v), [_rejected_files_check(v, severity)])
            for v in results
        },
    )
    rejected = sum(len(v.rejections) for v in results)
    if rejected and import_settings.safe_run:
        _abort_safe_run(rejected, "file(s) failed the inventory code or folder rules")


def _rejected_files_check(v: Validation, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="no_rejected_files",
        passed=not v.rejections,
        severity=severity,
        description=f"{len(v.rejections)} file(s) rejected" if v.rejections else None,
        metadata={
            "rejected": len(v.rejections),
            "rejected_by_rule": dg.MetadataValue.json(dict(v.by_rule)),
            "preview": md.rejections_preview(v.rejections),
        },
    )


@dg.asset(
    deps=[validated_inventory],
    partitions_def=folder_partitions,
    backfill_policy=ONE_RUN,
    group_name=GROUP,
    kinds={"postgres", "s3"},
    check_specs=[
        _check(
            "no_rejected_assets",
            "new_media_files",
            "Every new asset's sidecars are readable, its container rules hold, its checksums "
            "match and its QC report is a PDF. A warning; in a safe run an error (incomplete "
            "assets count too), and the run stops before catalog_records.",
        ),
    ],
    description="Phases 2 and 3: files the catalog does not hold yet (SQL anti-join), grouped by "
    "inventory code; sidecars read concurrently, MIME type of the master derived from the "
    "ffprobe/mediainfo JSON, checksums verified. Incomplete assets are deferred, not rejected.",
)
def new_media_files(
    context: dg.AssetExecutionContext,
    catalog: CatalogDatabase,
    s3: S3BucketResource,
    import_settings: ImportSettings,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    bucket = s3.open()
    with transient_retries(context, s3.config()):
        planned = plan_folders(
            bucket,
            catalog.connect,
            s3.planning_job(catalog),
            folders_of(context),
            import_settings.folder_workers,
            import_settings.plan_processes,
            import_settings.plan_process_min_keys,
        )
        plans = planned.plans
        with catalog.connect() as conn:  # once per run, for the insert step and its checks
            analyze_pending(conn, [p.pending_change for p in plans])
    safe_run = import_settings.safe_run
    severity = _severity(import_settings)
    yield from emit(
        context,
        {
            p.folder: FolderResult(
                md.plan_metadata(p), [_rejected_assets_check(p, severity, safe_run)]
            )
            for p in plans
        },
        # Large folders planned in worker processes (media_import.planning), over the run.
        {"folders_planned_in_processes": planned.in_processes},
    )
    problems = sum(_plan_problems(p, safe_run) for p in plans)
    if problems and safe_run:
        _abort_safe_run(problems, "asset(s) rejected or incomplete")


def _plan_problems(p: Plan, safe_run: bool) -> int:
    deferred = len(p.assets(Decision.DEFERRED))
    return len(p.assets(Decision.REJECTED)) + (deferred if safe_run else 0)


def _rejected_assets_check(
    p: Plan, severity: dg.AssetCheckSeverity, safe_run: bool
) -> dg.AssetCheckResult:
    rejected, deferred = len(p.assets(Decision.REJECTED)), len(p.assets(Decision.DEFERRED))
    rejections = p.rejections
    return dg.AssetCheckResult(
        check_name="no_rejected_assets",
        passed=_plan_problems(p, safe_run) == 0,
        severity=severity,
        description=(
            f"{rejected} asset(s) rejected, {deferred} deferred" if rejected or deferred else None
        ),
        metadata={
            "rejected_assets": rejected,
            "deferred": deferred,
            "rejected_by_rule": dg.MetadataValue.json(dict(Counter(r.rule for r in rejections))),
            "preview": md.rejections_preview(rejections),
        },
    )


@dg.asset(
    deps=[new_media_files],
    partitions_def=folder_partitions,
    backfill_policy=ONE_RUN,
    group_name=GROUP,
    kinds={"postgres"},
    check_specs=[
        _check(
            "complete_assets_catalogued",
            "catalog_records",
            "Every complete and valid asset of the folder is in the catalog after the run.",
        ),
        _check(
            "unique_inventory_codes",
            "catalog_records",
            "No inventory code is catalogued twice (across folders or streaming copies).",
        ),
        _check(
            "keys_exist_in_bucket",
            "catalog_records",
            "No live catalog row points at a key missing from the bucket's latest listing.",
        ),
        _check(
            "checksums_verified",
            "catalog_records",
            "Every file listed in an .md5 sidecar was verified against its bytes.",
        ),
    ],
    description="Phase 3, insert: each ready asset with its files as one unit, in one "
    "transaction per folder (INSERT ... SELECT from the staged plan, ON CONFLICT DO NOTHING), "
    "and the folder's rejections recorded. Files gone from the bucket (or overwritten) are "
    "soft-deleted first; losing its streaming copy or .json soft-deletes the whole asset. "
    "A dry run reports what it would insert and soft-delete.",
)
def catalog_records(
    context: dg.AssetExecutionContext,
    catalog: CatalogDatabase,
    s3: S3BucketResource,
    import_settings: ImportSettings,
) -> Iterator[dg.MaterializeResult | dg.Output | dg.AssetCheckEvaluation]:
    dry_run = import_settings.dry_run
    folders = folders_of(context)
    bucket = s3.bucket
    run_id = context.run.run_id
    with transient_retries(context, s3.config()):
        done = map_folders(
            catalog.connect,
            folders,
            lambda conn, folder: import_folder(conn, bucket, folder, run_id, dry_run),
            min(import_settings.insert_workers, import_settings.folder_workers),
        )
    with transient_retries(context, s3.config()):
        # The catalog's statistics and checks on one connection, the staged plans' vacuum on
        # another: after a first import each takes seconds, and neither waits for the other.
        found, _ = run_together(
            catalog.connect,
            [
                lambda conn: _catalog_findings(conn, bucket, folders, done),
                # The carried-out plans were dropped: vacuumed away at once if they were many.
                lambda conn: analyze_pending(conn, [d.plans_dropped for d in done]),
            ],
        )
    duplicated, unverified, figures = found
    yield from emit(
        context,
        {
            d.folder: FolderResult(
                md.import_metadata(d, figures[d.folder]),
                _catalog_checks(d, duplicated[d.folder], unverified[d.folder], figures[d.folder]),
            )
            for d in done
        },
    )


def _catalog_checks(
    done: Imported,
    duplicated: list[tuple[str, int, int]],
    unverified: list[str],
    figures: catalog_checks.Figures,
) -> list[dg.AssetCheckResult]:
    """The folder's catalog checks. What its import found unlisted, and missing, answer the
    bucket and completeness checks (see phases.import_folder)."""
    return [
        _catalogued_check(done.missing, done.dry_run, done.would_insert_assets),
        dg.AssetCheckResult(
            check_name="unique_inventory_codes",
            passed=not duplicated,
            metadata={
                "duplicated": dg.MetadataValue.json(
                    [{"code": c, "folders": f, "streaming_copies": s} for c, f, s in duplicated]
                )
            },
        ),
        dg.AssetCheckResult(
            check_name="keys_exist_in_bucket",
            passed=not done.unlisted,
            metadata={
                "missing_keys": len(done.unlisted),
                "preview": dg.MetadataValue.json(done.unlisted[: md.PREVIEW_ROWS]),
            },
        ),
        dg.AssetCheckResult(
            check_name="checksums_verified",
            passed=not unverified,
            metadata={
                "verified_files": figures.verified_files,
                "unverified_files": len(unverified),
                "preview": dg.MetadataValue.json(unverified[: md.PREVIEW_ROWS]),
            },
        ),
    ]


def _catalog_findings(
    conn: psycopg.Connection, bucket: str, folders: list[str], done: list[Imported]
) -> tuple[
    dict[str, list[tuple[str, int, int]]], dict[str, list[str]], dict[str, catalog_checks.Figures]
]:
    """Duplicated codes, unverified checksums and the figures of each folder, each one statement
    over all the run's folders, planned from statistics refreshed first (so is the next
    run's anti-join)."""
    analyze_after_import(
        conn,
        sum(d.assets_inserted for d in done),
        sum(d.files_inserted for d in done),
        bucket,
        {d.folder: (d.assets_inserted, d.files_inserted) for d in done},
    )
    return (
        catalog_checks.duplicated_codes(conn, bucket, folders),
        catalog_checks.unverified_checksums(conn, bucket, folders),
        catalog_checks.folder_figures(conn, bucket, folders),
    )


def _catalogued_check(missing: list[str], dry_run: bool, would_assets: int) -> dg.AssetCheckResult:
    if dry_run:
        return dg.AssetCheckResult(
            check_name="complete_assets_catalogued",
            passed=True,
            description=f"dry run: catalog untouched; {would_assets} asset(s) would be inserted",
            metadata={"dry_run": True, "would_insert_assets": would_assets},
        )
    return dg.AssetCheckResult(
        check_name="complete_assets_catalogued",
        passed=not missing,
        metadata={
            "missing": len(missing),
            "preview": dg.MetadataValue.json(missing[: md.PREVIEW_ROWS]),
        },
    )
