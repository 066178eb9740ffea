"""The importer's phases as plain functions over a bucket and a connection.

Assets (and the CLI, sensors and benchmarks through them) call these; nothing here knows
Dagster, so each phase can be run and tested directly against a bucket and a database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from media_import.core.assembly import (
    AssetPlan,
    Decision,
    Reads,
    files_to_hash,
    group_candidates,
    plan_group,
    sidecar_reads,
)
from media_import.core.inventory import Rules
from media_import.core.storage import Bucket
from media_import.db import catalog, checks, listing, scope, watch
from media_import.gc_pause import gc_paused
from media_import.watch import discovery


@dataclass(frozen=True)
class Rejection:
    key: str
    inventory_code: str | None
    rule: str
    message: str


# -- phase 1: discovery ----------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    folder: str
    found: int
    kept: int
    kept_bytes: int
    ignored: Counter[str]
    ranges: int = 0  # key ranges the folder's listing is staged in
    ranges_restaged: int = 0  # of which changed, so judged, rewritten and diffed again
    rows_written: int = 0  # staged rows rewritten (see analyze_discovered)
    seen_changed: int = 0  # seen objects the listing changed


def discover_folder(
    bucket: Bucket,
    conn: psycopg.Connection,
    folder: str,
    rules: Rules,
    range_keys: int = discovery.RANGE_KEYS,
) -> Discovery:
    """List the folder once and stage the listing with the verdicts, range by range: only the
    key ranges whose objects changed since the folder's last listing are judged (vectorised),
    rewritten and diffed against the sensors' seen objects (media_import.watch.discovery).
    Every object is staged, ignored ones included, so that removals are judged against the
    whole bucket: a catalogued file whose extension is no longer allowed has not left the
    bucket and must not be soft-deleted. The listing also reconciles the sensors' view of the
    folder, so they do not ask for another run for what this one imports (and do ask if this
    one fails)."""
    # Read before listing: whatever the sensors saw change up to now is in this listing.
    generation = watch.current_generation(conn, bucket.name, folder)
    # Its previous listing's ranges cut this one, so their pages are fetched side by side.
    bounds = [r.upto for r in listing.staged_ranges(conn, bucket.name, folder) if r.upto]
    staged = discovery.stage_folder(
        bucket.list_folder(folder, bounds),
        conn,
        bucket.name,
        folder,
        rules,
        generation,
        datetime.now(UTC),
        range_keys,
    )
    return Discovery(
        folder,
        staged.found,
        staged.kept,
        staged.kept_bytes,
        staged.ignored,
        staged.ranges,
        staged.ranges_restaged,
        staged.rows_written,
        staged.seen_changed,
    )


def analyze_discovered(conn: psycopg.Connection, bucket_name: str, found: list[Discovery]) -> None:
    """After a run's discovery of all its folders, once: refresh the statistics of the staged
    listing and the seen objects if the run rewrote a tenth of them, or filled a folder they
    do not know of. Every later step queries them folder by folder, and a folder taken for
    empty had its anti-join planned as nested loops (4.8 s instead of 60 ms a 6k-key folder)."""
    listing.analyze_staged(conn, bucket_name, {d.folder: (d.rows_written, d.found) for d in found})
    watch.analyze_seen_if_grown(
        conn,
        sum(d.seen_changed for d in found),
        {d.folder: d.kept for d in found if d.seen_changed},
        bucket_name,
    )


# -- phase 1: validation -----------------------------------------------------------------------


@dataclass(frozen=True)
class Validation:
    folder: str
    valid: int
    rejections: list[Rejection]

    @property
    def by_rule(self) -> Counter[str]:
        return Counter(r.rule for r in self.rejections)


def validate_folder(conn: psycopg.Connection, bucket_name: str, folder: str) -> Validation:
    """The inventory code and folder rules' verdicts on the folder, as discovery staged them
    (the inventory is a view of the listing's considered keys)."""
    rejections = [
        Rejection(r.key, r.inventory_code, r.rule, r.message)
        for r in listing.rejected(conn, bucket_name, folder)
    ]
    return Validation(folder, listing.count_valid(conn, bucket_name, folder), rejections)


# -- phase 2 + 3: what is new, and whether it can be imported --------------------------------


@dataclass(frozen=True)
class Plan:
    """What phases 2 and 3 decided for a folder. The plans of assets being imported are staged
    in the database and only counted here: a run over many folders keeps each folder's
    technical metadata only while that folder is planned (at 1M objects, holding them all
    took 3 GB)."""

    folder: str
    valid: int
    new_files: int
    plans: list[AssetPlan] = field(default_factory=list)  # all but the cleanly ready ones
    sidecars_read: int = 0
    objects_hashed: int = 0
    asset_counts: Counter[Decision] = field(default_factory=Counter)
    file_counts: Counter[Decision] = field(default_factory=Counter)
    # Rows of the pending tables the staged plan changed (see catalog.analyze_pending).
    pending_change: catalog.PendingChange = field(default_factory=catalog.PendingChange)
    # The restaged key ranges the plan read (media_import.db.scope); None: the whole folder.
    ranges_read: int | None = None

    @property
    def skipped(self) -> int:
        """Valid files already in the catalog (sidecars included)."""
        return self.valid - self.new_files

    def assets(self, decision: Decision) -> list[AssetPlan]:
        """The deferred, rejected or attaching assets (ready ones: see `asset_count`)."""
        return [p for p in self.plans if p.decision is decision]

    def asset_count(self, decision: Decision) -> int:
        return self.asset_counts[decision]

    def files(self, decision: Decision) -> int:
        return self.file_counts[decision]

    @property
    def rejections(self) -> list[Rejection]:
        return [
            Rejection(f.key, f.inventory_code, str(f.rule), f.message or "")
            for p in self.plans
            for f in p.files
            if f.decision is Decision.REJECTED
        ]


def plan_folder(
    bucket: Bucket, conn: psycopg.Connection, folder: str, now: datetime | None = None
) -> Plan:
    """Anti-join the folder's valid files against the catalog, read the new sidecars
    concurrently, and decide per inventory code: import, attach, defer or reject."""
    now = now or datetime.now(UTC)
    with gc_paused():  # all of it acyclic: see media_import.gc_pause
        # The whole folder, or only what can have changed since its last import.
        reach = scope.folder_scope(conn, bucket.name, folder)
        candidates = catalog.read_candidates(conn, bucket.name, folder, reach)
        groups = group_candidates(candidates.files, candidates.catalogued_folders)
        bodies = bucket.read_many(sidecar_reads(groups))
        to_hash = files_to_hash(groups, bodies)
        reads = Reads(bodies=bodies, md5s=bucket.md5_many(to_hash))
        plans = [plan_group(g, reads, now) for g in groups]
        pending = catalog.replace_pending(conn, bucket.name, folder, plans, reach)
        new_files = sum(1 for c in candidates.files if c.is_new)
        kept = [p for p in plans if not _cleanly_ready(p)]
        asset_counts = Counter(p.decision for p in plans)
        file_counts = Counter(f.decision for p in plans for f in p.files)
        sidecars_read, hashed = len(bodies), len(to_hash)
        # Freed before the collector is back: the first collection after the pause scans every
        # container still alive, and a 62.5k-key folder's plans and parsed documents are about
        # a million of them (~0.1 s a folder, sampled with py-spy).
        del candidates, groups, bodies, to_hash, reads, plans
    return Plan(
        folder,
        listing.count_valid(conn, bucket.name, folder),
        new_files,
        kept,
        sidecars_read,
        hashed,
        asset_counts,
        file_counts,
        pending,
        None if reach.ranges is None else len(reach.ranges),
    )


def _cleanly_ready(plan: AssetPlan) -> bool:
    return plan.decision is Decision.IMPORT and all(
        f.decision is Decision.IMPORT for f in plan.files
    )


# -- phase 3: insert ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    folder: str
    dry_run: bool
    assets_inserted: int
    files_inserted: int
    would_insert_assets: int
    would_insert_files: int
    rejections_recorded: int = 0
    rejections_resolved: int = 0
    assets_soft_deleted: int = 0
    files_soft_deleted: int = 0
    # Live catalog rows whose key the folder's latest listing does not hold, after the import
    # (in a dry run: those the import would soft-delete as removed), by key.
    unlisted: list[str] = field(default_factory=list)
    # Codes and keys the plan made ready that the catalog does not hold after the import.
    missing: list[str] = field(default_factory=list)
    # The carried-out plans dropped after the import (see catalog.analyze_pending).
    plans_dropped: catalog.PendingChange = field(default_factory=catalog.PendingChange)


def import_folder(
    conn: psycopg.Connection, bucket_name: str, folder: str, run_id: str, dry_run: bool
) -> Imported:
    """Insert what the plan made ready; a dry run only counts it."""
    if dry_run:
        catalog.check_plan(conn, bucket_name, folder)
        ready = catalog.count_ready(conn, bucket_name, folder)
        gone = catalog.gone_files(conn, bucket_name, folder)
        would = catalog.would_soft_delete(conn, bucket_name, folder, gone)
        return Imported(
            folder, True, 0, 0, ready.assets, ready.files,
            assets_soft_deleted=would.assets, files_soft_deleted=would.files,
            unlisted=[g.key for g in gone if g.reason == "removed"],
        )  # fmt: skip
    # One transaction, so one hold of the folder's lock: the import, the check that it holds
    # what the plan made ready, and the drop of the plans it carried out.
    with conn.transaction():
        counts = catalog.import_pending(conn, bucket_name, folder, run_id)
        missing = _missing_after_import(conn, bucket_name, folder, counts)
        dropped = catalog.drop_carried_out(conn, bucket_name, folder)
        # In step: the next plan reads only what changes from here (media_import.db.scope).
        scope.record_import(conn, bucket_name, folder, complete=not missing)
    # The sensors stop asking for this folder until they see it change again.
    watch.mark_imported(conn, bucket_name, folder, run_id)
    return Imported(
        folder,
        False,
        counts.assets_inserted,
        counts.files_inserted,
        counts.ready.assets,
        counts.ready.files,
        counts.rejections_recorded,
        counts.rejections_resolved,
        counts.assets_soft_deleted,
        counts.files_soft_deleted,
        counts.unlisted,
        missing,
        dropped,
    )


def _missing_after_import(
    conn: psycopg.Connection, bucket_name: str, folder: str, counts: catalog.ImportCounts
) -> list[str]:
    """What the plan made ready and the catalog lacks. When the insert wrote every ready row
    (inserted or restored: each is live now), nothing can be, and the catalog is not read
    again; otherwise the ready rows are looked up (a live row the insert did not overwrite is
    there, not missing)."""
    ready = counts.ready
    if counts.assets_inserted == ready.assets and counts.files_inserted == ready.files:
        return []
    return checks.missing_from_catalog(conn, bucket_name, {folder: ready.assets + ready.files})
