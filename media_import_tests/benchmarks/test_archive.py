"""The benchmarks' synthetic archive: S3-ordered realistic keys, and bodies the importer accepts."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from benchmarks.archive import FOLDER_TYPES, ArchiveSpec
from media_import.core.checksums import decode_md5sum
from media_import.core.inventory import (
    INVENTORY_CODE_RE,
    Outcome,
    Role,
    folder_of,
    inventory_code_of,
    judge_key,
    type_segment_of,
)
from media_import.core.pdf import looks_like_pdf
from media_import.core.technical_metadata import parse_technical_metadata
from media_import.defs.importing.resources import ImportSettings

SPEC = ArchiveSpec(4000)


def test_objects_are_whole_assets():
    assert ArchiveSpec(4003).objects == 4000
    assert len(ArchiveSpec(4003)) == 4000
    assert ArchiveSpec(4003).assets == 1000
    assert len(list(ArchiveSpec(3))) == 0


def test_keys_are_unique_and_in_s3_order():
    keys = list(SPEC.keys())
    assert len(keys) == len(set(keys)) == len(SPEC)
    assert keys == sorted(keys, key=str.encode)
    assert list(SPEC) == keys


def test_keys_are_valid_under_the_default_rules():
    rules = ImportSettings().rules()
    verdicts = [judge_key(key, rules) for key in SPEC]
    assert {v.outcome for v in verdicts} == {Outcome.VALID}
    roles = Counter(v.role for v in verdicts)
    assert roles == {role: SPEC.assets for role in Role}
    for verdict in verdicts:
        assert INVENTORY_CODE_RE.match(verdict.inventory_code or "")
        assert verdict.folder == type_segment_of(verdict.inventory_code or "")


def test_assets_spread_over_sixteen_folders_and_four_code_prefixes():
    folders = Counter(folder_of(key) for key in SPEC)
    assert sorted(folders) == SPEC.folder_names() == sorted(FOLDER_TYPES)
    assert len(folders) == 16
    assert max(folders.values()) - min(folders.values()) <= 4  # one asset at most
    prefixes = Counter(inventory_code_of(key.split("/")[1])[:2] for key in SPEC)
    assert set(prefixes) == {"VO", "VC", "AO", "AC"}
    assert ArchiveSpec(400, folders=3).folder_names() == ["BRD", "CAS", "VHS"]


def test_each_asset_has_its_four_files():
    files: dict[str, set[str]] = {}
    for key in SPEC:
        name = key.split("/")[1]
        files.setdefault(name[:12], set()).add(name[12:])
    assert len(files) == SPEC.assets
    for code, suffixes in files.items():
        streaming = ".mp4" if code.startswith("V") else ".mp3"
        assert suffixes == {streaming, ".json", ".md5", ".pdf"}, code


def test_a_million_keys_are_generated_unique_and_in_order():
    # Speed is the benchmark's business (no timed unit tests); here only that 1M keys come
    # out whole, unique and in S3 order, without holding bodies.
    previous, count = "", 0
    for key in ArchiveSpec(1_000_000):
        assert key > previous
        previous, count = key, count + 1
    assert count == 1_000_000


def test_spec_rejects_what_cannot_be_numbered():
    with pytest.raises(ValueError, match="folders"):
        ArchiveSpec(100, folders=17)
    with pytest.raises(ValueError, match="assets fit"):
        ArchiveSpec(4 * 400_000, folders=1)


# -- bodies ----------------------------------------------------------------------------------


def some_asset(spec: ArchiveSpec, prefix: str) -> dict[str, str]:
    """suffix -> key of the first asset whose code starts with `prefix`."""
    key = next(k for k in spec if k.split("/")[1].startswith(prefix))
    base = key.rsplit(".", 1)[0]
    return {k[len(base) :]: k for k in spec if k.startswith(base + ".")}


def test_bodies_are_deterministic_and_seeded():
    keys = list(SPEC.keys())[:40]
    again = ArchiveSpec(4000, seed=1)
    assert [SPEC.body(k) for k in keys] == [again.body(k) for k in keys]
    other_seed = ArchiveSpec(4000, seed=2)
    streaming = [k for k in keys if k.endswith((".mp3", ".mp4"))]
    assert all(SPEC.body(k) != other_seed.body(k) for k in streaming)


def test_etag_and_size_describe_the_body():
    for key in list(SPEC.keys())[:40]:
        body = SPEC.body(key)
        assert SPEC.etag(key) == hashlib.md5(body).hexdigest()
        assert SPEC.size(key) == len(body)
        assert 0 < len(body) < 4096


@pytest.mark.parametrize("prefix", ["VO", "VC", "AO", "AC"])
def test_sidecars_are_what_the_importer_parses(prefix):
    files = some_asset(SPEC, prefix)
    streaming_ext = ".mp4" if prefix.startswith("V") else ".mp3"
    technical = parse_technical_metadata(json.loads(SPEC.body(files[".json"])))
    assert technical.tool == "ffprobe"
    assert technical.has_video is prefix.startswith("V")
    assert technical.has_audio
    assert technical.duration_seconds and technical.duration_seconds >= 600
    entries = {e.filename: e.md5 for e in decode_md5sum(SPEC.body(files[".md5"]))}
    code = files[".json"].split("/")[1][:12]
    assert set(entries) == {technical.filename, code + streaming_ext}
    assert entries[code + streaming_ext] == hashlib.md5(SPEC.body(files[streaming_ext])).hexdigest()
    assert looks_like_pdf(SPEC.body(files[".pdf"]))


def test_master_flavours_cover_quicktime_mp4_wav_and_flac():
    containers: Counter[tuple[str, str]] = Counter()
    for key in SPEC:
        if key.endswith(".json"):
            technical = parse_technical_metadata(json.loads(SPEC.body(key)))
            containers[(technical.container, technical.mime_type)] += 1
            assert technical.filename and technical.filename.startswith(key.split("/")[1][:12])
    assert set(containers) == {
        ("QuickTime", "video/quicktime"),
        ("MP4", "video/mp4"),
        ("WAV", "audio/wav"),
        ("FLAC", "audio/flac"),
    }
    # Three in four masters are the usual flavour (ProRes QuickTime, WAV).
    assert containers[("QuickTime", "video/quicktime")] > containers[("MP4", "video/mp4")]


def test_qc_report_is_a_well_formed_pdf():
    body = SPEC.body(some_asset(SPEC, "VO")[".pdf"])
    assert body.startswith(b"%PDF-1.4\n") and body.endswith(b"%%EOF\n")
    xref_at = int(body.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert body[xref_at:].startswith(b"xref\n")
    offsets = [int(line[:10]) for line in body[xref_at:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert body[offset:].startswith(b"%d 0 obj" % number)


def test_bodies_of_unknown_shapes_are_refused():
    with pytest.raises(ValueError, match="not a synthetic archive key"):
        SPEC.body("BRD/notes.txt")


# -- growing the archive ---------------------------------------------------------------------


def test_extra_keys_are_new_whole_assets_valid_under_the_rules():
    extra = SPEC.extra_keys(40)
    assert len(extra) == len(set(extra)) == 160
    assert extra == sorted(extra)
    assert not any(SPEC.holds(k) for k in extra)
    assert all(SPEC.holds(k) for k in list(SPEC.keys())[::97])
    rules = ImportSettings().rules()
    assert {judge_key(k, rules).outcome for k in extra} == {Outcome.VALID}
    # A grown archive is the same archive plus these keys.
    grown = set(ArchiveSpec(len(SPEC) + 160).keys())
    assert grown == set(SPEC.keys()) | set(extra)
