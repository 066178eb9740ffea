"""Phase 1 through the job: inventory code format and folder rules, default and configured."""

from __future__ import annotations

from media_import.core.inventory import Rule
from media_import_tests.pipeline.conftest import make_asset


def test_bad_code_and_folder_mismatch_are_rejected_in_phase_1(pipeline, put_many):
    good = make_asset("BRD", "VO-BRD-00001")
    wrong_folder = make_asset("BRD", "VO-DVD-00002")  # a DVD code filed under BRD/
    put_many(
        [
            *good.items(),
            *wrong_folder.items(),
            ("BRD/VO-BRD-1234.mp4", b"x"),  # 4 digits
            ("BRD/vo-brd-00003.json", b"{}"),  # lower case
            ("BRD/VX-BRD-00004.md5", b""),  # X is not O/C
        ]
    )
    run = pipeline.run("BRD")

    assert run.success
    meta = run.metadata("validated_inventory")
    assert meta["rejected"] == 3 + len(wrong_folder.objects)
    assert meta["rejected_by_rule"] == {
        Rule.BAD_INVENTORY_CODE: 3,
        Rule.FOLDER_MISMATCH: len(wrong_folder.objects),
    }
    check = run.checks()["no_rejected_files"]
    assert not check.passed
    assert check.severity.value == "WARN"
    assert run.check_metadata("no_rejected_files")["rejected"] == meta["rejected"]

    expected = {
        "BRD/VO-BRD-1234.mp4": {Rule.BAD_INVENTORY_CODE},
        "BRD/vo-brd-00003.json": {Rule.BAD_INVENTORY_CODE},
        "BRD/VX-BRD-00004.md5": {Rule.BAD_INVENTORY_CODE},
        **{k: {Rule.FOLDER_MISMATCH} for k in wrong_folder.objects},
    }
    assert pipeline.rejections() == expected
    rows = pipeline.query(
        "SELECT key, inventory_code, folder, run_id FROM rejection WHERE rule = %s",
        (Rule.FOLDER_MISMATCH.value,),
    )
    assert {(k, c, f, r) for k, c, f, r in rows} == {
        (k, "VO-DVD-00002", "BRD", run.run_id) for k in wrong_folder.objects
    }
    # Phase 1 rejections do not stop the folder's valid asset.
    assert set(pipeline.assets()) == {"VO-BRD-00001"}
    assert set(pipeline.files()) == set(good.objects)


def test_file_folder_holds_fil_codes_by_default(pipeline, put_many):
    fil = make_asset("FILE", "VC-FIL-00010")
    own_name = make_asset("FILE", "AO-FIL-00011")
    brd_in_file = make_asset("FILE", "VO-BRD-00012")
    put_many([*fil.items(), *own_name.items(), *brd_in_file.items()])

    run = pipeline.run("FILE")

    assert run.success
    assert set(pipeline.assets()) == {"VC-FIL-00010", "AO-FIL-00011"}
    assert pipeline.assets()["VC-FIL-00010"]["folder"] == "FILE"
    assert pipeline.rejections() == {k: {Rule.FOLDER_MISMATCH} for k in brd_in_file.objects}


def test_custom_folder_types_through_the_environment(pipeline, put_many, monkeypatch):
    monkeypatch.setenv("ACH_FOLDER_TYPES", "AUDIO=CAS,DAT; VIDEO=BRD")
    cas = make_asset("AUDIO", "AO-CAS-00001")
    dat = make_asset("AUDIO", "AC-DAT-00002")
    vhs = make_asset("AUDIO", "AO-VHS-00003")  # VHS is not mapped to AUDIO/
    brd = make_asset("VIDEO", "VO-BRD-00004")
    put_many([*cas.items(), *dat.items(), *vhs.items(), *brd.items()])

    audio, video = pipeline.run("AUDIO"), pipeline.run("VIDEO")

    assert audio.success and video.success
    assert set(pipeline.assets()) == {"AO-CAS-00001", "AC-DAT-00002", "VO-BRD-00004"}
    assert {a["folder"] for a in pipeline.assets().values()} == {"AUDIO", "VIDEO"}
    assert pipeline.rejections() == {k: {Rule.FOLDER_MISMATCH} for k in vhs.objects}
    assert audio.metadata("validated_inventory")["rejected_by_rule"] == {
        Rule.FOLDER_MISMATCH: len(vhs.objects)
    }


def test_folder_types_can_also_be_set_per_run(pipeline, put_many):
    asset = make_asset("AUDIO", "AO-CAS-00001")
    put_many(asset.items())

    default = pipeline.run("AUDIO")
    assert pipeline.rejections() == {k: {Rule.FOLDER_MISMATCH} for k in asset.objects}
    assert default.metadata("validated_inventory")["valid"] == 0

    mapped = pipeline.run("AUDIO", folder_types="AUDIO=CAS")
    assert mapped.success
    assert set(pipeline.assets()) == {"AO-CAS-00001"}
    # The earlier rejections are resolved, not deleted.
    assert pipeline.rejections() == {}
    assert len(pipeline.rejections(open_only=False)) == len(asset.objects)
    assert mapped.metadata("catalog_records")["rejections_resolved"] == len(asset.objects)


def test_awkward_keys_are_staged_exactly_with_their_verdicts(pipeline, put_many):
    """Discovery stages Arrow pages as CSV into COPY: quotes, commas, percent signs, non-ASCII
    and empty-looking parts must come back byte for byte, with NULL kept apart from ''."""
    awkward = [
        'BRD/VO-BRD-00001 "quoted", with comma.json',
        "BRD/VO-BRD-00002 100% +plus.md5",
        "BRD/Ünïcødé/VO-BRD-00003.pdf",
        "BRD/VO-BRD-0004,.mp4",  # rejected: bad code
        "BRD/notes, draft.txt",  # ignored
        "BRD/VO-BRD-00005;semi:colon+plus.json",
    ]
    put_many([(key, b"x") for key in awkward])
    run = pipeline.run("BRD")

    assert run.success
    rows = pipeline.query(
        "SELECT key, considered, inventory_code, role, rule, size_bytes, etag IS NOT NULL"
        " FROM ingest.listing ORDER BY key"
    )
    staged = {key: rest for key, *rest in rows}
    assert set(staged) == set(awkward)
    assert staged[awkward[0]] == [True, "VO-BRD-00001", "metadata", None, 1, True]
    assert staged[awkward[1]] == [True, "VO-BRD-00002", "checksum", None, 1, True]
    assert staged[awkward[2]] == [True, "VO-BRD-00003", "qc_report", None, 1, True]
    assert staged[awkward[3]] == [True, None, "streaming_copy", Rule.BAD_INVENTORY_CODE, 1, True]
    assert staged[awkward[4]] == [False, None, None, None, 1, True]
    assert staged[awkward[5]] == [True, "VO-BRD-00005", "metadata", None, 1, True]
    meta = run.metadata("s3_objects")
    assert (meta["found"], meta["considered"], meta["ignored"]) == (6, 5, 1)
    assert meta["ignored_by_reason"] == {"extension .txt": 1}
