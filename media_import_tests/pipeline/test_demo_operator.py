"""The demo's operator commands: what they upload is a complete asset the import accepts, and
a removal soft-deletes it."""

from __future__ import annotations

import pytest

from media_import.demo.operator import DemoBucket, remove_object, upload_asset


@pytest.fixture
def demo_root(tmp_path, s3_server, bucket):
    (tmp_path / ".demo").mkdir()
    t = s3_server
    DemoBucket(t.endpoint_url, bucket, t.access_key, t.secret_key, t.region).save(tmp_path)
    return tmp_path


def test_an_uploaded_sample_asset_is_imported_and_its_removal_soft_deletes(demo_root, pipeline):
    keys = upload_asset(demo_root, "BRD")

    assert [k.rsplit(".", 1)[1] for k in keys] == ["mp4", "json", "md5", "pdf"]
    code = keys[0].split("/")[1][:12]
    run = pipeline.run("BRD")
    assert run.success and run.checks()["no_rejected_assets"].passed
    assert pipeline.assets()[code]["deleted_at"] is None

    remove_object(demo_root, keys[0])
    pipeline.run("BRD")
    assert pipeline.assets()[code]["deleted_reason"] == "streaming_copy removed"


def test_without_a_running_demo_the_commands_say_so(tmp_path):
    with pytest.raises(SystemExit, match="no running demo found"):
        upload_asset(tmp_path, "BRD")
