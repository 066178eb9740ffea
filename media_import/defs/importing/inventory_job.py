"""The bucket-wide count, on demand and nightly (the original's countfiles)."""

import dagster as dg

from media_import.defs.importing.inventory_asset import bucket_inventory

bucket_inventory_job = dg.define_asset_job(
    "bucket_inventory_job",
    selection=dg.AssetSelection.assets(bucket_inventory),
    description="Count the bucket by folder and extension; register new folders as partitions.",
)

nightly_bucket_inventory = dg.ScheduleDefinition(
    job=bucket_inventory_job,
    cron_schedule="0 2 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
