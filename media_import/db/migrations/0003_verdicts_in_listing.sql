-- Discovery judges each key once, vectorised, and stages its verdict with the listing;
-- validation reads the verdicts instead of judging every key a second time in Python and
-- copying the folder into a table of its own. The inventory becomes a view of the listing.

ALTER TABLE ingest.listing
    ADD COLUMN inventory_code text,
    ADD COLUMN role           text,
    ADD COLUMN rule           text,   -- NULL: valid (when considered)
    ADD COLUMN message        text;

-- Keep the verdicts of the last validation; keys listed but not validated since are not
-- considered until their folder is discovered again (which always precedes its validation).
UPDATE ingest.listing l
SET inventory_code = i.inventory_code, role = i.role, rule = i.rule, message = i.message
FROM ingest.inventory_file i
WHERE i.bucket = l.bucket AND i.key = l.key;

UPDATE ingest.listing l SET considered = false
WHERE considered AND NOT EXISTS (
    SELECT 1 FROM ingest.inventory_file i WHERE i.bucket = l.bucket AND i.key = l.key);

DROP TABLE ingest.inventory_file;

CREATE VIEW ingest.inventory_file AS
SELECT bucket, folder, key, inventory_code, role, size_bytes, etag, last_modified, rule, message
FROM ingest.listing
WHERE considered;
