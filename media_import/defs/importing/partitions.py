"""One partition per top-level folder of the bucket, registered as folders are discovered."""

import dagster as dg

from media_import.core.partition_keys import folder_to_partition_key, partition_key_to_folder

folder_partitions = dg.DynamicPartitionsDefinition(name="folders")


def folders_of(context: dg.AssetExecutionContext) -> list[str]:
    """The folders this step works on: one per run, or several in a single-run backfill."""
    return [partition_key_to_folder(k) for k in context.partition_keys]


def register_folders(instance: dg.DagsterInstance, folders: list[str]) -> list[str]:
    """Add partitions for folders not registered yet; returns the new partition keys."""
    wanted = [folder_to_partition_key(f) for f in folders]
    known = set(instance.get_dynamic_partitions(folder_partitions.name or "folders"))
    new = [k for k in wanted if k not in known]
    if new:
        instance.add_dynamic_partitions(folder_partitions.name or "folders", new)
    return new
