-- Automation: what the bucket watchers have seen, which folders changed since their last
-- import, the S3 event inbox, and why a catalog row was soft-deleted.

-- 'removed': the object left the bucket; 'replaced': it was overwritten with other bytes;
-- 'asset_removed': a collateral of an asset whose streaming copy or .json went away.
ALTER TABLE asset_file ADD COLUMN deleted_reason text
    CHECK (deleted_reason IN ('removed', 'replaced', 'asset_removed'));
-- e.g. 'streaming_copy removed', 'metadata replaced'.
ALTER TABLE asset ADD COLUMN deleted_reason text;
CREATE INDEX asset_file_deleted_idx ON asset_file (deleted_at) WHERE deleted_at IS NOT NULL;

-- One row per considered object the sensors have seen (listing diffs and S3 events both write
-- here). Keys use the "C" collation so that their order is S3's (UTF-8 byte order): the
-- reconciliation sensor diffs key ranges page by page. A removal leaves a tombstone
-- (present = false) so that an older creation event delivered late cannot resurrect the key.
CREATE TABLE ingest.bucket_object (
    bucket        text                NOT NULL,
    key           text COLLATE "C"    NOT NULL,
    folder        text                NOT NULL,
    present       boolean             NOT NULL,
    etag          text,
    size_bytes    bigint,
    -- The object's time (from the listing or the event); orders events without a sequencer.
    last_modified timestamptz         NOT NULL,
    -- Sequencer of the last S3 event applied (left-padded hex); NULL when a listing set it.
    sequencer     text,
    changed_at    timestamptz         NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX bucket_object_folder_idx ON ingest.bucket_object (bucket, folder);

-- Per folder: a generation bumped by every observed change, and the generation the latest
-- successful import covered. A folder needs a run while generation > imported_generation.
CREATE TABLE ingest.folder_state (
    bucket              text        NOT NULL,
    folder              text        NOT NULL,
    generation          bigint      NOT NULL DEFAULT 0,
    changed_at          timestamptz,
    imported_generation bigint      NOT NULL DEFAULT 0,
    imported_at         timestamptz,
    imported_run_id     text,
    PRIMARY KEY (bucket, folder)
);

-- Discovery stages every listed object; the ones the importer considers are flagged, and feed
-- the watchers' seen state too (a run's listing of a folder is a reconciliation of it).
ALTER TABLE ingest.listing ADD COLUMN considered boolean NOT NULL DEFAULT true;

-- The folder generation a run's listing covers: every change counted up to it is in it.
CREATE TABLE ingest.listing_state (
    bucket     text        NOT NULL,
    folder     text        NOT NULL,
    generation bigint      NOT NULL,
    listed_at  timestamptz NOT NULL,
    PRIMARY KEY (bucket, folder)
);

-- S3 event notifications, stored before their queue messages are deleted. Redeliveries of one
-- event collapse on the unique index; `outcome` says what applying it did.
CREATE TABLE ingest.s3_event (
    id          bigserial   PRIMARY KEY,
    bucket      text        NOT NULL,
    key         text        COLLATE "C" NOT NULL,
    folder      text,
    kind        text        NOT NULL CHECK (kind IN ('created', 'removed')),
    event_name  text        NOT NULL,
    event_time  timestamptz NOT NULL,
    sequencer   text,
    etag        text,
    size_bytes  bigint,
    version_id  text,
    message_id  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at  timestamptz,
    -- 'changed' | 'unchanged' | 'stale' (an newer event or listing already won) | 'ignored'
    outcome     text
);
CREATE UNIQUE INDEX s3_event_once_idx ON ingest.s3_event
    (bucket, key, kind, event_name, event_time, coalesce(sequencer, ''), coalesce(etag, ''));
CREATE INDEX s3_event_unapplied_idx ON ingest.s3_event (bucket, id) WHERE applied_at IS NULL;

-- Messages that could not be parsed: kept with the reason, for an operator to inspect.
CREATE TABLE ingest.s3_event_malformed (
    message_id    text        PRIMARY KEY,
    body          text        NOT NULL,
    error         text        NOT NULL,
    receive_count integer,
    received_at   timestamptz NOT NULL DEFAULT now()
);
