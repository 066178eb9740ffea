-- Indexes for the insert step and the catalog checks at archive scale (1M objects).
--
-- Every per-folder query of the catalog reads live rows only (deleted_at IS NULL), so the
-- folder indexes become partial on live rows and carry what the checks count: once autovacuum
-- has marked the pages all-visible, a folder's totals are index-only scans instead of visits
-- to every heap page of the folder (asset rows carry their whole technical metadata).
-- They replace the plain folder indexes, so that a first import maintains no more indexes
-- than before. Nothing in the catalog is ever hard-deleted, so no index of the foreign key
-- asset_file.inventory_code is needed for deletes of assets; the checks and the soft delete
-- read the live files of a code, which the partial code index below serves.

CREATE INDEX asset_live_folder_idx ON asset (folder, inventory_code) INCLUDE (bucket)
    WHERE deleted_at IS NULL;
DROP INDEX asset_folder_idx;

CREATE INDEX asset_file_live_folder_idx ON asset_file (bucket, folder) INCLUDE (md5_verified)
    WHERE deleted_at IS NULL;
DROP INDEX asset_file_folder_idx;

-- In code order, the duplicate check is one pass over this index without a sort.
CREATE INDEX asset_file_live_code_idx ON asset_file (inventory_code, folder) INCLUDE (role, bucket)
    WHERE deleted_at IS NULL;
DROP INDEX asset_file_code_idx;

-- Files listed in an .md5 sidecar but not verified: normally none, so this stays empty.
CREATE INDEX asset_file_unverified_idx ON asset_file (bucket, folder, key)
    WHERE deleted_at IS NULL AND md5_source = 'md5sum' AND NOT md5_verified;

-- The folder's phase-1 rejections, without reading the whole folder's listing every run.
CREATE INDEX listing_rejected_idx ON ingest.listing (bucket, folder)
    WHERE considered AND rule IS NOT NULL;
