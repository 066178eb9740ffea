"""The code location loads, and `bucket_inventory` discovers folders as partitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from media_import.core.inventory import DEFAULT_EXCLUDED_FOLDERS, folder_of
from media_import.core.partition_keys import folder_to_partition_key
from media_import.samples.archive import build_sample_archive
from media_import_tests.pipeline.conftest import IMPORT_JOB

REPO = Path(__file__).resolve().parents[2]
IMPORT_ASSETS = {"s3_objects", "validated_inventory", "new_media_files", "catalog_records"}
CHECKS = {
    ("validated_inventory", "no_rejected_files"),
    ("new_media_files", "no_rejected_assets"),
    ("catalog_records", "complete_assets_catalogued"),
    ("catalog_records", "unique_inventory_codes"),
    ("catalog_records", "keys_exist_in_bucket"),
    ("catalog_records", "checksums_verified"),
}


def test_definitions_load_and_resolve(s3_env):
    from media_import.definitions import build_definitions

    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)

    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {
        *IMPORT_ASSETS,
        "bucket_inventory",
    }
    assert {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys} == CHECKS
    job = defs.resolve_job_def(IMPORT_JOB)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == IMPORT_ASSETS
    assert isinstance(job.partitions_def, dg.DynamicPartitionsDefinition)
    assert job.partitions_def.name == "folders"
    assert set(defs.resources) >= {"s3", "catalog", "import_settings", "s3_events"}
    # The bucket watchers run as soon as a daemon does; they target the import job.
    for name in ("bucket_reconciliation_sensor", "s3_event_sensor"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
        assert sensor.job_name == IMPORT_JOB


def test_bucket_inventory_registers_the_folders_as_partitions(s3_env, put_many, instance):
    from media_import.defs.importing.inventory_asset import bucket_inventory
    from media_import.defs.importing.resources import resources_from_env

    archive = build_sample_archive()
    put_many([*((o.key, o.body) for o in archive), ("at-the-root.txt", b"stray")])
    instance.add_dynamic_partitions("folders", ["BRD"])  # known already: not new

    result = dg.materialize([bucket_inventory], resources=resources_from_env(), instance=instance)

    assert result.success
    folders = {folder_of(o.key) for o in archive}
    wanted = sorted(folder_to_partition_key(f) for f in folders - set(DEFAULT_EXCLUDED_FOLDERS))
    assert sorted(instance.get_dynamic_partitions("folders")) == wanted
    assert not set(instance.get_dynamic_partitions("folders")) & set(DEFAULT_EXCLUDED_FOLDERS)

    (mat,) = result.asset_materializations_for_node("bucket_inventory")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["objects"] == len(archive) + 1
    assert meta["bytes"] == sum(len(o.body) for o in archive) + len(b"stray")
    assert sorted(meta["new_partitions"]) == [k for k in wanted if k != "BRD"]
    rows = mat.metadata["by_folder_and_extension"].value.records
    by_cell = {(r.data["folder"], r.data["extension"]): r.data for r in rows}
    assert by_cell[("(root)", ".txt")]["objects"] == 1
    assert by_cell[("UMT", ".mp4")]["excluded"] is True
    assert by_cell[("BRD", ".mp4")]["excluded"] is False
    assert sum(r.data["objects"] for r in rows) == len(archive) + 1

    # A second materialisation finds nothing new.
    again = dg.materialize([bucket_inventory], resources=resources_from_env(), instance=instance)
    (mat,) = again.asset_materializations_for_node("bucket_inventory")
    assert mat.metadata["new_partitions"].value == []


def test_worker_counts_come_from_the_environment(s3_env, monkeypatch):
    from media_import.concurrency import DEFAULT_FOLDER_WORKERS, DEFAULT_INSERT_WORKERS
    from media_import.defs.importing.resources import resources_from_env

    for name in ("ACH_FOLDER_WORKERS", "ACH_INSERT_WORKERS", "ACH_PLAN_PROCESSES"):
        monkeypatch.delenv(name, raising=False)
    settings = resources_from_env()["import_settings"]
    assert (settings.folder_workers, settings.insert_workers) == (
        DEFAULT_FOLDER_WORKERS,
        DEFAULT_INSERT_WORKERS,
    )
    monkeypatch.setenv("ACH_FOLDER_WORKERS", "5")
    monkeypatch.setenv("ACH_INSERT_WORKERS", "4")
    monkeypatch.setenv("ACH_PLAN_PROCESSES", "0")
    settings = resources_from_env()["import_settings"]
    assert (settings.folder_workers, settings.insert_workers, settings.plan_processes) == (5, 4, 0)


def test_s3_tuning_comes_from_the_environment(s3_env, monkeypatch):
    from media_import.core.storage import DEFAULT_CONCURRENCY, DEFAULT_LIST_CONCURRENCY
    from media_import.defs.importing.resources import resources_from_env

    for name in ("S3_CONCURRENCY", "S3_LIST_CONCURRENCY", "S3_FORCE_PATH_STYLE"):
        monkeypatch.delenv(name, raising=False)
    bucket = resources_from_env()["s3"].process_config_and_initialize().open()
    assert (bucket.concurrency, bucket.list_concurrency, bucket.config.force_path_style) == (
        DEFAULT_CONCURRENCY,
        DEFAULT_LIST_CONCURRENCY,
        False,
    )
    monkeypatch.setenv("S3_CONCURRENCY", "64")
    monkeypatch.setenv("S3_LIST_CONCURRENCY", "4")
    monkeypatch.setenv("S3_FORCE_PATH_STYLE", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    s3 = resources_from_env()["s3"].process_config_and_initialize()
    opened = s3.open()
    assert (opened.concurrency, opened.list_concurrency) == (64, 4)
    assert (opened.config.force_path_style, opened.config.max_attempts) == (True, 3)
    # The planning processes read with the same settings.
    job = s3.planning_job(resources_from_env()["catalog"].process_config_and_initialize())
    assert (job.concurrency, job.list_concurrency, job.s3) == (64, 4, opened.config)


def test_dg_check_defs_loads_the_project(s3_env):
    """`dg check defs`, Dagster's own check of a dg project ([tool.dg] in pyproject.toml),
    loads the code location cleanly: what `dg dev` and the demo serve."""
    venv = Path(sys.executable).parent
    env = {**os.environ, "VIRTUAL_ENV": str(venv.parent)}  # the project's environment
    done = subprocess.run(
        [str(venv / "dg"), "check", "defs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All definitions loaded successfully." in output
    assert "Warning" not in output and "warning" not in output, output


def test_every_import_asset_shares_the_one_backfill_policy(s3_env):
    """One policy object for the four import assets: the launch dialog's 'varying backfill
    policies' notice (Dagster 1.13's UI compares the assets' policy objects as received,
    so it shows whenever several assets are chosen) is not about this project."""
    from media_import.defs.importing import assets

    policies = {
        id(getattr(assets, name).backfill_policy): getattr(assets, name).backfill_policy
        for name in sorted(IMPORT_ASSETS)
    }
    assert list(policies.values()) == [dg.BackfillPolicy.single_run()]
    assert len(policies) == 1
