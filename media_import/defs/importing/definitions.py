"""The importing domain: assets, their checks, the import job and the resources."""

import dagster as dg

from media_import.defs.importing.assets import (
    catalog_records,
    new_media_files,
    s3_objects,
    validated_inventory,
)
from media_import.defs.importing.inventory_asset import bucket_inventory
from media_import.defs.importing.inventory_job import bucket_inventory_job, nightly_bucket_inventory
from media_import.defs.importing.jobs import import_job
from media_import.defs.importing.resources import resources_from_env


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            s3_objects,
            validated_inventory,
            new_media_files,
            catalog_records,
            bucket_inventory,
        ],
        jobs=[import_job, bucket_inventory_job],
        schedules=[nightly_bucket_inventory],
        resources=resources_from_env(),
    )
