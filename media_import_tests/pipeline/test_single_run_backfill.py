"""A backfill of several folders as one run (BackfillPolicy.single_run): every step loops over
the run's folders."""

from __future__ import annotations

import dagster as dg

from media_import.defs.importing.partitions import register_folders
from media_import_tests.pipeline.conftest import IMPORT_JOB, make_asset


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
    mats = result.asset_materializations_for_node("catalog_records")
    assert sorted(m.partition for m in mats) == ["BRD", "DVC", "VHS"]
    meta = {k: v.value for k, v in mats[0].metadata.items()}
    assert (meta["folder"], meta["inserted_assets"], meta["inserted_files"]) == ("3 folders", 3, 12)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert len(checks) == 6 and all(c.passed for c in checks.values())

    # Repeating the backfill inserts nothing.
    again = _range_run(pipeline, "VHS", "DVC")
    (mat, *_) = again.asset_materializations_for_node("catalog_records")
    assert mat.metadata["inserted_assets"].value == 0
    assert pipeline.count("asset_file") == 12


def test_a_rejection_in_one_folder_fails_the_run_check_not_the_other_folders(pipeline, put_many):
    put_many([*make_asset("VHS", "VO-VHS-00001").items(), ("BRD/not-a-code.mp4", b"x")])
    register_folders(pipeline.instance, ["VHS", "BRD"])

    result = _range_run(pipeline, "VHS", "BRD")

    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["no_rejected_files"].passed
    assert "VO-VHS-00001" in pipeline.assets()
