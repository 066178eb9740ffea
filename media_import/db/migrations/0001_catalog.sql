-- The catalog (public contract, documented in the README) and the pipeline's working tables.

CREATE TABLE asset (
    id                 bigserial PRIMARY KEY,
    inventory_code     text        NOT NULL UNIQUE
                       CHECK (inventory_code ~ '^[VA][OC]-[A-Z0-9]{3}-[0-9]{5}$'),
    media_kind         text        NOT NULL CHECK (media_kind IN ('video', 'audio')),
    bucket             text        NOT NULL,
    folder             text        NOT NULL,
    master_filename    text,
    master_mime_type   text        NOT NULL,
    master_container   text,
    master_md5         text,
    duration_seconds   double precision,
    metadata_tool      text        CHECK (metadata_tool IN ('ffprobe', 'mediainfo')),
    technical_metadata jsonb       NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    run_id             text        NOT NULL,
    deleted_at         timestamptz,
    deleted_by_run_id  text
);
CREATE INDEX asset_folder_idx ON asset (bucket, folder);

CREATE TABLE asset_file (
    id                 bigserial PRIMARY KEY,
    bucket             text        NOT NULL,
    key                text        NOT NULL,
    folder             text        NOT NULL,
    inventory_code     text        NOT NULL REFERENCES asset (inventory_code),
    role               text        NOT NULL
                       CHECK (role IN ('streaming_copy', 'metadata', 'checksum', 'qc_report')),
    mime_type          text        NOT NULL,
    size_bytes         bigint      NOT NULL,
    etag               text,
    md5                text,
    -- 'md5sum': listed in the asset's .md5 sidecar; 'etag': the object's plain-MD5 ETag only.
    md5_source         text        CHECK (md5_source IN ('md5sum', 'etag')),
    md5_verified       boolean     NOT NULL DEFAULT false,
    last_modified      timestamptz NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    run_id             text        NOT NULL,
    deleted_at         timestamptz,
    deleted_by_run_id  text,
    UNIQUE (bucket, key)
);
CREATE INDEX asset_file_code_idx ON asset_file (inventory_code);
CREATE INDEX asset_file_folder_idx ON asset_file (bucket, folder);

CREATE TABLE rejection (
    id                 bigserial PRIMARY KEY,
    bucket             text        NOT NULL,
    key                text        NOT NULL,
    folder             text        NOT NULL,
    inventory_code     text,
    rule               text        NOT NULL,
    message            text        NOT NULL,
    first_seen_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at       timestamptz NOT NULL DEFAULT now(),
    -- Set when a later run of the folder no longer finds the problem (fixed or removed).
    resolved_at        timestamptz,
    run_id             text        NOT NULL,
    UNIQUE (bucket, key, rule)
);
CREATE INDEX rejection_open_idx ON rejection (bucket, folder) WHERE resolved_at IS NULL;

-- Working tables: the latest state of each pipeline step per folder. Not part of the catalog:
-- dry runs write here, so every phase can be inspected and checked without touching the catalog.
CREATE SCHEMA ingest;

CREATE TABLE ingest.listing (
    bucket        text        NOT NULL,
    folder        text        NOT NULL,
    key           text        NOT NULL,
    size_bytes    bigint      NOT NULL,
    etag          text,
    last_modified timestamptz NOT NULL,
    listed_at     timestamptz NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX listing_folder_idx ON ingest.listing (bucket, folder);

CREATE TABLE ingest.inventory_file (
    bucket         text        NOT NULL,
    folder         text        NOT NULL,
    key            text        NOT NULL,
    inventory_code text,
    role           text,
    size_bytes     bigint      NOT NULL,
    etag           text,
    last_modified  timestamptz NOT NULL,
    rule           text,       -- NULL: valid
    message        text,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX inventory_file_folder_idx ON ingest.inventory_file (bucket, folder, inventory_code);

CREATE TABLE ingest.pending_asset (
    bucket             text        NOT NULL,
    folder             text        NOT NULL,
    inventory_code     text        NOT NULL,
    decision           text        NOT NULL CHECK (decision IN ('import', 'attach', 'deferred', 'rejected')),
    media_kind         text        NOT NULL,
    master_filename    text,
    master_mime_type   text,
    master_container   text,
    master_md5         text,
    duration_seconds   double precision,
    metadata_tool      text,
    technical_metadata jsonb,
    missing            text[],
    oldest_file_at     timestamptz,
    rule               text,
    message            text,
    PRIMARY KEY (bucket, folder, inventory_code)
);

CREATE TABLE ingest.pending_file (
    bucket         text        NOT NULL,
    folder         text        NOT NULL,
    key            text        NOT NULL,
    inventory_code text        NOT NULL,
    role           text        NOT NULL,
    decision       text        NOT NULL CHECK (decision IN ('import', 'attach', 'deferred', 'rejected')),
    mime_type      text        NOT NULL,
    size_bytes     bigint      NOT NULL,
    etag           text,
    md5            text,
    md5_source     text,
    md5_verified   boolean     NOT NULL,
    last_modified  timestamptz NOT NULL,
    rule           text,
    message        text,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX pending_file_folder_idx ON ingest.pending_file (bucket, folder);
