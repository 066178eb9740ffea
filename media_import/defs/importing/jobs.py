"""The import job: the four phases of one or more folders."""

import dagster as dg

from media_import.defs.importing.assets import (
    catalog_records,
    new_media_files,
    s3_objects,
    validated_inventory,
)

IMPORT_JOB_NAME = "import_folder"

import_assets = dg.AssetSelection.assets(
    s3_objects, validated_inventory, new_media_files, catalog_records
)

import_job = dg.define_asset_job(
    IMPORT_JOB_NAME,
    selection=import_assets,
    description="Import one folder: discovery, validation, new files, catalog insert.",
)
