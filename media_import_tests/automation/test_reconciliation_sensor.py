"""The reconciliation sensor, ticked against a real bucket, database and Dagster instance."""

from __future__ import annotations

import json

import dagster as dg

from media_import.defs.automation.sensors import build_reconciliation_sensor
from media_import_tests.automation.conftest import requested
from media_import_tests.pipeline.conftest import make_asset


def _catalogued(watch) -> dict[str, bool]:
    """key -> live, for every catalogued file."""
    return {k: d is None for k, d in watch.query("SELECT key, deleted_at FROM asset_file")}


def test_new_folders_are_registered_and_imported_once(watch, put_many):
    vhs, brd = make_asset("VHS", "VO-VHS-00001"), make_asset("BRD", "VO-BRD-00001")
    put_many([*vhs.items(), *brd.items()])

    first = watch.reconcile()

    assert requested(first) == {"VHS": "VHS@1", "BRD": "BRD@1"}
    assert set(watch.instance.get_dynamic_partitions("folders")) == {"VHS", "BRD"}
    request = first.run_requests[0]
    assert request.tags["media_import/trigger"] == "reconcile"
    assert request.tags["dagster/priority"] == "10"
    assert json.loads(first.cursor)["pass_number"] == 2  # the small bucket fits in one tick

    assert all(r.success for r in watch.run_all(first))
    assert set(_catalogued(watch)) == set(vhs.objects) | set(brd.objects)

    # Imported: nothing changed, nothing requested, and the tick says what it looked at.
    quiet = watch.reconcile()
    assert requested(quiet) == {}
    assert "listed 8 keys" in quiet.skip_reason.skip_message
    assert "changes: none" in quiet.skip_reason.skip_message


def test_a_requested_but_unrun_folder_keeps_its_key_until_it_runs(watch, put_many):
    put_many(make_asset("VHS", "VO-VHS-00001").items())
    assert requested(watch.reconcile()) == {"VHS": "VHS@1"}
    # The daemon dedupes the repeated key; once it runs, the folder stops being asked for.
    again = watch.reconcile()
    assert requested(again) == {"VHS": "VHS@1"}
    watch.run_all(again)
    assert requested(watch.reconcile()) == {}


def test_an_object_overwritten_in_place_is_seen_whatever_its_timestamp(watch, put_many):
    asset = make_asset("VHS", "VO-VHS-00001")
    put_many(asset.items())
    watch.run_all(watch.reconcile())

    # Same key, same second, other bytes: only ETag and size tell.
    put_many([(asset.key(".pdf"), asset.objects[asset.key(".pdf")] + b"\n% rev 2\n")])
    tick = watch.reconcile()

    assert requested(tick) == {"VHS": "VHS@2"}
    assert watch.query("SELECT generation FROM ingest.folder_state") == [(2,)]
    watch.run_all(tick)
    size = watch.query("SELECT size_bytes FROM asset_file WHERE key = %s", (asset.key(".pdf"),))
    assert size == [(len(asset.objects[asset.key(".pdf")]) + 9,)]


def test_a_key_sorting_before_the_last_seen_key_is_not_missed(watch, put_many):
    # A "since key" watermark skips a key that sorts before the last one seen, and a
    # LastModified watermark skips one written in the same second: a diff misses neither.
    later = make_asset("VHS", "VO-VHS-00009")
    put_many(later.items())
    watch.run_all(watch.reconcile())

    earlier = make_asset("VHS", "VO-VHS-00001")
    put_many(earlier.items())
    tick = watch.reconcile()

    assert requested(tick) == {"VHS": "VHS@2"}
    watch.run_all(tick)
    assert set(_catalogued(watch)) == set(later.objects) | set(earlier.objects)


def test_a_removal_requests_only_its_folder_and_a_reupload_restores(watch, put_many, s3, bucket):
    vhs, brd = make_asset("VHS", "VO-VHS-00001"), make_asset("BRD", "VO-BRD-00001")
    put_many([*vhs.items(), *brd.items()])
    watch.run_all(watch.reconcile())

    s3.delete_object(Bucket=bucket, Key=vhs.streaming_key)
    tick = watch.reconcile()

    assert requested(tick) == {"VHS": "VHS@2"}  # BRD is not reprocessed
    watch.run_all(tick)
    live = _catalogued(watch)
    assert not any(live[k] for k in vhs.objects)
    assert all(live[k] for k in brd.objects)

    put_many(vhs.items(".mp4"))
    tick = watch.reconcile()
    assert requested(tick) == {"VHS": "VHS@3"}
    watch.run_all(tick)
    assert all(_catalogued(watch).values())


def test_a_failed_import_is_retried_by_a_later_tick_under_a_new_key(watch, put_many):
    # An incomplete asset makes a safe run fail, every time: a run key used by a failed run
    # must not block the retry, and retries must stop.
    put_many([*make_asset("VHS", "VO-VHS-00001").items(), ("VHS/VO-VHS-00002.json", b"{}")])
    tick = watch.reconcile()
    assert requested(tick) == {"VHS": "VHS@1"}
    for attempt in range(1, 4):
        result = watch.run(tick.run_requests[0], safe_run=True)
        assert not result.success
        tick = watch.reconcile()
        if attempt < 3:
            assert requested(tick) == {"VHS": f"VHS@1#{attempt}"}
    # Three failures of one generation: the folder waits for its next change.
    assert requested(tick) == {}
    assert "gave up after 3 failed runs" in tick.skip_reason.skip_message
    put_many([("VHS/VO-VHS-00002.json", b"{ }")])
    assert requested(watch.reconcile()) == {"VHS": "VHS@2"}


def test_a_pass_continues_across_ticks_in_bounded_chunks(watch, put_many, s3, bucket):
    assets = [make_asset("VHS", f"VO-VHS-{n:05d}") for n in range(1, 7)]  # 24 keys
    put_many([item for a in assets for item in a.items()])
    sensor = build_reconciliation_sensor(max_keys=10, chunk_keys=5, interval=1)

    first = watch.reconcile(sensor)
    cursor = json.loads(first.cursor)
    assert cursor["start_after"] == "VHS/VO-VHS-00003.md5"  # 10 keys, two chunks of 5
    assert cursor["pass_number"] == 1
    assert cursor["listed_in_pass"] == 10
    # A removal beyond the covered range is not judged before its range is listed.
    s3.delete_object(Bucket=bucket, Key=assets[5].streaming_key)
    second = watch.reconcile(sensor)
    assert json.loads(second.cursor)["start_after"] == "VHS/VO-VHS-00005.pdf"
    third = watch.reconcile(sensor)
    assert json.loads(third.cursor) == {
        "start_after": None,
        "pass_number": 2,
        "pass_started_at": None,
        "listed_in_pass": 0,
    }
    seen = dict(watch.query("SELECT key, present FROM ingest.bucket_object"))
    assert len(seen) == 23  # the removed key was never listed, so never seen
    assert assets[5].streaming_key not in seen
    # Every tick asked for the folder (it was never imported): one key per generation.
    assert [requested(t)["VHS"] for t in (first, second, third)] == ["VHS@2", "VHS@4", "VHS@5"]


def test_a_folder_imported_by_hand_is_not_imported_again_by_the_sensor(watch, put_many):
    vhs, brd = make_asset("VHS", "VO-VHS-00001"), make_asset("BRD", "VO-BRD-00001")
    put_many([*vhs.items(), *brd.items()])
    watch.instance.add_dynamic_partitions("folders", ["VHS", "BRD"])
    # A backfill (no sensor tags): VHS imports, BRD fails in safe run (an incomplete asset).
    put_many([("BRD/VO-BRD-00002.json", b"{}")])
    assert watch.run(dg.RunRequest(partition_key="VHS")).success
    assert not watch.run(dg.RunRequest(partition_key="BRD"), safe_run=True).success

    # The runs' listings fed the sensors' view: only the folder whose import failed is due.
    assert requested(watch.reconcile()) == {"BRD": "BRD@1"}
