"""The sample archive: deterministic, unique keys, every defect present, valid assets consistent."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from media_import.core.technical_metadata import (
    TechnicalMetadataError,
    parse_technical_metadata,
)
from media_import.samples.archive import (
    DEFECTS,
    SampleObject,
    build_sample_archive,
    load_manifest,
    sample_files_dir,
)

CODE_RE = re.compile(r"^[VA][OC]-[A-Z0-9]{3}-\d{5}$")
MD5_LINE_RE = re.compile(r"^(?P<md5>[0-9a-f]{32}) (?P<mode>[ *])(?P<name>.+)$")
FOLDER_TYPES = {"BRD": "BRD", "DVD": "DVD", "VHS": "VHS", "CAS": "CAS", "DAT": "DAT", "FILE": "FIL"}


@pytest.fixture(scope="module")
def archive() -> list[SampleObject]:
    return build_sample_archive()


def _by_key(archive: list[SampleObject]) -> dict[str, SampleObject]:
    return {obj.key: obj for obj in archive}


def _valid_groups(archive: list[SampleObject]) -> dict[str, list[SampleObject]]:
    groups: dict[str, list[SampleObject]] = defaultdict(list)
    for obj in archive:
        if obj.defect is None:
            groups[obj.key.split("/", 1)[1][:12]].append(obj)
    return groups


def _md5sum_lines(body: bytes) -> dict[str, str]:
    lines = {}
    for line in body.decode().splitlines():
        match = MD5_LINE_RE.match(line)
        assert match, f"not an md5sum line: {line!r}"
        lines[match["name"]] = match["md5"]
    return lines


def test_sample_files_dir_holds_the_manifest() -> None:
    assert sample_files_dir() == Path(__file__).resolve().parents[2] / "media_import" / "samples"
    assert (sample_files_dir() / "manifest.json").is_file()


def test_manifest_files_exist_with_recorded_md5_and_size() -> None:
    manifest = load_manifest()
    entries = [*manifest["streaming"].values(), manifest["qc_report"], manifest["photo"]]
    for entry in entries:
        data = (sample_files_dir() / entry["path"]).read_bytes()
        assert hashlib.md5(data).hexdigest() == entry["md5"]
        assert len(data) == entry["size"]
    for entry in [*manifest["masters"], *manifest["streaming"].values()]:
        for tool in ("ffprobe", "mediainfo"):
            assert (sample_files_dir() / entry[tool]).is_file()


def test_committed_files_are_small_and_real() -> None:
    manifest = load_manifest()
    pdf = (sample_files_dir() / manifest["qc_report"]["path"]).read_bytes()
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) < 10_000
    video = (sample_files_dir() / manifest["streaming"]["video"]["path"]).read_bytes()
    audio = (sample_files_dir() / manifest["streaming"]["audio"]["path"]).read_bytes()
    assert video[4:8] == b"ftyp"
    assert audio[:3] == b"ID3" or audio[0] == 0xFF
    assert max(len(video), len(audio)) < 30_000


def test_deterministic_for_a_seed() -> None:
    first, second = build_sample_archive(7), build_sample_archive(7)
    assert first == second
    assert build_sample_archive() == first


def test_other_seed_gives_other_codes() -> None:
    assert {o.key for o in build_sample_archive(7)} != {o.key for o in build_sample_archive(8)}


@pytest.mark.parametrize("seed", [7, 1, 12345])
def test_keys_are_unique_and_sorted(seed: int) -> None:
    keys = [obj.key for obj in build_sample_archive(seed)]
    assert len(keys) == len(set(keys))
    assert keys == sorted(keys)


def test_every_object_is_described(archive: list[SampleObject]) -> None:
    for obj in archive:
        assert obj.description.startswith(("valid: ", "defect ")), obj.key
        assert obj.defect is None or obj.defect in DEFECTS, obj.description
        assert obj.body, obj.key


@pytest.mark.parametrize("seed", [7, 1, 12345])
def test_every_defect_is_present(seed: int) -> None:
    present = {obj.defect for obj in build_sample_archive(seed)} - {None}
    assert present == set(DEFECTS)


def test_size_and_folders(archive: list[SampleObject]) -> None:
    folders = {obj.key.split("/", 1)[0] for obj in archive if obj.defect != "excluded-folder"}
    assert folders == set(FOLDER_TYPES)
    codes = {obj.key.split("/", 1)[1][:12] for obj in archive if "/" in obj.key}
    assert 30 <= len(codes) <= 50
    assert 25 <= len(_valid_groups(archive)) <= 40


def test_specific_defect_keys(archive: list[SampleObject]) -> None:
    by_key = _by_key(archive)
    expected = {
        "BRD/VO-BRD-1234.mp4": "bad-inventory-code",
        "DVD/VO-BRD-00077.mp4": "folder-type-mismatch",
        "DVD/VO-BRD-00077.json": "folder-type-mismatch",
        "BRD/notes.txt": "ignored-extension",
        "BRD/Thumbs.db": "ignored-extension",
        "TEST-FOLDER-DEV/VO-TST-00001.mp4": "excluded-folder",
        "UMT/VO-UMT-14387.mp4": "excluded-folder",
        "DOCUMENTAZIONE_FOTOGRAFICA/foto.jpg": "excluded-folder",
    }
    for key, defect in expected.items():
        assert by_key[key].defect == defect, key
    assert by_key["DOCUMENTAZIONE_FOTOGRAFICA/foto.jpg"].body[:3] == b"\xff\xd8\xff"


def _defect_objects(archive: list[SampleObject], defect: str) -> list[SampleObject]:
    found = [obj for obj in archive if obj.defect == defect]
    assert found, defect
    return found


def test_video_code_with_mp3_streaming_copy(archive: list[SampleObject]) -> None:
    objs = _defect_objects(archive, "video-code-audio-streaming-copy")
    mp3s = [o for o in objs if o.key.endswith(".mp3")]
    assert len(mp3s) == 1
    assert mp3s[0].key.split("/")[1][0] == "V"
    assert not any(o.key.endswith(".mp4") for o in objs)


def test_audio_code_with_video_master(archive: list[SampleObject]) -> None:
    objs = _defect_objects(archive, "audio-code-video-master")
    (sidecar,) = [o for o in objs if o.key.endswith(".json")]
    assert sidecar.key.split("/")[1][0] == "A"
    assert parse_technical_metadata(json.loads(sidecar.body)).has_video is True


def test_incomplete_asset_has_only_its_streaming_copy(archive: list[SampleObject]) -> None:
    (only,) = _defect_objects(archive, "incomplete-asset")
    code = only.key.split("/")[1][:12]
    assert only.key.endswith(".mp4")
    assert [o.key for o in archive if code in o.key] == [only.key]


def test_checksum_mismatch_lists_a_wrong_hash(archive: list[SampleObject]) -> None:
    objs = {o.key.rsplit(".", 1)[1]: o for o in _defect_objects(archive, "checksum-mismatch")}
    listed = _md5sum_lines(objs["md5"].body)
    streaming_name = objs["mp4"].key.split("/")[1]
    assert listed[streaming_name] != hashlib.md5(objs["mp4"].body).hexdigest()


def test_unreadable_sidecars(archive: list[SampleObject]) -> None:
    (bad_json,) = [o for o in _defect_objects(archive, "unreadable-json") if ".json" in o.key]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad_json.body)
    (foreign,) = [o for o in _defect_objects(archive, "unrecognised-json") if ".json" in o.key]
    with pytest.raises(TechnicalMetadataError):
        parse_technical_metadata(json.loads(foreign.body))
    (bad_md5,) = [o for o in _defect_objects(archive, "unreadable-md5") if ".md5" in o.key]
    assert not any(MD5_LINE_RE.match(line) for line in bad_md5.body.decode().splitlines())
    (not_pdf,) = [o for o in _defect_objects(archive, "not-a-pdf") if ".pdf" in o.key]
    assert not not_pdf.body.startswith(b"%PDF-")


def test_valid_assets_are_complete_and_well_named(archive: list[SampleObject]) -> None:
    for code, objs in _valid_groups(archive).items():
        folder = objs[0].key.split("/")[0]
        assert CODE_RE.match(code), code
        assert FOLDER_TYPES[folder] == code[3:6]
        assert {o.key.split("/")[0] for o in objs} == {folder}
        streaming_ext = ".mp4" if code[0] == "V" else ".mp3"
        suffixes = sorted(Path(o.key).suffix for o in objs)
        assert suffixes == sorted([streaming_ext, ".json", ".md5", ".pdf"]), code
        pdf = next(o for o in objs if o.key.endswith(".pdf"))
        assert pdf.body.startswith(b"%PDF-")


def test_valid_md5_lines_match_the_bytes_in_the_archive(archive: list[SampleObject]) -> None:
    by_key = _by_key(archive)
    masters_md5 = {m["md5"] for m in load_manifest()["masters"]}
    listed_streaming = 0
    for code, objs in _valid_groups(archive).items():
        md5_obj = next(o for o in objs if o.key.endswith(".md5"))
        folder = md5_obj.key.split("/")[0]
        for name, md5 in _md5sum_lines(md5_obj.body).items():
            assert name.startswith(code)
            key = f"{folder}/{name}"
            if key in by_key:
                assert md5 == hashlib.md5(by_key[key].body).hexdigest(), key
                listed_streaming += 1
            else:  # the master lives in the conservatory: its md5 comes from the manifest
                assert md5 in masters_md5, name
    assert listed_streaming >= 20


def test_valid_json_names_the_master_listed_in_md5(archive: list[SampleObject]) -> None:
    masters = {m["md5"]: m for m in load_manifest()["masters"]}
    for code, objs in _valid_groups(archive).items():
        sidecar = next(o for o in objs if o.key.endswith(".json"))
        technical = parse_technical_metadata(json.loads(sidecar.body))
        listed = _md5sum_lines(next(o for o in objs if o.key.endswith(".md5")).body)
        assert technical.filename in listed, code
        master = masters[listed[technical.filename]]
        assert technical.mime_type == master["expected_mime"]
        assert technical.has_video is (code[0] == "V")


def test_valid_assets_use_every_master_both_tools_and_both_md5_modes(
    archive: list[SampleObject],
) -> None:
    tools, mimes, modes = set(), set(), set()
    containers = set()
    for objs in _valid_groups(archive).values():
        sidecar = next(o for o in objs if o.key.endswith(".json"))
        technical = parse_technical_metadata(json.loads(sidecar.body))
        tools.add(technical.tool)
        mimes.add(technical.mime_type)
        containers.add(technical.container)
        md5_obj = next(o for o in objs if o.key.endswith(".md5"))
        modes |= {m["mode"] for m in map(MD5_LINE_RE.match, md5_obj.body.decode().splitlines())}
    assert tools == {"ffprobe", "mediainfo"}
    assert modes == {" ", "*"}
    assert mimes == {m["expected_mime"] for m in load_manifest()["masters"]}
    assert containers == {m["container"] for m in load_manifest()["masters"]}


def test_objects_are_immutable(archive: list[SampleObject]) -> None:
    with pytest.raises(AttributeError):
        archive[0].key = "x"  # type: ignore[misc]
