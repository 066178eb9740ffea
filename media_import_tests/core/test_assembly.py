"""Phase-3 decisions per inventory code, on hand-built candidates and real sidecar JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from media_import.core.assembly import (
    AssetPlan,
    Candidate,
    CodeGroup,
    Decision,
    Reads,
    files_to_hash,
    group_candidates,
    plan_group,
    sidecar_reads,
)
from media_import.core.inventory import (
    ROLE_BY_EXTENSION,
    MediaKind,
    Role,
    Rule,
    extension_of,
    filename_of,
    folder_of,
    inventory_code_of,
)
from media_import.core.pdf import PDF_HEAD_BYTES
from media_import.core.storage import RangeRead

SAMPLES = Path(__file__).resolve().parents[2] / "media_import" / "samples"
MANIFEST: dict[str, Any] = json.loads((SAMPLES / "manifest.json").read_text())
MASTERS = {m["name"]: m for m in MANIFEST["masters"]}
PDF_HEAD = (SAMPLES / MANIFEST["qc_report"]["path"]).read_bytes()[:PDF_HEAD_BYTES]

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2025, 2, 1, 8, 0, tzinfo=UTC)

MP4_MD5 = MANIFEST["streaming"]["video"]["md5"]
MP3_MD5 = MANIFEST["streaming"]["audio"]["md5"]
OTHER_MD5 = "0" * 32
MULTIPART = "9b2cf535f27731c974343645a3985328-3"


def sidecar(master: str, tool: str = "ffprobe") -> bytes:
    return (SAMPLES / MASTERS[master][tool]).read_bytes()


def md5_file(*lines: tuple[str, str]) -> bytes:
    return "".join(f"{md5}  {name}\n" for md5, name in lines).encode()


def cand(
    key: str,
    *,
    etag: str | None = None,
    is_new: bool = True,
    minutes: int = 0,
    size: int = 100,
) -> Candidate:
    return Candidate(
        key=key,
        folder=folder_of(key),
        inventory_code=inventory_code_of(filename_of(key)),
        role=ROLE_BY_EXTENSION[extension_of(key)],
        size=size,
        etag=etag,
        last_modified=T0 + timedelta(minutes=minutes),
        is_new=is_new,
    )


def keys(reads: list[RangeRead]) -> list[str]:
    return [r.key for r in reads]


def group(*files: Candidate, catalogued: str | None = None) -> CodeGroup:
    code = files[0].inventory_code
    [result] = group_candidates(files, {code: catalogued} if catalogued else {})
    return result


def decisions(plan: AssetPlan) -> dict[str, Decision]:
    return {f.key: f.decision for f in plan.files}


# A complete video asset: QuickTime master, its streaming copy, sidecars.
V_MP4 = "BRD/VO-BRD-00012.mp4"
V_JSON = "BRD/VO-BRD-00012.json"
V_MD5 = "BRD/VO-BRD-00012.md5"
V_PDF = "BRD/VO-BRD-00012_qc.pdf"


def video_asset(
    mp4_etag: str | None = f'"{MP4_MD5}"', mp4_listed_md5: str = MP4_MD5
) -> tuple[CodeGroup, Reads]:
    g = group(
        cand(V_MP4, etag=mp4_etag, minutes=5),
        cand(V_JSON, etag=f'"{"a" * 32}"', minutes=1),
        cand(V_MD5, etag=f'"{"b" * 32}"', minutes=2),
        cand(V_PDF, etag=f'"{"c" * 32}"', minutes=3),
    )
    bodies: dict[str, bytes | Exception] = {
        V_JSON: sidecar("quicktime_mov"),
        V_MD5: md5_file(
            (MASTERS["quicktime_mov"]["md5"], "master.mov"), (mp4_listed_md5, "VO-BRD-00012.mp4")
        ),
        V_PDF: PDF_HEAD,
    }
    return g, Reads(bodies=bodies)


def with_body(reads: Reads, key: str, body: bytes | Exception | None) -> Reads:
    bodies = dict(reads.bodies)
    if body is None:
        bodies.pop(key, None)
    else:
        bodies[key] = body
    return Reads(bodies=bodies, md5s=reads.md5s)


def assert_rejected(plan: AssetPlan, rule: Rule, *words: str) -> None:
    assert plan.decision is Decision.REJECTED
    assert plan.rule is rule
    for word in words:
        assert word in (plan.message or "")
    assert plan.files, "the rejection must be recorded on the files"
    for f in plan.files:
        assert f.decision is Decision.REJECTED
        assert f.rule is rule
        assert f.message == plan.message


# -- complete assets ------------------------------------------------------------------------------


def test_complete_video_asset_is_imported() -> None:
    g, reads = video_asset()
    plan = plan_group(g, reads, NOW)

    assert plan.decision is Decision.IMPORT
    assert plan.media_kind is MediaKind.VIDEO
    assert (plan.inventory_code, plan.folder) == ("VO-BRD-00012", "BRD")
    assert plan.master_filename == "master.mov"
    assert plan.master_mime_type == "video/quicktime"
    assert plan.master_container == "QuickTime"
    assert plan.master_md5 == MASTERS["quicktime_mov"]["md5"]
    assert plan.metadata_tool == "ffprobe"
    assert plan.duration_seconds == pytest.approx(1.0, abs=0.2)
    assert plan.technical_metadata == json.loads(sidecar("quicktime_mov"))
    assert plan.rule is None and plan.missing == ()

    by_key = {f.key: f for f in plan.files}
    assert set(by_key) == {V_MP4, V_JSON, V_MD5, V_PDF}
    assert all(f.decision is Decision.IMPORT for f in plan.files)
    mp4 = by_key[V_MP4]
    assert (mp4.md5, mp4.md5_source, mp4.md5_verified) == (MP4_MD5, "md5sum", True)
    assert mp4.mime_type == "video/mp4"
    assert mp4.role is Role.STREAMING_COPY
    # Files the .md5 does not list get their ETag's MD5, unverified.
    assert (by_key[V_JSON].md5, by_key[V_JSON].md5_source, by_key[V_JSON].md5_verified) == (
        "a" * 32,
        "etag",
        False,
    )
    assert by_key[V_JSON].mime_type == "application/json"
    assert by_key[V_MD5].mime_type == "text/plain"
    assert by_key[V_PDF].mime_type == "application/pdf"


@pytest.mark.parametrize("tool", ["ffprobe", "mediainfo"])
@pytest.mark.parametrize(
    "master", ["wav", "bwf", "flac", "aiff", "mp3", "mp4_audio", "matroska_audio"]
)
def test_complete_audio_asset_is_imported(master: str, tool: str) -> None:
    sample = MASTERS[master]
    g = group(
        cand("CAS/AO-CAS-00001.mp3", etag=MP3_MD5),
        cand("CAS/AO-CAS-00001.json"),
        cand("CAS/AO-CAS-00001.md5"),
    )
    bodies: dict[str, bytes | Exception] = {
        "CAS/AO-CAS-00001.json": sidecar(master, tool),
        "CAS/AO-CAS-00001.md5": md5_file(
            (sample["md5"], sample["filename"]), (MP3_MD5, "AO-CAS-00001.mp3")
        ),
    }
    plan = plan_group(g, Reads(bodies=bodies), NOW)

    assert plan.decision is Decision.IMPORT
    assert plan.media_kind is MediaKind.AUDIO
    assert plan.master_mime_type == sample["expected_mime"]
    assert plan.master_container == sample["container"]
    assert plan.master_filename == sample["filename"]
    assert plan.master_md5 == sample["md5"]
    assert plan.metadata_tool == tool
    mp3 = next(f for f in plan.files if f.role is Role.STREAMING_COPY)
    assert (mp3.mime_type, mp3.md5, mp3.md5_verified) == ("audio/mpeg", MP3_MD5, True)


@pytest.mark.parametrize("master", ["quicktime_mov", "mp4_video", "matroska_video", "mxf_video"])
def test_video_master_mime_comes_from_the_json(master: str) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_JSON, sidecar(master, "mediainfo")), NOW)
    assert plan.decision is Decision.IMPORT
    assert plan.master_mime_type == MASTERS[master]["expected_mime"]
    assert plan.master_container == MASTERS[master]["container"]


def test_asset_without_md5_or_pdf_is_imported_unverified() -> None:
    g = group(cand(V_MP4, etag=MP4_MD5), cand(V_JSON))
    plan = plan_group(g, Reads(bodies={V_JSON: sidecar("mxf_video")}), NOW)
    assert plan.decision is Decision.IMPORT
    assert plan.master_md5 is None
    assert plan.master_filename == "master.mxf"
    mp4 = next(f for f in plan.files if f.key == V_MP4)
    assert (mp4.md5, mp4.md5_source, mp4.md5_verified) == (MP4_MD5, "etag", False)
    json_plan = next(f for f in plan.files if f.key == V_JSON)
    assert (json_plan.md5, json_plan.md5_source) == (None, None)


def test_master_name_from_the_md5_when_the_json_has_none() -> None:
    document = json.loads(sidecar("quicktime_mov"))
    del document["format"]["filename"]
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_JSON, json.dumps(document).encode()), NOW)
    assert plan.decision is Decision.IMPORT
    # The one name in the .md5 that is not in the bucket is the master.
    assert plan.master_filename == "master.mov"
    assert plan.master_md5 == MASTERS["quicktime_mov"]["md5"]


# -- incomplete assets ----------------------------------------------------------------------------


def test_missing_streaming_copy_is_deferred() -> None:
    g = group(cand(V_JSON, minutes=7), cand(V_MD5, minutes=3), cand(V_PDF, minutes=9))
    plan = plan_group(g, Reads(bodies={V_JSON: sidecar("quicktime_mov")}), NOW)
    assert plan.decision is Decision.DEFERRED
    assert plan.missing == ("streaming copy (.mp4)",)
    assert plan.message == "waiting for streaming copy (.mp4)"
    assert plan.oldest_file_at == T0 + timedelta(minutes=3)
    assert plan.rule is None
    assert decisions(plan) == {
        V_JSON: Decision.DEFERRED,
        V_MD5: Decision.DEFERRED,
        V_PDF: Decision.DEFERRED,
    }


def test_missing_json_is_deferred() -> None:
    g = group(cand("CAS/AO-CAS-00001.mp3", minutes=4), cand("CAS/AO-CAS-00001.md5", minutes=2))
    plan = plan_group(g, Reads(), NOW)
    assert plan.decision is Decision.DEFERRED
    assert plan.missing == ("technical metadata (.json)",)
    assert plan.message == "waiting for technical metadata (.json)"
    assert plan.oldest_file_at == T0 + timedelta(minutes=2)


def test_missing_both_is_deferred() -> None:
    plan = plan_group(group(cand("CAS/AO-CAS-00001.pdf", minutes=1)), Reads(), NOW)
    assert plan.decision is Decision.DEFERRED
    assert plan.missing == ("streaming copy (.mp3)", "technical metadata (.json)")
    assert plan.message == "waiting for streaming copy (.mp3) and technical metadata (.json)"
    assert plan.oldest_file_at == T0 + timedelta(minutes=1)


# -- rejections -----------------------------------------------------------------------------------


def test_video_code_with_mp3_streaming_copy_is_rejected() -> None:
    g = group(cand("BRD/VO-BRD-00012.mp3"), cand(V_JSON))
    plan = plan_group(g, Reads(bodies={V_JSON: sidecar("quicktime_mov")}), NOW)
    assert_rejected(plan, Rule.STREAMING_COPY_EXTENSION, ".mp4", "VO-BRD-00012.mp3")


def test_audio_code_with_mp4_streaming_copy_is_rejected_even_if_incomplete() -> None:
    plan = plan_group(group(cand("CAS/AO-CAS-00001.mp4")), Reads(), NOW)
    assert_rejected(plan, Rule.STREAMING_COPY_EXTENSION, ".mp3")


def test_uppercase_streaming_extension_is_accepted() -> None:
    g = group(cand("BRD/VO-BRD-00012.MP4", etag=MP4_MD5), cand(V_JSON))
    plan = plan_group(g, Reads(bodies={V_JSON: sidecar("quicktime_mov")}), NOW)
    assert plan.decision is Decision.IMPORT
    assert next(f for f in plan.files if f.role is Role.STREAMING_COPY).mime_type == "video/mp4"


def test_two_streaming_copies_are_ambiguous() -> None:
    g, reads = video_asset()
    g2 = group(*g.files, cand("BRD/VO-BRD-00012_v2.mp4"))
    plan = plan_group(g2, reads, NOW)
    assert_rejected(plan, Rule.AMBIGUOUS_FILES, "VO-BRD-00012.mp4", "VO-BRD-00012_v2.mp4")
    assert len(plan.files) == 5


def test_two_jsons_are_ambiguous_even_without_streaming_copy() -> None:
    g = group(cand(V_JSON), cand("BRD/VO-BRD-00012_mediainfo.json"))
    plan = plan_group(g, Reads(), NOW)
    assert_rejected(plan, Rule.AMBIGUOUS_FILES, "more than one metadata")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"", b"[1, 2]", b'"a string"'],
    ids=["syntax", "binary", "empty", "array", "string"],
)
def test_unreadable_json_is_rejected(body: bytes) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_JSON, body), NOW)
    assert_rejected(plan, Rule.UNREADABLE_METADATA, "VO-BRD-00012.json")
    assert all(f.decision is not Decision.IMPORT for f in plan.files)


def _with_comment(comment: str) -> bytes:
    document = json.loads(sidecar("quicktime_mov"))
    document["format"].setdefault("tags", {})["comment"] = comment
    return json.dumps(document).encode()


def test_json_holding_a_nul_escape_is_rejected_not_staged() -> None:
    # Valid JSON, but PostgreSQL's jsonb refuses \u0000: staged, it would fail the COPY of the
    # whole folder's plans instead of this one asset.
    g, reads = video_asset()
    body = _with_comment("tape\x00label")
    assert b"\\u0000" in body
    plan = plan_group(g, with_body(reads, V_JSON, body), NOW)
    assert_rejected(plan, Rule.UNREADABLE_METADATA, "VO-BRD-00012.json", "NUL")
    assert plan.technical_metadata is None


def test_json_holding_an_escaped_backslash_before_u0000_is_imported() -> None:
    g, reads = video_asset()
    body = _with_comment("C:\\u0000\\tapes")  # the text \u0000, not a NUL
    plan = plan_group(g, with_body(reads, V_JSON, body), NOW)
    assert plan.decision is Decision.IMPORT
    assert plan.technical_metadata["format"]["tags"]["comment"] == "C:\\u0000\\tapes"


def test_json_of_another_program_is_rejected() -> None:
    g, reads = video_asset()
    other = json.dumps({"exiftool": {"FileName": "master.mov"}}).encode()
    plan = plan_group(g, with_body(reads, V_JSON, other), NOW)
    assert_rejected(plan, Rule.UNREADABLE_METADATA, "neither ffprobe")


def test_json_that_was_not_read_is_unreadable() -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_JSON, None), NOW)
    assert_rejected(plan, Rule.UNREADABLE_METADATA, "cannot read")


@pytest.mark.parametrize("master", ["wav", "flac", "mp4_audio", "matroska_audio"])
def test_video_code_with_audio_only_master_is_a_container_mismatch(master: str) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_JSON, sidecar(master)), NOW)
    assert_rejected(plan, Rule.CONTAINER_MISMATCH, "video code", "no video stream")


@pytest.mark.parametrize("master", ["quicktime_mov", "mp4_video", "avi_video"])
def test_audio_code_with_video_master_is_a_container_mismatch(master: str) -> None:
    g = group(cand("CAS/AO-CAS-00001.mp3"), cand("CAS/AO-CAS-00001.json"))
    plan = plan_group(g, Reads(bodies={"CAS/AO-CAS-00001.json": sidecar(master)}), NOW)
    assert_rejected(plan, Rule.CONTAINER_MISMATCH, "audio code", "has a video stream")


def test_md5_mismatch_rejects_the_whole_asset() -> None:
    g, reads = video_asset(mp4_listed_md5=OTHER_MD5)
    plan = plan_group(g, reads, NOW)
    assert_rejected(plan, Rule.CHECKSUM_MISMATCH, "VO-BRD-00012.mp4", OTHER_MD5, MP4_MD5)
    assert {f.key for f in plan.files} == {V_MP4, V_JSON, V_MD5, V_PDF}
    assert not any(f.decision is Decision.IMPORT for f in plan.files)
    assert plan.master_mime_type is None and plan.master_md5 is None


def test_md5_listed_in_uppercase_still_matches_etag() -> None:
    g, reads = video_asset(mp4_etag=MP4_MD5.upper(), mp4_listed_md5=MP4_MD5.upper())
    assert plan_group(g, reads, NOW).decision is Decision.IMPORT


@pytest.mark.parametrize(
    "body",
    [b"this is not md5sum output\n", b"", "\xe0".encode("latin-1") + b" bad"],
    ids=["text", "empty", "latin1"],
)
def test_unreadable_md5_rejects_the_asset(body: bytes) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_MD5, body), NOW)
    assert_rejected(plan, Rule.UNREADABLE_CHECKSUM, "VO-BRD-00012.md5")


# -- multipart ETags: the bytes are hashed --------------------------------------------------------


def test_files_to_hash_lists_only_listed_files_without_plain_etag() -> None:
    g = group(
        cand(V_MP4, etag=MULTIPART),  # listed, multipart: hash it
        cand(V_JSON, etag=None),  # not listed: never hashed
        cand(V_MD5, etag=MP4_MD5),
        cand(V_PDF, etag=f'"{MULTIPART}"'),  # listed, multipart
        cand("BRD/VO-BRD-00012_x.pdf", etag=OTHER_MD5),  # listed, plain ETag: no need
        cand("BRD/VO-BRD-00012_old.pdf", etag=MULTIPART, is_new=False),  # catalogued
    )
    bodies: dict[str, bytes | Exception] = {
        V_MD5: md5_file(
            (MP4_MD5, "VO-BRD-00012.mp4"),
            (OTHER_MD5, "VO-BRD-00012_qc.pdf"),
            (OTHER_MD5, "VO-BRD-00012_x.pdf"),
            (OTHER_MD5, "VO-BRD-00012_old.pdf"),
        )
    }
    # The .md5 is new, so even the catalogued file it lists is verified against its bytes.
    assert keys(files_to_hash([g], bodies)) == [V_MP4, "BRD/VO-BRD-00012_old.pdf", V_PDF]


def test_files_to_hash_skips_groups_whose_md5_is_unreadable() -> None:
    g = group(cand(V_MP4, etag=MULTIPART), cand(V_MD5))
    assert files_to_hash([g], {V_MD5: b"garbage"}) == []
    assert files_to_hash([g], {V_MD5: OSError("boom")}) == []
    assert files_to_hash([g], {}) == []


def test_md5_verified_by_computed_md5_for_multipart_etag() -> None:
    g, reads = video_asset(mp4_etag=f'"{MULTIPART}"')
    assert keys(files_to_hash([g], reads.bodies)) == [V_MP4]
    plan = plan_group(g, Reads(bodies=reads.bodies, md5s={V_MP4: MP4_MD5}), NOW)
    assert plan.decision is Decision.IMPORT
    mp4 = next(f for f in plan.files if f.key == V_MP4)
    assert (mp4.md5, mp4.md5_source, mp4.md5_verified) == (MP4_MD5, "md5sum", True)
    assert mp4.etag == f'"{MULTIPART}"'


def test_a_32_hex_etag_that_differs_is_no_evidence_the_bytes_decide() -> None:
    """An SSE-KMS or SSE-C object's ETag looks like an MD5 and is not one: one that differs
    from the .md5 sidecar's checksum sends the object to be hashed, and its bytes decide."""
    g, reads = video_asset(mp4_etag=OTHER_MD5)
    to_hash = files_to_hash([g], reads.bodies)
    assert [(r.key, r.size, r.etag) for r in to_hash] == [(V_MP4, 100, OTHER_MD5)]
    plan = plan_group(g, Reads(bodies=reads.bodies, md5s={V_MP4: MP4_MD5}), NOW)
    assert plan.decision is Decision.IMPORT
    mp4 = next(f for f in plan.files if f.key == V_MP4)
    assert (mp4.md5, mp4.md5_source, mp4.md5_verified) == (MP4_MD5, "md5sum", True)
    # Hashed and still different: a mismatch, with the bytes' MD5 named.
    plan = plan_group(g, Reads(bodies=reads.bodies, md5s={V_MP4: OTHER_MD5}), NOW)
    assert_rejected(plan, Rule.CHECKSUM_MISMATCH, OTHER_MD5)


def test_an_etag_equal_to_the_listed_md5_verifies_without_reading_the_bytes() -> None:
    g, reads = video_asset(mp4_etag=MP4_MD5)
    assert files_to_hash([g], reads.bodies) == []
    plan = plan_group(g, reads, NOW)
    mp4 = next(f for f in plan.files if f.key == V_MP4)
    assert (mp4.md5, mp4.md5_source, mp4.md5_verified) == (MP4_MD5, "md5sum", True)


def test_computed_md5_mismatch_rejects() -> None:
    g, reads = video_asset(mp4_etag=MULTIPART)
    plan = plan_group(g, Reads(bodies=reads.bodies, md5s={V_MP4: OTHER_MD5}), NOW)
    assert_rejected(plan, Rule.CHECKSUM_MISMATCH, OTHER_MD5)


@pytest.mark.parametrize("md5s", [{}, {V_MP4: OSError("connection reset")}])
def test_multipart_file_that_could_not_be_hashed_is_rejected(md5s: dict[str, Any]) -> None:
    g, reads = video_asset(mp4_etag=MULTIPART)
    plan = plan_group(g, Reads(bodies=reads.bodies, md5s=md5s), NOW)
    assert_rejected(plan, Rule.CHECKSUM_MISMATCH, "cannot read VO-BRD-00012.mp4")


def test_unlisted_multipart_file_has_no_md5() -> None:
    g, reads = video_asset()
    g2 = group(*(f for f in g.files if f.key != V_JSON), cand(V_JSON, etag=MULTIPART))
    plan = plan_group(g2, reads, NOW)
    assert plan.decision is Decision.IMPORT
    json_plan = next(f for f in plan.files if f.key == V_JSON)
    assert (json_plan.md5, json_plan.md5_source, json_plan.md5_verified) == (None, None, False)


# -- read errors and PDFs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        (V_JSON, Rule.UNREADABLE_METADATA),
        (V_MD5, Rule.UNREADABLE_CHECKSUM),
        (V_PDF, Rule.INVALID_PDF),
    ],
)
def test_sidecar_read_error_rejects_the_asset(key: str, rule: Rule) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, key, TimeoutError("read timed out")), NOW)
    assert_rejected(plan, rule, "cannot read", "read timed out")


@pytest.mark.parametrize(
    "head",
    [b"<html><body>Report</body></html>", b"", b"PDF-1.4", b"\x00" * PDF_HEAD_BYTES + b"%PDF-"],
)
def test_invalid_pdf_is_rejected(head: bytes) -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_PDF, head), NOW)
    assert_rejected(plan, Rule.INVALID_PDF, "VO-BRD-00012_qc.pdf is not a PDF")


def test_pdf_behind_a_bom_is_valid() -> None:
    g, reads = video_asset()
    plan = plan_group(g, with_body(reads, V_PDF, b"\xef\xbb\xbf\n" + PDF_HEAD), NOW)
    assert plan.decision is Decision.IMPORT


# -- catalogued assets: attach --------------------------------------------------------------------


def catalogued_video(*new: Candidate, folder: str = "BRD") -> CodeGroup:
    old = (
        cand(V_MP4, etag=MP4_MD5, is_new=False),
        cand(V_JSON, is_new=False),
        cand(V_MD5, is_new=False),
    )
    return group(*old, *new, catalogued=folder)


CATALOGUED_MD5 = md5_file(
    (MASTERS["quicktime_mov"]["md5"], "master.mov"),
    (MP4_MD5, "VO-BRD-00012.mp4"),
    (OTHER_MD5, "VO-BRD-00012_qc.pdf"),
)


def test_late_pdf_is_attached() -> None:
    g = catalogued_video(cand(V_PDF, etag=OTHER_MD5, minutes=60))
    plan = plan_group(g, Reads(bodies={V_MD5: CATALOGUED_MD5, V_PDF: PDF_HEAD}), NOW)
    assert plan.decision is Decision.ATTACH
    assert [f.key for f in plan.files] == [V_PDF]  # catalogued files are left alone
    pdf = plan.files[0]
    assert pdf.decision is Decision.ATTACH
    assert (pdf.md5, pdf.md5_source, pdf.md5_verified) == (OTHER_MD5, "md5sum", True)
    assert plan.master_mime_type is None  # the asset itself is not re-planned


def test_late_pdf_failing_the_catalogued_md5_is_rejected() -> None:
    g = catalogued_video(cand(V_PDF, etag=MP4_MD5))
    plan = plan_group(g, Reads(bodies={V_MD5: CATALOGUED_MD5, V_PDF: PDF_HEAD}), NOW)
    assert plan.decision is Decision.REJECTED
    [pdf] = plan.files
    assert (pdf.decision, pdf.rule) == (Decision.REJECTED, Rule.CHECKSUM_MISMATCH)


def test_late_invalid_pdf_is_rejected() -> None:
    g = catalogued_video(cand(V_PDF, etag=OTHER_MD5))
    plan = plan_group(g, Reads(bodies={V_MD5: CATALOGUED_MD5, V_PDF: b"<html>"}), NOW)
    assert plan.decision is Decision.REJECTED
    [pdf] = plan.files
    assert (pdf.decision, pdf.rule) == (Decision.REJECTED, Rule.INVALID_PDF)


def test_attach_refuses_a_second_streaming_copy_but_keeps_the_pdf() -> None:
    late_mp4 = "BRD/VO-BRD-00012_v2.mp4"
    g = catalogued_video(cand(late_mp4, etag=OTHER_MD5), cand(V_PDF, etag=OTHER_MD5))
    plan = plan_group(g, Reads(bodies={V_MD5: CATALOGUED_MD5, V_PDF: PDF_HEAD}), NOW)
    assert plan.decision is Decision.ATTACH
    assert decisions(plan) == {late_mp4: Decision.REJECTED, V_PDF: Decision.ATTACH}
    mp4 = next(f for f in plan.files if f.key == late_mp4)
    assert mp4.rule is Rule.AMBIGUOUS_FILES
    assert "already has a catalogued streaming_copy" in (mp4.message or "")


def test_attach_refuses_a_second_json() -> None:
    late = "BRD/VO-BRD-00012_mediainfo.json"
    g = catalogued_video(cand(late))
    plan = plan_group(g, Reads(bodies={V_MD5: CATALOGUED_MD5, late: sidecar("mp4_video")}), NOW)
    assert plan.decision is Decision.REJECTED
    assert [(f.key, f.rule) for f in plan.files] == [(late, Rule.AMBIGUOUS_FILES)]


def test_attach_with_unreadable_late_md5_rejects_only_that_file() -> None:
    late_md5 = "BRD/VO-BRD-00012_v2.md5"
    g = catalogued_video(cand(late_md5), cand(V_PDF, etag=OTHER_MD5))
    bodies = {V_MD5: CATALOGUED_MD5, late_md5: b"nonsense", V_PDF: PDF_HEAD}
    plan = plan_group(g, Reads(bodies=bodies), NOW)
    assert plan.decision is Decision.ATTACH
    assert {f.key: (f.decision, f.rule) for f in plan.files} == {
        late_md5: (Decision.REJECTED, Rule.UNREADABLE_CHECKSUM),
        # The catalogued .md5 is readable and lists the PDF: it is verified and attached.
        V_PDF: (Decision.ATTACH, None),
    }


def test_code_catalogued_from_another_folder_is_a_duplicate() -> None:
    g = group(cand("FILE/VO-FIL-00001.mp4"), cand("FILE/VO-FIL-00001.json"), catalogued="DVD")
    plan = plan_group(g, Reads(bodies={"FILE/VO-FIL-00001.json": sidecar("mp4_video")}), NOW)
    assert_rejected(plan, Rule.DUPLICATE_INVENTORY_CODE, "VO-FIL-00001", "DVD/")
    assert len(plan.files) == 2


# -- reads and grouping ---------------------------------------------------------------------------


def test_sidecar_reads() -> None:
    new = group(
        cand(V_MP4),
        cand(V_JSON),
        cand(V_MD5),
        cand(V_PDF),
    )
    attach = group(
        cand("BRD/VO-BRD-00013.mp4", is_new=False),
        cand("BRD/VO-BRD-00013.json", is_new=False),
        cand("BRD/VO-BRD-00013.md5", is_new=False),
        cand("BRD/VO-BRD-00013.pdf", is_new=False),
        cand("BRD/VO-BRD-00013_late.pdf"),
        catalogued="BRD",
    )
    reads = sidecar_reads([new, attach])
    assert sorted(reads, key=lambda r: r.key) == sorted(
        [
            # Each with its listed size and ETag, which the read is checked against.
            RangeRead(V_JSON, None, 100),
            RangeRead(V_MD5, None, 100),
            RangeRead(V_PDF, PDF_HEAD_BYTES, 100),
            # The catalogued .md5 is read to verify the late file; nothing else catalogued is.
            RangeRead("BRD/VO-BRD-00013.md5", None, 100),
            RangeRead("BRD/VO-BRD-00013_late.pdf", PDF_HEAD_BYTES, 100),
        ],
        key=lambda r: r.key,
    )
    assert len({r.key for r in reads}) == len(reads)


def test_sidecar_reads_of_nothing() -> None:
    assert sidecar_reads([]) == []
    assert sidecar_reads([group(cand(V_MP4))]) == []


def test_group_candidates() -> None:
    rows = [
        cand("BRD/VO-BRD-00013.mp4"),
        cand("BRD/VO-BRD-00012.json"),
        cand("BRD/VO-BRD-00013.json", is_new=False),
        cand("BRD/VO-BRD-00012.mp4"),
        cand("BRD/VO-BRD-00012.md5"),
    ]
    groups = group_candidates(rows, {"VO-BRD-00013": "BRD", "VO-BRD-99999": "BRD"})
    assert [g.inventory_code for g in groups] == ["VO-BRD-00012", "VO-BRD-00013"]
    first, second = groups
    assert [f.key for f in first.files] == [
        "BRD/VO-BRD-00012.json",
        "BRD/VO-BRD-00012.md5",
        "BRD/VO-BRD-00012.mp4",
    ]
    assert (first.folder, first.catalogued_folder) == ("BRD", None)
    assert (second.folder, second.catalogued_folder) == ("BRD", "BRD")
    assert [f.key for f in second.new_files] == ["BRD/VO-BRD-00013.mp4"]
    assert [f.key for f in second.of_role(Role.METADATA)] == ["BRD/VO-BRD-00013.json"]
    assert second.of_role(Role.METADATA, new_only=True) == []
    assert group_candidates([], {"VO-BRD-00012": "BRD"}) == []


def test_late_md5_contradicting_the_catalogued_streaming_copy_is_rejected() -> None:
    late_md5 = "BRD/VO-BRD-00012_v2.md5"
    g = catalogued_video(cand(late_md5))
    bodies = {V_MD5: CATALOGUED_MD5, late_md5: md5_file((OTHER_MD5, "VO-BRD-00012.mp4"))}
    plan = plan_group(g, Reads(bodies=bodies), NOW)
    assert plan.decision is Decision.REJECTED
    assert [(f.key, f.rule) for f in plan.files] == [(late_md5, Rule.CHECKSUM_MISMATCH)]
