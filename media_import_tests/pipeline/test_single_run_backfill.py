"""A backfill of several folders as one run (BackfillPolicy.single_run): every step loops over
the run's folders, and each folder's partition gets its own counts and check results."""

from __future__ import annotations

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter  # the storage API's own argument

from media_import.cli.summary import latest_summaries
from media_import.defs.importing.partitions import register_folders
from media_import_tests.pipeline.conftest import IMPORT_JOB, make_asset

CHECKS = (
    "no_rejected_files",
    "no_rejected_assets",
    "complete_assets_catalogued",
    "unique_inventory_codes",
    "keys_exist_in_bucket",
    "checksums_verified",
)


def _range_run(pipeline, first: str, last: str) -> dg.ExecuteInProcessResult:
    return pipeline.defs.resolve_job_def(IMPORT_JOB).execute_in_process(
        instance=pipeline.instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )


def test_the_import_assets_backfill_in_a_single_run(pipeline):
    graph = pipeline.defs.resolve_asset_graph()
    for key in ("s3_objects", "validated_inventory", "new_media_files", "catalog_records"):
        policy = graph.get(dg.AssetKey(key)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None


def test_one_run_imports_every_folder_of_its_range(pipeline, put_many):
    assets = [make_asset(f, f"VO-{f}-00001") for f in ("VHS", "BRD", "DVC")]
    put_many([item for a in assets for item in a.items()])
    register_folders(pipeline.instance, ["VHS", "BRD", "DVC"])

    result = _range_run(pipeline, "VHS", "DVC")

    assert result.success
    assert set(pipeline.assets()) == {"VO-VHS-00001", "VO-BRD-00001", "VO-DVC-00001"}
    for node in ("s3_objects", "validated_inventory", "new_media_files", "catalog_records"):
        mats = result.asset_materializations_for_node(node)
        assert sorted(m.partition for m in mats) == ["BRD", "DVC", "VHS"]
        assert {m.partition: m.metadata["folder"].value for m in mats} == {
            f: f for f in ("BRD", "DVC", "VHS")
        }
    by_folder = _metadata_by_partition(result, "catalog_records")
    assert {f: (m["inserted_assets"], m["inserted_files"]) for f, m in by_folder.items()} == {
        "BRD": (1, 4),
        "DVC": (1, 4),
        "VHS": (1, 4),
    }
    assert {f: m["found"] for f, m in _metadata_by_partition(result, "s3_objects").items()} == {
        "BRD": 4,
        "DVC": 4,
        "VHS": 4,
    }
    # Each check evaluated once per folder, on that folder's partition.
    evaluations = result.get_asset_check_evaluations()
    assert sorted((e.check_name, e.partition) for e in evaluations) == sorted(
        (name, folder) for name in CHECKS for folder in ("BRD", "DVC", "VHS")
    )
    assert all(e.passed for e in evaluations)

    # Repeating the backfill inserts nothing.
    again = _range_run(pipeline, "VHS", "DVC")
    by_folder = _metadata_by_partition(again, "catalog_records")
    assert {m["inserted_assets"] for m in by_folder.values()} == {0}
    assert pipeline.count("asset_file") == 12


def test_a_rejection_in_one_folder_fails_the_run_check_not_the_other_folders(pipeline, put_many):
    put_many([*make_asset("VHS", "VO-VHS-00001").items(), ("BRD/not-a-code.mp4", b"x")])
    register_folders(pipeline.instance, ["VHS", "BRD"])

    result = _range_run(pipeline, "VHS", "BRD")

    assert result.success
    checks = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert not checks["no_rejected_files", "BRD"].passed
    assert checks["no_rejected_files", "VHS"].passed
    assert "VO-VHS-00001" in pipeline.assets()
    rejected = _metadata_by_partition(result, "validated_inventory")
    assert {f: m["rejected"] for f, m in rejected.items()} == {"BRD": 1, "VHS": 0}

    # The instance keeps each partition's latest check execution: what a folder's page shows.
    key = dg.AssetCheckKey(dg.AssetKey("validated_inventory"), "no_rejected_files")
    storage = pipeline.instance.event_log_storage
    latest = {
        folder: storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=folder)
        )[key]
        for folder in ("BRD", "VHS")
    }
    assert {f: r.status.value for f, r in latest.items()} == {"BRD": "FAILED", "VHS": "SUCCEEDED"}
    # ...each against its partition's latest materialisation (else the UI shows it missing).
    infos = storage.get_asset_check_partition_info([key])
    assert {i.partition_key: i.is_current for i in infos} == {"BRD": True, "VHS": True}
    # The summary the demo prints reads the same, folder by folder.
    brd, vhs = latest_summaries(pipeline.instance, ["BRD", "VHS"])
    assert (brd.status, brd.rejected, brd.inserted) == ("warnings", 1, 0)
    assert brd.failed_checks == ["no_rejected_files"]
    assert (vhs.status, vhs.rejected, vhs.inserted, vhs.failed_checks) == ("ok", 0, 4, [])


def _metadata_by_partition(result: dg.ExecuteInProcessResult, node: str) -> dict[str, dict]:
    return {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(node)
        if m.partition is not None
    }
