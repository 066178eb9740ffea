"""Materialisation metadata: counts an operator can scan, previews they can read."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg

from media_import.core.assembly import AssetPlan, Decision
from media_import.db.checks import Figures
from media_import.phases import Discovery, Imported, Plan, Rejection, Validation

PREVIEW_ROWS = 50

# What Markdown or HTML would take as syntax inside a table cell (`<md5>` as a tag, `*` and `_`
# as emphasis, `|` as a column break, `&lt;` as an entity): backslash-escaped, as CommonMark
# allows for any ASCII punctuation. (Block syntax such as `#` or `-` cannot start a cell.)
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>|~&])")


def _cell(value: object) -> str:
    text = re.sub(r"[\r\n]+", " ", str(value))  # one line: a newline would end the table row
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], total: int) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    shown = 0
    for row in rows:
        if shown == PREVIEW_ROWS:
            break
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        shown += 1
    if total > shown:
        lines.append(f"\n… and {total - shown} more")
    return "\n".join(lines)


def rejections_preview(rejections: Sequence[Rejection]) -> dg.MetadataValue:
    if not rejections:
        return dg.MetadataValue.md("No rejections.")
    rows = ((r.rule, r.key, r.message) for r in rejections)
    return dg.MetadataValue.md(markdown_table(("rule", "key", "message"), rows, len(rejections)))


def age_text(since: datetime | None, now: datetime | None = None) -> str:
    if since is None:
        return "?"
    seconds = int(((now or datetime.now(UTC)) - since).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def deferred_preview(plans: Sequence[AssetPlan]) -> dg.MetadataValue:
    if not plans:
        return dg.MetadataValue.md("Nothing deferred.")
    rows = (
        (p.inventory_code, p.folder, ", ".join(p.missing), age_text(p.oldest_file_at))
        for p in plans
    )
    headers = ("inventory code", "folder", "missing", "waiting for")
    return dg.MetadataValue.md(markdown_table(headers, rows, len(plans)))


def discovery_metadata(d: Discovery) -> dict[str, object]:
    return {
        "folder": d.folder,
        "found": d.found,
        "considered": d.kept,
        "ignored": sum(d.ignored.values()),
        "ignored_by_reason": dg.MetadataValue.json(dict(d.ignored)),
        "bytes": d.kept_bytes,
        # Key ranges the listing is staged in, and those that changed (so were rewritten).
        "staged_ranges": d.ranges,
        "restaged_ranges": d.ranges_restaged,
    }


def validation_metadata(v: Validation) -> dict[str, object]:
    return {
        "folder": v.folder,
        "valid": v.valid,
        "rejected": len(v.rejections),
        "rejected_by_rule": dg.MetadataValue.json(dict(v.by_rule)),
        "rejections": rejections_preview(v.rejections),
    }


def plan_metadata(p: Plan) -> dict[str, object]:
    rejections = p.rejections
    return {
        "folder": p.folder,
        "valid": p.valid,
        "skipped_already_catalogued": p.skipped,
        "new": p.new_files,
        "ready_assets": p.asset_count(Decision.IMPORT),
        "ready_files": p.files(Decision.IMPORT) + p.files(Decision.ATTACH),
        "deferred": len(p.assets(Decision.DEFERRED)),
        "rejected_assets": len(p.assets(Decision.REJECTED)),
        "rejected_files": len(rejections),
        "rejected_by_rule": dg.MetadataValue.json(dict(Counter(r.rule for r in rejections))),
        "deferred_assets": deferred_preview(p.assets(Decision.DEFERRED)),
        "rejections": rejections_preview(rejections),
        "sidecars_read": p.sidecars_read,
        "objects_hashed": p.objects_hashed,
        # Compared with the catalog whole (a first import, or after a change the scope
        # cannot vouch for), or only in the restaged key ranges read.
        "planned_whole": p.ranges_read is None,
        "restaged_ranges_planned": p.ranges_read or 0,
    }


def import_metadata(d: Imported, figures: Figures) -> dict[str, object]:
    return {
        "folder": d.folder,
        "dry_run": d.dry_run,
        "inserted_assets": d.assets_inserted,
        "inserted_files": d.files_inserted,
        "would_insert_assets": d.would_insert_assets,
        "would_insert_files": d.would_insert_files,
        # In a dry run: what the import would soft-delete.
        "soft_deleted_assets": d.assets_soft_deleted,
        "soft_deleted_files": d.files_soft_deleted,
        "rejections_recorded": d.rejections_recorded,
        "rejections_resolved": d.rejections_resolved,
        **figures.totals(),
    }
