-- Incremental planning: a folder's phase 2 and insert step look only at the key ranges its
-- listing restaged since its last import, while nothing else changed its catalog rows.
--
-- Phase 2 compares a folder's valid files with its live catalog files, and the insert step
-- its live files with its listing. Both are exact over the whole folder; at 1M objects they
-- were 8.8 s of a steady-state run's 14 s of statement time, to find 1% new. After an import
-- that carried out its plan, the folder's catalog holds every valid listed file but those of
-- its kept (deferred or rejected) plans, and no file its listing does not back. Until its
-- listing or its catalog rows change, that stays true; so what can differ is in the ranges
-- restaged since, the kept plans' codes, and the codes of assets losing a file there.

-- Key ranges (after, upto] of a folder's listing restaged since the folder's last import
-- (NULL bounds: its start, its end). Appended by discovery, consumed by the import.
CREATE UNLOGGED TABLE ingest.restaged_range (
    id     bigserial PRIMARY KEY,
    bucket text NOT NULL,
    folder text NOT NULL,
    after  text COLLATE "C",
    upto   text COLLATE "C"
);
CREATE INDEX restaged_range_folder_idx ON ingest.restaged_range (bucket, folder, id);

-- Per folder: `epoch`, bumped by every change of the folder's catalog files that is not its
-- own import (another folder's import soft-deleting an asset's files here, a hand edit);
-- `synced_epoch`, the epoch at which the folder's last import left its catalog in step with
-- its listing (NULL: not known to be). Incremental only while the two are equal.
-- Unlogged, as the staged plans are: a crash empties both together, and with no row here a
-- folder is planned whole again (its kept plans, which the incremental scope relies on, were
-- in the emptied tables).
CREATE UNLOGGED TABLE ingest.catalog_state (
    bucket       text   NOT NULL,
    folder       text   NOT NULL,
    epoch        bigint NOT NULL DEFAULT 0,
    synced_epoch bigint,
    PRIMARY KEY (bucket, folder)
);

-- What a staged plan was made from: the catalog epoch it saw and the last restaged range it
-- covered. The import records the sync only if the epoch has not moved since.
ALTER TABLE ingest.pending_plan
    ADD COLUMN catalog_epoch bigint,
    ADD COLUMN restaged_upto bigint;

-- Keys in S3's order (UTF-8 bytes), as the listing's: a restaged range is then a range of
-- the (bucket, key) index. Equality is unchanged.
ALTER TABLE asset_file ALTER COLUMN key TYPE text COLLATE "C";

-- An import sets media_import.importing to '<bucket>/<folder>' for its transaction: its own
-- rows are not a change it has to be told of. Any other write bumps the epoch of each folder
-- it touched; a statement without rows to read (INSERT, TRUNCATE) bumps every folder's.
CREATE FUNCTION ingest.catalog_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR coalesce(current_setting('media_import.importing', true), '') = ''
    THEN
        -- An import inserts only its own folder's rows, so only other writers get here.
        UPDATE ingest.catalog_state SET epoch = epoch + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ingest.catalog_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    importing text := coalesce(current_setting('media_import.importing', true), '');
BEGIN
    IF TG_OP = 'UPDATE' THEN
        UPDATE ingest.catalog_state cs SET epoch = cs.epoch + 1
        FROM (SELECT bucket, folder FROM old_rows UNION SELECT bucket, folder FROM new_rows) t
        WHERE cs.bucket = t.bucket AND cs.folder = t.folder
          AND t.bucket || '/' || t.folder <> importing;
    ELSE
        UPDATE ingest.catalog_state cs SET epoch = cs.epoch + 1
        FROM (SELECT DISTINCT bucket, folder FROM old_rows) t
        WHERE cs.bucket = t.bucket AND cs.folder = t.folder
          AND t.bucket || '/' || t.folder <> importing;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER asset_file_inserted AFTER INSERT ON asset_file
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.catalog_written();
CREATE TRIGGER asset_file_truncated AFTER TRUNCATE ON asset_file
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.catalog_written();
CREATE TRIGGER asset_file_updated AFTER UPDATE ON asset_file
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.catalog_rows_changed();
CREATE TRIGGER asset_file_deleted AFTER DELETE ON asset_file
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.catalog_rows_changed();

-- A scoped plan reads the valid files of its codes wherever they are in the folder: by code
-- through this index (a folder's queries use its prefix, as they did the index it replaces).
CREATE INDEX listing_folder_code_idx ON ingest.listing (bucket, folder, inventory_code);
DROP INDEX ingest.listing_folder_idx;
