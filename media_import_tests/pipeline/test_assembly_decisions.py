"""Phase 3 decisions through the job: deferral, asset-level rejections, late attachments."""

from __future__ import annotations

import json

from media_import.core.inventory import Rule
from media_import_tests.pipeline.conftest import make_asset, md5_hex, md5_lines, streaming_body


def test_incomplete_asset_is_deferred_then_imported_when_complete(pipeline, put, put_many):
    asset = make_asset("BRD", "VO-BRD-00001", pdf=False)
    put(*asset.items(".mp4")[0])

    first = pipeline.run("BRD")

    assert first.success
    meta = first.metadata("new_media_files")
    assert meta["deferred"] == 1
    assert meta["rejected_assets"] == 0
    assert meta["ready_assets"] == 0
    assert "VO-BRD-00001" in meta["deferred_assets"]
    assert "technical metadata (.json)" in meta["deferred_assets"]
    assert first.checks()["no_rejected_assets"].passed  # deferral is not a problem normally
    assert first.check_metadata("no_rejected_assets")["deferred"] == 1
    assert pipeline.count("asset") == pipeline.count("asset_file") == 0
    assert pipeline.count("rejection") == 0

    put_many(asset.items(".json", ".md5"))
    second = pipeline.run("BRD")

    assert second.success
    meta = second.metadata("new_media_files")
    assert meta["deferred"] == 0
    assert meta["new"] == 3
    assert meta["skipped_already_catalogued"] == 0
    assert second.metadata("catalog_records")["inserted_assets"] == 1
    assert second.metadata("catalog_records")["inserted_files"] == 3
    assert set(pipeline.assets()) == {"VO-BRD-00001"}
    rows = pipeline.query("SELECT key, count(*) FROM asset_file GROUP BY key")
    assert dict(rows) == dict.fromkeys(asset.objects, 1)
    assert pipeline.files()[asset.streaming_key]["md5_verified"] is True
    assert pipeline.count("rejection") == 0


def test_json_without_streaming_copy_is_deferred_too(pipeline, put):
    asset = make_asset("CAS", "AO-CAS-00001")
    put(*asset.items(".json")[0])

    run = pipeline.run("CAS")

    assert run.metadata("new_media_files")["deferred"] == 1
    assert "streaming copy (.mp3)" in run.metadata("new_media_files")["deferred_assets"]
    assert pipeline.count("asset") == pipeline.count("rejection") == 0


def test_asset_level_rejections(pipeline, put_many):
    fine = make_asset("VHS", "VO-VHS-00001")

    not_pdf = make_asset("VHS", "VO-VHS-00002")
    not_pdf.objects[not_pdf.key(".pdf")] = b"<!DOCTYPE html><html>403 Forbidden</html>\n"

    bad_json = make_asset("VHS", "VO-VHS-00003")
    body = bad_json.objects[bad_json.key(".json")]
    bad_json.objects[bad_json.key(".json")] = body[: len(body) // 2]

    foreign_json = make_asset("VHS", "VC-VHS-00004")
    foreign_json.objects[foreign_json.key(".json")] = json.dumps({"note": "lato B"}).encode()

    mp3_for_video = make_asset("VHS", "VO-VHS-00005")
    del mp3_for_video.objects[mp3_for_video.key(".mp4")]
    mp3 = streaming_body("A")
    mp3_for_video.objects[mp3_for_video.key(".mp3")] = mp3
    mp3_for_video.objects[mp3_for_video.key(".md5")] = md5_lines(
        [
            (mp3_for_video.master["md5"], mp3_for_video.master_filename),
            (md5_hex(mp3), "VO-VHS-00005.mp3"),
        ]
    )

    # An audio code whose master (per its .json) is a video container.
    video_master = make_asset("CAS", "AO-CAS-00006", "quicktime_mov")
    audio_fine = make_asset("CAS", "AO-CAS-00007", "flac", tool="mediainfo")

    vhs = [fine, not_pdf, bad_json, foreign_json, mp3_for_video]
    cas = [video_master, audio_fine]
    put_many(o for a in vhs + cas for o in a.items())

    vhs_run, cas_run = pipeline.run("VHS"), pipeline.run("CAS")

    assert vhs_run.success and cas_run.success
    expected = [
        (not_pdf, Rule.INVALID_PDF),
        (bad_json, Rule.UNREADABLE_METADATA),
        (foreign_json, Rule.UNREADABLE_METADATA),
        (mp3_for_video, Rule.STREAMING_COPY_EXTENSION),
        (video_master, Rule.CONTAINER_MISMATCH),
    ]
    # The whole asset is rejected: every file of it under its asset's rule.
    assert pipeline.rejections() == {k: {str(rule)} for a, rule in expected for k in a.objects}
    assert set(pipeline.assets()) == {"VO-VHS-00001", "AO-CAS-00007"}
    assert set(pipeline.files()) == set(fine.objects) | set(audio_fine.objects)
    assert pipeline.assets()["AO-CAS-00007"]["master_mime_type"] == "audio/flac"
    assert pipeline.assets()["AO-CAS-00007"]["metadata_tool"] == "mediainfo"

    meta = vhs_run.metadata("new_media_files")
    assert meta["rejected_assets"] == 4
    assert meta["rejected_by_rule"] == {
        Rule.INVALID_PDF: 4,
        Rule.UNREADABLE_METADATA: 8,
        Rule.STREAMING_COPY_EXTENSION: 4,
    }
    for run in (vhs_run, cas_run):
        check = run.checks()["no_rejected_assets"]
        assert not check.passed
        assert check.severity.value == "WARN"
        # Phase-1 rules all held: these are phase-3 rejections.
        assert run.checks()["no_rejected_files"].passed
        assert run.checks()["complete_assets_catalogued"].passed
    assert cas_run.check_metadata("no_rejected_assets")["rejected_assets"] == 1
    messages = dict(
        pipeline.query("SELECT key, message FROM rejection WHERE rule = 'container_mismatch'")
    )
    assert "video stream" in messages[video_master.key(".json")]


def test_a_json_jsonb_cannot_hold_rejects_its_asset_not_the_folder(pipeline, put_many):
    # Valid JSON with a \u0000 escape: PostgreSQL's jsonb refuses it, and staged it would have
    # failed the COPY of the folder's plans, so no asset of the folder would be catalogued.
    fine = make_asset("BTC", "VO-BTC-00001")
    nul = make_asset("BTC", "VO-BTC-00002")
    document = json.loads(nul.objects[nul.key(".json")])
    document["format"].setdefault("tags", {})["comment"] = "tape\x00label"
    nul.objects[nul.key(".json")] = json.dumps(document).encode()
    put_many(o for a in (fine, nul) for o in a.items())

    run = pipeline.run("BTC")

    assert run.success
    assert set(pipeline.assets()) == {"VO-BTC-00001"}
    assert pipeline.rejections() == {k: {str(Rule.UNREADABLE_METADATA)} for k in nul.objects}
    message = pipeline.query(
        "SELECT DISTINCT message FROM rejection WHERE key = %s", (nul.key(".json"),)
    )
    assert "NUL" in message[0][0]


def test_late_pdf_is_attached_to_the_catalogued_asset(pipeline, put, put_many):
    asset = make_asset("DVD", "VC-DVD-00001", pdf=False)
    put_many(asset.items())
    first = pipeline.run("DVD")
    assert first.metadata("catalog_records")["inserted_files"] == 3
    asset_before = pipeline.dump("asset")
    files_before = pipeline.dump("asset_file")

    late = "DVD/VC-DVD-00001_qc.pdf"
    put(late, make_asset("DVD", "VC-DVD-00009").objects["DVD/VC-DVD-00009.pdf"])
    second = pipeline.run("DVD")

    assert second.success
    # The attach plan was carried out, then dropped with the rest of what the insert did.
    assert pipeline.query("SELECT count(*) FROM ingest.pending_file") == [(0,)]
    assert pipeline.query("SELECT count(*) FROM ingest.pending_asset") == [(0,)]
    meta = second.metadata("new_media_files")
    assert (meta["new"], meta["ready_assets"], meta["ready_files"]) == (1, 0, 1)
    assert meta["skipped_already_catalogued"] == 3
    records = second.metadata("catalog_records")
    assert (records["inserted_assets"], records["inserted_files"]) == (0, 1)

    assert pipeline.dump("asset") == asset_before  # the asset itself is untouched
    files = pipeline.files()
    assert files[late]["inventory_code"] == "VC-DVD-00001"
    assert files[late]["role"] == "qc_report"
    assert files[late]["run_id"] == second.run_id
    assert pipeline.dump("asset_file")[: len(files_before)] == files_before
    assert second.checks()["complete_assets_catalogued"].passed


def test_late_file_that_is_not_a_pdf_is_rejected_alone(pipeline, put, put_many):
    asset = make_asset("DVD", "VC-DVD-00001", pdf=False)
    put_many(asset.items())
    pipeline.run("DVD")

    put("DVD/VC-DVD-00001.pdf", b"not a pdf at all")
    run = pipeline.run("DVD")

    assert run.success
    assert pipeline.rejections() == {"DVD/VC-DVD-00001.pdf": {Rule.INVALID_PDF}}
    assert set(pipeline.files()) == set(asset.objects)  # the catalogued files stay
    assert set(pipeline.assets()) == {"VC-DVD-00001"}


def test_code_already_catalogued_from_another_folder_is_a_duplicate(
    pipeline, put_many, monkeypatch
):
    monkeypatch.setenv("ACH_FOLDER_TYPES", "FILE=FIL,BRD")
    first = make_asset("BRD", "VO-BRD-00001")
    again = make_asset("FILE", "VO-BRD-00001", "mp4_video")
    put_many([*first.items(), *again.items()])

    assert pipeline.run("BRD").success
    run = pipeline.run("FILE")

    assert run.success
    assert pipeline.assets()["VO-BRD-00001"]["folder"] == "BRD"
    assert pipeline.assets()["VO-BRD-00001"]["master_mime_type"] == "video/quicktime"
    assert set(pipeline.files()) == set(first.objects)
    assert pipeline.rejections() == {k: {Rule.DUPLICATE_INVENTORY_CODE} for k in again.objects}
    assert run.checks()["unique_inventory_codes"].passed


def test_fixed_asset_is_imported_and_its_rejections_resolved(pipeline, put, put_many):
    asset = make_asset("DVD", "VO-DVD-00001")
    good_md5 = asset.objects[asset.key(".md5")]
    put_many(asset.items())
    put(asset.key(".md5"), md5_lines([("f" * 32, "VO-DVD-00001.mp4")]))
    pipeline.run("DVD")
    assert pipeline.rejections() == {k: {Rule.CHECKSUM_MISMATCH} for k in asset.objects}

    put(asset.key(".md5"), good_md5)
    run = pipeline.run("DVD")

    assert run.success
    assert set(pipeline.assets()) == {"VO-DVD-00001"}
    assert set(pipeline.files()) == set(asset.objects)
    assert pipeline.rejections() == {}
    resolved = pipeline.query("SELECT key FROM rejection WHERE resolved_at IS NOT NULL")
    assert {k for (k,) in resolved} == set(asset.objects)
    assert run.metadata("catalog_records")["rejections_resolved"] == len(asset.objects)
    assert run.metadata("catalog_records")["open_rejections"] == 0


def test_folder_names_that_need_encoding(pipeline, put_many, monkeypatch):
    folder = "Fondo Rossi v.2"
    monkeypatch.setenv("ACH_FOLDER_TYPES", f"{folder}=BRD")
    asset = make_asset(folder, "VO-BRD-00001")
    put_many([*asset.items(), ("Fondo Rossi v.2/VO-DVD-00002.mp4", b"x")])

    run = pipeline.run(folder)

    assert run.success
    assert run.metadata("s3_objects")["folder"] == folder
    assert pipeline.assets()["VO-BRD-00001"]["folder"] == folder
    assert set(pipeline.files()) == set(asset.objects)
    assert pipeline.rejections() == {"Fondo Rossi v.2/VO-DVD-00002.mp4": {Rule.FOLDER_MISMATCH}}


def test_two_streaming_copies_are_ambiguous(pipeline, put_many):
    asset = make_asset("BRD", "VO-BRD-00001")
    asset.objects["BRD/VO-BRD-00001_v2.mp4"] = streaming_body("V")
    put_many(asset.items())

    run = pipeline.run("BRD")

    assert run.success
    assert pipeline.rejections() == {k: {Rule.AMBIGUOUS_FILES} for k in asset.objects}
    assert pipeline.count("asset") == pipeline.count("asset_file") == 0
