"""`bucket_inventory`: the whole bucket counted by folder and extension (the original's
countfiles), and the discovery of folders as partitions."""

from collections import defaultdict

import dagster as dg

from media_import.core.inventory import extension_of, filename_of, folder_of, is_excluded
from media_import.defs.importing.partitions import register_folders
from media_import.defs.importing.resources import ImportSettings, S3BucketResource

_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("folder", "string"),
        dg.TableColumn("extension", "string"),
        dg.TableColumn("objects", "int"),
        dg.TableColumn("bytes", "int"),
        dg.TableColumn("excluded", "bool"),
    ]
)


@dg.asset(
    group_name="media_import",
    kinds={"s3"},
    description="Objects and bytes per top-level folder and extension across the whole bucket. "
    "Registers every non-excluded folder as a partition of the import.",
)
def bucket_inventory(
    context: dg.AssetExecutionContext, s3: S3BucketResource, import_settings: ImportSettings
) -> dg.MaterializeResult:
    rules = import_settings.rules()
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for page in s3.open().list_pages():
        for info in page:
            cell = counts[(folder_of(info.key), extension_of(filename_of(info.key)))]
            cell[0] += 1
            cell[1] += info.size
    folders = sorted({f for f, _ in counts if f and not is_excluded(f, rules)})
    new_keys = register_folders(context.instance, folders)
    records = [
        dg.TableRecord(
            {
                "folder": folder or "(root)",
                "extension": ext or "(none)",
                "objects": n,
                "bytes": size,
                "excluded": is_excluded(folder, rules),
            }
        )
        for (folder, ext), (n, size) in sorted(counts.items())
    ]
    return dg.MaterializeResult(
        metadata={
            "objects": sum(n for n, _ in counts.values()),
            "bytes": sum(size for _, size in counts.values()),
            "folders": len({f for f, _ in counts}),
            "new_partitions": dg.MetadataValue.json(new_keys),
            "by_folder_and_extension": dg.MetadataValue.table(records, schema=_SCHEMA),
        }
    )
