-- Incremental discovery: a folder's listing is staged in key ranges, and a range whose listing
-- matches what was staged for it last time is neither rewritten nor diffed again.

-- The listing's keys in S3's order (UTF-8 bytes, the "C" collation's), as the seen objects'
-- are: a key range (after, upto] is then a range of the primary key's index. Equality with
-- keys of the default collation (the catalog's) is unchanged.
DROP VIEW ingest.inventory_file;
ALTER TABLE ingest.listing ALTER COLUMN key TYPE text COLLATE "C";
CREATE VIEW ingest.inventory_file AS
SELECT bucket, folder, key, inventory_code, role, size_bytes, etag, last_modified, rule, message
FROM ingest.listing
WHERE considered;

-- The key ranges of each folder's staged listing, in order: range `seq` holds the folder's
-- keys after the previous range's `upto` up to its own (the first from the folder's start,
-- the last, upto NULL, to its end). Each carries two digests of what was listed there
-- (media_import.db.watch): `listed_digest` over every object (key, ETag, size, time), to
-- tell an unchanged range; `seen_digest` over the considered ones (key, ETag, size), the
-- reconciliation's, to compare with the seen objects; and the range's discovery figures.
-- Written with the listing rows and their diff against the seen objects, in one transaction.
CREATE TABLE ingest.listing_range (
    bucket        text             NOT NULL,
    folder        text             NOT NULL,
    seq           integer          NOT NULL,
    upto          text COLLATE "C",
    listed_digest text             NOT NULL,
    seen_digest   text             NOT NULL,
    found         integer          NOT NULL,
    kept          integer          NOT NULL,
    kept_bytes    bigint           NOT NULL,
    ignored       jsonb            NOT NULL,  -- reason -> count
    PRIMARY KEY (bucket, folder, seq)
);

-- The phase 1 rules the folder's staged verdicts were judged with (a fingerprint): staged
-- ranges are reused only under the same rules.
ALTER TABLE ingest.listing_state ADD COLUMN rules text;
