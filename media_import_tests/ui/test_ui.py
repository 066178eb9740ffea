"""The Dagster UI as an operator sees it, in headless Chromium, after a single-run backfill of
the sample archive's six folders: the asset graph, a folder's `new_media_files` partition
(its own counts, its rejections with their full text) and the checks (none shown blocking)."""

from __future__ import annotations

import re
from typing import Any

import dagster as dg
import pytest

from media_import.cli.summary import latest_summaries
from media_import.core.checksums import ChecksumFileError, parse_md5sum
from media_import_tests.ui.conftest import screenshot

pytestmark = pytest.mark.ui

IMPORT_ASSETS = ("s3_objects", "validated_inventory", "new_media_files", "catalog_records")


def _text(page: Any) -> str:
    """The page's visible text, whitespace as the browser renders it (runs collapsed)."""
    return " ".join(page.inner_text("body").split())


def _md5sum_message_start() -> str:
    with pytest.raises(ChecksumFileError) as raised:
        parse_md5sum("not md5sum\n")
    return " ".join(str(raised.value).split()).split(": ", 1)[
        0
    ]  # "line 1 is not '<md5> <file name>'"


def _open(page: Any, url: str, shows: str, name: str) -> str:
    """Go to `url`, wait until `shows` is on the page, keep a screenshot; the page's text.
    (The screenshot is taken whatever happens: it shows what went wrong.)"""
    page.goto(url)
    try:
        page.get_by_text(shows).first.wait_for()
        page.wait_for_timeout(1000)  # the rest of the page's queries
    finally:
        screenshot(page, name)
    return _text(page)


def test_the_asset_graph_shows_the_import_lineage(ui_stack: str, page: Any) -> None:
    text = _open(page, f"{ui_stack}/asset-groups", "catalog_records", "1-asset-graph")
    for name in IMPORT_ASSETS:
        assert name in text


def test_a_folders_partition_shows_its_own_counts_and_full_rejection_messages(
    ui_stack: str, page: Any
) -> None:
    brd, file = latest_summaries(dg.DagsterInstance.get(), ["BRD", "FILE"])
    url = f"{ui_stack}/assets/new_media_files?view=partitions&partition="
    text = _open(page, f"{url}BRD", "rejected_by_rule", "2-new_media_files-BRD")

    # Each partition has its folder's figures, not the run's (the run imported six folders).
    assert re.search(r"\bfolder BRD\b", text), text[:3000]
    assert f"new {brd.values['new_media_files.new']} " in text
    assert f"deferred {brd.deferred} " in text
    # The rejections table keeps every character of the message, placeholders included.
    assert _md5sum_message_start() in text, text[:4000]

    other = _open(page, f"{url}FILE", "rejected_by_rule", "3-new_media_files-FILE")
    assert re.search(r"\bfolder FILE\b", other)
    assert f"new {file.values['new_media_files.new']} " in other
    assert brd.values["new_media_files.new"] != file.values["new_media_files.new"]
    assert "No rejections." in other


def test_the_checks_are_shown_per_folder_and_none_as_blocking(ui_stack: str, page: Any) -> None:
    url = f"{ui_stack}/assets/new_media_files?view=checks"
    text = _open(page, url, "no_rejected_assets", "4-new_media_files-checks")
    assert "This is a non-blocking asset check." in text, text[:3000]

    page.locator("button[role=tab]", has_text="Partitions").click()  # the check's own tab
    page.wait_for_timeout(2000)
    screenshot(page, "5-no_rejected_assets-partitions")
    text = _text(page)
    # Every folder's check evaluated against its own materialisation: BRD, CAS, DAT, DVD and
    # VHS have rejections (a warning), FILE none.
    assert "Missing (0)" in text and "Failed (5)" in text and "Passed (1)" in text, text[:3000]


def test_the_backfill_dialog_backfills_each_asset_in_one_run(ui_stack: str, page: Any) -> None:
    """Assets -> the four import assets -> Materialize selected -> all partitions: Dagster's
    preview lists the one policy the four share. (Dagster 1.13's dialog still notes 'varying
    backfill policies' above it: it compares the assets' policy objects as received, which
    differ whenever several assets are chosen, whatever their policies.)"""
    _open(page, f"{ui_stack}/assets", "validated_inventory", "6-assets")
    for name in IMPORT_ASSETS:
        # The row's checkbox: its input is hidden behind the box a person clicks.
        page.get_by_test_id(f"checkbox-{name}").locator("xpath=..").click()
    page.get_by_role("button", name="Materialize selected").click()
    dialog = page.get_by_role("dialog").first
    dialog.get_by_text("Partition selection").wait_for()
    dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_role("button", name="Preview").click()
    try:
        page.get_by_text("Backfill preview").wait_for()
        page.wait_for_timeout(1000)
    finally:
        screenshot(page, "7-backfill-preview")
    rows = " ".join(page.get_by_role("dialog").last.inner_text().split())
    for name in IMPORT_ASSETS:
        assert f"{name} Backfills all partitions in a single run" in rows, rows
