"""The demo's operator commands: what they upload is a complete asset the import accepts, under
codes the README can name; a removal soft-deletes; every refusal is one line and exit status 2."""

from __future__ import annotations

import socket
import time

import pytest

from media_import.cli.main import main
from media_import.demo.operator import DemoBucket, DemoError, remove_objects, upload_asset


@pytest.fixture
def demo_root(tmp_path, s3_server, bucket, monkeypatch):
    (tmp_path / ".demo").mkdir()
    t = s3_server
    DemoBucket(t.endpoint_url, bucket, t.access_key, t.secret_key, t.region).save(tmp_path)
    monkeypatch.chdir(tmp_path)  # the commands read .demo/s3.json from the working folder
    return tmp_path


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


def test_an_uploaded_sample_asset_is_imported_and_removing_its_code_soft_deletes(
    demo_root, pipeline
):
    keys = upload_asset(demo_root, "BRD")

    assert [k.rsplit(".", 1)[1] for k in keys] == ["mp4", "json", "md5", "pdf"]
    code = keys[0].split("/")[1][:12]
    run = pipeline.run("BRD")
    assert run.success and run.checks()["no_rejected_assets"].passed
    assert pipeline.assets()[code]["deleted_at"] is None

    assert sorted(remove_objects(demo_root, code)) == sorted(keys)
    pipeline.run("BRD")
    assert pipeline.assets()[code]["deleted_reason"] == "streaming_copy removed"


def test_uploads_take_the_same_codes_on_every_demo(tmp_path, s3_server, monkeypatch):
    """Two demos with the same bucket content upload the same codes, in the same order."""
    from media_import.devstack import make_bucket

    codes = []
    for name in ("first", "second"):
        root = tmp_path / name
        (root / ".demo").mkdir(parents=True)
        bucket = f"demo-codes-{name}-{time.monotonic_ns()}"
        make_bucket(s3_server.endpoint_url, bucket, region=s3_server.region)
        t = s3_server
        DemoBucket(t.endpoint_url, bucket, t.access_key, t.secret_key, t.region).save(root)
        codes.append([upload_asset(root, "BRD")[0][4:16] for _ in range(2)])
    assert codes[0] == codes[1]
    assert codes[0][0] != codes[0][1]


def test_the_command_line_prints_one_line_per_command(demo_root, capsys):
    assert main(["demo-upload", "BRD"]) == 0
    uploaded = capsys.readouterr().out.strip()
    assert uploaded.startswith("uploaded BRD/VO-BRD-") and uploaded.endswith(
        ".mp4, .json, .md5, .pdf"
    )
    code = uploaded.split()[1][4:16]

    assert main(["demo-remove", f"BRD/{code}.pdf"]) == 0
    assert capsys.readouterr().out.strip() == f"removed BRD/{code}.pdf"
    assert main(["demo-remove", code]) == 0
    assert capsys.readouterr().out.strip() == f"removed BRD/{code}.json, .md5, .mp4"  # in key order


def test_without_a_running_demo_the_commands_say_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["demo-upload", "BRD"], ["demo-remove", "VO-BRD-00001"]):
        assert "no running demo found" in _one_line_exit_2(argv, capsys)


def test_a_state_file_left_by_a_stopped_demo_is_no_running_demo(tmp_path, monkeypatch, capsys):
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        (tmp_path / ".demo").mkdir()
        DemoBucket(f"http://127.0.0.1:{port}", "media-archive", "demo", "x").save(tmp_path)
        monkeypatch.chdir(tmp_path)
        started = time.monotonic()
        line = _one_line_exit_2(["demo-upload", "BRD"], capsys)
    assert "no running demo found" in line and f"127.0.0.1:{port}" in line
    assert time.monotonic() - started < 5
    with pytest.raises(DemoError):
        DemoBucket.load(tmp_path)


def test_a_missing_key_or_code_is_one_line(demo_root, capsys):
    line = _one_line_exit_2(["demo-remove", "BRD/VO-BRD-63736.json"], capsys)
    assert "no object 'BRD/VO-BRD-63736.json'" in line
    line = _one_line_exit_2(["demo-remove", "VO-BRD-63736"], capsys)
    assert line.endswith("no object of VO-BRD-63736 in s3://" + DemoBucket.load(demo_root).bucket)


@pytest.mark.parametrize(
    ("folder", "says"),
    [
        ("NEWF", "would all be rejected (folder_mismatch: code type NEW"),  # no type of its own
        ("brd", "would all be rejected (folder_mismatch"),
        ("BRX", "would all be rejected"),  # a type, but with --code-type BRD below
        ("UMT", "would all be ignored (excluded folder)"),
    ],
)
def test_uploading_where_the_import_would_reject_needs_force(demo_root, capsys, folder, says):
    argv = ["demo-upload", folder] + (["--code-type", "BRD"] if folder == "BRX" else [])
    line = _one_line_exit_2(argv, capsys)
    assert says in line
    if "would all be" in line:
        assert "--force" in line and f"{folder} would become a partition of rejects" in line
        assert main([*argv, "--force"]) == 0
        assert capsys.readouterr().out.startswith(f"uploaded {folder}/")
