"""Materialisation metadata: counts an operator can scan, previews they can read."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import dagster as dg

from media_import.core.assembly import AssetPlan
from media_import.phases import Rejection

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


def folder_label(folders: Sequence[str]) -> str:
    return folders[0] if len(folders) == 1 else f"{len(folders)} folders"
