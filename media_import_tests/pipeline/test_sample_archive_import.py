"""The whole sample archive through the real job: every folder, every described defect."""

from __future__ import annotations

import re
from collections import defaultdict

from media_import.core.inventory import DEFAULT_EXCLUDED_FOLDERS, Rule, folder_of
from media_import.samples.archive import DEFECTS, build_sample_archive, load_manifest

# What each described defect must become in the `rejection` table (None: never rejected).
EXPECTED_RULE: dict[str, Rule | None] = {
    "bad-inventory-code": Rule.BAD_INVENTORY_CODE,
    "folder-type-mismatch": Rule.FOLDER_MISMATCH,
    "video-code-audio-streaming-copy": Rule.STREAMING_COPY_EXTENSION,
    "audio-code-video-master": Rule.CONTAINER_MISMATCH,
    "incomplete-asset": None,  # deferred: waits for its sidecars
    "checksum-mismatch": Rule.CHECKSUM_MISMATCH,
    "unreadable-json": Rule.UNREADABLE_METADATA,
    "unrecognised-json": Rule.UNREADABLE_METADATA,
    "unreadable-md5": Rule.UNREADABLE_CHECKSUM,
    "not-a-pdf": Rule.INVALID_PDF,
    "ignored-extension": None,
    "excluded-folder": None,
}

# "valid: <code>[ (note)]: <master sample> master via <tool>" on every valid .json sidecar.
_VALID_JSON = re.compile(r"^valid: (?P<code>\S+)(?: \(.*\))?: (?P<master>\w+) master via \w+$")


def test_every_defect_slug_has_an_expectation():
    assert set(EXPECTED_RULE) == set(DEFECTS)


def test_sample_archive_end_to_end(pipeline, put_many):
    archive = build_sample_archive()
    put_many((o.key, o.body) for o in archive)
    folders = sorted({folder_of(o.key) for o in archive})
    imported = sorted(set(folders) - set(DEFAULT_EXCLUDED_FOLDERS))
    excluded = sorted(set(folders) & set(DEFAULT_EXCLUDED_FOLDERS))
    assert imported == ["BRD", "CAS", "DAT", "DVD", "FILE", "VHS"]
    assert excluded, "the sample archive has excluded folders"

    runs = {folder: pipeline.run(folder) for folder in folders}
    for folder, run in runs.items():
        assert run.success, folder
        assert run.materialized() == {
            "s3_objects",
            "validated_inventory",
            "new_media_files",
            "catalog_records",
        }

    # Valid assets: every one catalogued with all its files, and nothing else catalogued.
    valid = [o for o in archive if o.defect is None]
    valid_codes = {o.description.split()[1].rstrip(":") for o in valid}
    assets, files = pipeline.assets(), pipeline.files()
    assert set(assets) == valid_codes
    assert set(files) == {o.key for o in valid}
    assert sum(r.metadata("catalog_records")["inserted_assets"] for r in runs.values()) == len(
        valid_codes
    )
    assert sum(r.metadata("catalog_records")["inserted_files"] for r in runs.values()) == len(valid)

    # The master MIME type comes from the .json sidecar's real tool output.
    masters = {m["name"]: m for m in load_manifest()["masters"]}
    expected_mime = {}
    for o in valid:
        match = _VALID_JSON.match(o.description) if o.key.endswith(".json") else None
        if match:
            expected_mime[match["code"]] = masters[match["master"]]["expected_mime"]
    assert set(expected_mime) == valid_codes
    assert {c: a["master_mime_type"] for c, a in assets.items()} == expected_mime
    assert {"video/quicktime", "video/mp4"} <= set(expected_mime.values())

    # Each defect's objects end up under its rule, and only there.
    rejections = pipeline.rejections()
    expected_rejections: dict[str, set[str]] = defaultdict(set)
    for o in archive:
        rule = EXPECTED_RULE[o.defect] if o.defect else None
        if rule is not None:
            expected_rejections[o.key].add(str(rule))
    assert rejections == dict(expected_rejections)

    # Defective objects are never catalogued; ignored and excluded ones are neither.
    for o in archive:
        if o.defect is not None:
            assert o.key not in files, o.key
    for o in archive:
        if o.defect in ("ignored-extension", "excluded-folder", "incomplete-asset"):
            assert o.key not in rejections, o.key

    # The incomplete asset is reported as deferred in its folder's run.
    incomplete = [o for o in archive if o.defect == "incomplete-asset"]
    assert len(incomplete) == 1
    run = runs[folder_of(incomplete[0].key)]
    assert run.metadata("new_media_files")["deferred"] == 1

    # Ignored extensions are counted as such by discovery, not staged.
    ignored = [o for o in archive if o.defect == "ignored-extension"]
    for folder in {folder_of(o.key) for o in ignored}:
        meta = runs[folder].metadata("s3_objects")
        assert meta["ignored"] == sum(1 for o in ignored if folder_of(o.key) == folder)
        assert meta["found"] == meta["considered"] + meta["ignored"]

    # Excluded folders' runs consider nothing and write nothing.
    for folder in excluded:
        meta = runs[folder].metadata("s3_objects")
        in_folder = sum(1 for o in archive if folder_of(o.key) == folder)
        assert meta["found"] == in_folder
        assert meta["considered"] == 0
        assert meta["ignored_by_reason"] == {"excluded folder": in_folder}
        assert runs[folder].metadata("catalog_records")["inserted_files"] == 0

    # Rejections recorded per run add up to the table; the checks agree.
    assert sum(r.metadata("catalog_records")["rejections_recorded"] for r in runs.values()) == sum(
        len(v) for v in expected_rejections.values()
    )
    for folder in imported:
        checks = runs[folder].checks()
        for name in (
            "complete_assets_catalogued",
            "unique_inventory_codes",
            "keys_exist_in_bucket",
            "checksums_verified",
        ):
            assert checks[name].passed, (folder, name)
        has_bad_keys = any(
            EXPECTED_RULE.get(o.defect or "") in (Rule.BAD_INVENTORY_CODE, Rule.FOLDER_MISMATCH)
            and folder_of(o.key) == folder
            for o in archive
        )
        assert checks["no_rejected_files"].passed is not has_bad_keys, folder
