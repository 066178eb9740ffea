"""The baseline for issue 4's benchmarks: the original importer's approach, re-implemented.

The original (ACH Server Media Import, see its README) runs three phases: list the bucket and
validate every key, load the catalogued filenames and keep the new files, then read each new
asset's sidecars and insert its rows. This module does the same work media_import does, the way
the original does it:

* one sequential boto3 ``list_objects_v2`` pagination over the whole bucket;
* every catalogued key loaded into a Python set, the diff made in Python;
* per new asset, one sequential GET per sidecar (and per object whose checksum must be hashed);
* one INSERT per row, one commit per asset, no COPY and no batching.

The decisions are media_import's own, so both import the same assets and files: keys are judged
by ``media_import.core.inventory.judge_key`` and sidecars parsed by the project's parsers. It
writes to its own schema ``baseline``, so it can run beside media_import on one database without
touching the real catalog. It is a baseline to beat, not a straw man: nothing here is slower than
the original's design makes it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.types.json import Jsonb

from media_import.core.checksums import (
    ChecksumEntry,
    ChecksumFileError,
    decode_md5sum,
    plain_md5_etag,
)
from media_import.core.inventory import (
    MIME_BY_EXTENSION,
    STREAMING_EXTENSION,
    MediaKind,
    Outcome,
    Role,
    Rules,
    extension_of,
    filename_of,
    inventory_code_of,
    judge_key,
    media_kind_of,
)
from media_import.core.pdf import PDF_HEAD_BYTES, looks_like_pdf
from media_import.core.technical_metadata import (
    TechnicalMetadata,
    TechnicalMetadataError,
    parse_technical_metadata,
)
from media_import.settings import (
    BUCKET_VARS,
    ENDPOINT_VARS,
    REGION_VARS,
    allowed_extensions,
    build_rules,
    env_value,
    excluded_folders,
    folder_types_text,
)

SCHEMA = "baseline"
PHASES = ("list", "validate", "load_catalogued", "read_sidecars", "insert")
HASH_CHUNK_BYTES = 1 << 20

# A reduced copy of the catalog (media_import/db/migrations/0001_catalog.sql): the columns both
# importers fill, with the same keys and indexes, so each INSERT costs what it costs there.
SCHEMA_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.asset (
    id                 bigserial PRIMARY KEY,
    inventory_code     text        NOT NULL UNIQUE,
    media_kind         text        NOT NULL,
    bucket             text        NOT NULL,
    folder             text        NOT NULL,
    master_filename    text,
    master_mime_type   text        NOT NULL,
    master_container   text,
    master_md5         text,
    duration_seconds   double precision,
    metadata_tool      text,
    technical_metadata jsonb       NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    run_id             text        NOT NULL
);
CREATE INDEX IF NOT EXISTS asset_folder_idx ON {SCHEMA}.asset (bucket, folder);
CREATE TABLE IF NOT EXISTS {SCHEMA}.asset_file (
    id                 bigserial PRIMARY KEY,
    bucket             text        NOT NULL,
    key                text        NOT NULL,
    folder             text        NOT NULL,
    inventory_code     text        NOT NULL REFERENCES {SCHEMA}.asset (inventory_code),
    role               text        NOT NULL,
    mime_type          text        NOT NULL,
    size_bytes         bigint      NOT NULL,
    etag               text,
    md5                text,
    md5_source         text,
    md5_verified       boolean     NOT NULL DEFAULT false,
    last_modified      timestamptz NOT NULL,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    run_id             text        NOT NULL,
    UNIQUE (bucket, key)
);
CREATE INDEX IF NOT EXISTS asset_file_code_idx ON {SCHEMA}.asset_file (inventory_code);
CREATE INDEX IF NOT EXISTS asset_file_folder_idx ON {SCHEMA}.asset_file (bucket, folder);
"""

INSERT_ASSET = f"""
INSERT INTO {SCHEMA}.asset (inventory_code, media_kind, bucket, folder, master_filename,
    master_mime_type, master_container, master_md5, duration_seconds, metadata_tool,
    technical_metadata, run_id)
VALUES (%(inventory_code)s, %(media_kind)s, %(bucket)s, %(folder)s, %(master_filename)s,
    %(master_mime_type)s, %(master_container)s, %(master_md5)s, %(duration_seconds)s,
    %(metadata_tool)s, %(technical_metadata)s, %(run_id)s)
"""

INSERT_FILE = f"""
INSERT INTO {SCHEMA}.asset_file (bucket, key, folder, inventory_code, role, mime_type,
    size_bytes, etag, md5, md5_source, md5_verified, last_modified, run_id)
VALUES (%(bucket)s, %(key)s, %(folder)s, %(inventory_code)s, %(role)s, %(mime_type)s,
    %(size_bytes)s, %(etag)s, %(md5)s, %(md5_source)s, %(md5_verified)s, %(last_modified)s,
    %(run_id)s)
"""


# -- result ---------------------------------------------------------------------------------


@dataclass
class BaselineResult:
    """What one run did, and the seconds spent in each phase (keys: PHASES)."""

    listed: int = 0  # every object in the bucket
    valid: int = 0  # keys that passed phase 1
    new: int = 0  # valid keys not catalogued yet
    assets_inserted: int = 0
    files_inserted: int = 0
    rejected: int = 0  # keys rejected in phase 1, plus the files of assets rejected in phase 3
    deferred: int = 0  # files of incomplete assets (no streaming copy or no .json yet)
    skipped_catalogued: int = 0  # new files of an already catalogued code: see _is_catalogued
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_seconds": self.total_seconds}

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to `phase` (phase 3 alternates reads and inserts)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase] += time.perf_counter() - start


# -- what the phases pass along -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    etag: str | None
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ValidFile:
    obj: StoredObject
    folder: str
    inventory_code: str
    role: Role


@dataclass(frozen=True)
class FileRow:
    file: ValidFile
    md5: str | None
    md5_source: str | None
    md5_verified: bool


@dataclass(frozen=True)
class AssetRow:
    inventory_code: str
    folder: str
    media_kind: MediaKind
    technical: TechnicalMetadata
    document: Mapping[str, Any]
    master_filename: str | None
    master_md5: str | None
    files: tuple[FileRow, ...]


class AssetRejected(Exception):
    """Phase 3 found the asset invalid; the message says why."""


# -- entry points -----------------------------------------------------------------------------


def run_baseline(
    endpoint_url: str | None,
    bucket: str,
    database_url: str,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
) -> BaselineResult:
    """Import the whole bucket into the `baseline` schema the original importer's way."""
    rules = rules_from_env()
    client = s3_client(endpoint_url, access_key, secret_key, region)
    result = BaselineResult()
    run_id = uuid.uuid4().hex
    # autocommit off: each asset is one transaction, as in a row-by-row ORM loop.
    with psycopg.connect(database_url) as conn:
        ensure_schema(conn)
        # Phase 1: S3 discovery and validation, before any database interaction.
        with result.timing("list"):
            objects = list_bucket(client, bucket)
        with result.timing("validate"):
            valid = validate(objects, rules, result)
        # Phase 2: cross-reference with every catalogued filename.
        with result.timing("load_catalogued"):
            catalogued = load_catalogued(conn, bucket)
        new = [f for f in valid if f.obj.key not in catalogued]
        result.listed, result.valid, result.new = len(objects), len(valid), len(new)
        # Phase 3: parse and insert, one asset after the other.
        catalogued_codes = {inventory_code_of(filename_of(key)) for key in catalogued}
        for code, files in group_by_code(new).items():
            import_asset(client, conn, bucket, code, files, catalogued_codes, run_id, result)
    return result


def reset_baseline(database_url: str) -> None:
    """Drop the `baseline` schema and create it empty."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        ensure_schema(conn)


def ensure_schema(conn: psycopg.Connection) -> None:
    conn.execute(SCHEMA_SQL)
    conn.commit()


def rules_from_env() -> Rules:
    """Phase 1's rules from the same settings (and defaults) media_import reads."""
    return build_rules(excluded_folders(), allowed_extensions(), folder_types_text())


def s3_client(endpoint_url: str | None, access_key: str, secret_key: str, region: str) -> Any:
    # Path-style addressing for S3-compatible endpoints (MinIO, moto): no wildcard DNS needed.
    config = Config(s3={"addressing_style": "path"}) if endpoint_url else None
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


# -- phase 1 ----------------------------------------------------------------------------------


def list_bucket(client: Any, bucket: str) -> list[StoredObject]:
    """Every object of the bucket, one page after the other (S3 pages hold 1000 keys)."""
    objects: list[StoredObject] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects.extend(
            StoredObject(o["Key"], o["Size"], _clean_etag(o.get("ETag")), o["LastModified"])
            for o in page.get("Contents", ())
        )
    return objects


def _clean_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else etag


def validate(objects: list[StoredObject], rules: Rules, result: BaselineResult) -> list[ValidFile]:
    """Keep the valid keys; count the rejected ones (ignored keys are neither)."""
    valid: list[ValidFile] = []
    for obj in objects:
        verdict = judge_key(obj.key, rules)
        if verdict.outcome is Outcome.REJECTED:
            result.rejected += 1
        elif verdict.outcome is Outcome.VALID:
            assert verdict.inventory_code is not None and verdict.role is not None
            valid.append(ValidFile(obj, verdict.folder, verdict.inventory_code, verdict.role))
    return valid


# -- phase 2 ----------------------------------------------------------------------------------


def load_catalogued(conn: psycopg.Connection, bucket: str) -> set[str]:
    """Every catalogued key of the bucket, sidecars included, held in memory for the diff."""
    rows = conn.execute(f"SELECT key FROM {SCHEMA}.asset_file WHERE bucket = %s", (bucket,))
    keys = {key for (key,) in rows}
    conn.commit()
    return keys


def group_by_code(files: list[ValidFile]) -> dict[str, list[ValidFile]]:
    by_code: dict[str, list[ValidFile]] = defaultdict(list)
    for f in files:
        by_code[f.inventory_code].append(f)
    return by_code


# -- phase 3 ----------------------------------------------------------------------------------


def import_asset(
    client: Any,
    conn: psycopg.Connection,
    bucket: str,
    code: str,
    files: list[ValidFile],
    catalogued_codes: set[str],
    run_id: str,
    result: BaselineResult,
) -> None:
    """Read and check one code's sidecars, then insert its rows (or count why not)."""
    if code in catalogued_codes:
        # New files of a catalogued asset (media_import attaches or rejects them one by one):
        # not part of the benchmark, and inserting them here would need another rule set.
        result.skipped_catalogued += len(files)
        return
    with result.timing("read_sidecars"):
        try:
            asset = assemble(client, bucket, code, files)
        except AssetRejected:
            result.rejected += len(files)
            return
    if asset is None:
        result.deferred += len(files)
        return
    with result.timing("insert"):
        insert_asset(conn, bucket, asset, run_id)
    result.assets_inserted += 1
    result.files_inserted += len(asset.files)


def assemble(client: Any, bucket: str, code: str, files: list[ValidFile]) -> AssetRow | None:
    """The asset's rows, None while it is incomplete; raises AssetRejected. The checks and
    their order are media_import's (core/assembly.py), the reads are one sequential GET each."""
    kind = media_kind_of(code)
    by_role = _by_role(files)
    streaming, metadata = by_role[Role.STREAMING_COPY], by_role[Role.METADATA]
    _check_shape(kind, streaming, metadata)
    if not streaming or not metadata:
        return None  # deferred: waits for its streaming copy or its technical metadata
    # The master is not in the bucket: its MIME type comes from the .json sidecar's metadata.
    technical, document = read_technical_metadata(client, bucket, metadata[0])
    _check_container(kind, technical)
    entries = [e for f in by_role[Role.CHECKSUM] for e in read_md5sum(client, bucket, f)]
    rows = tuple(verified_row(client, bucket, f, entries) for f in sorted_files(files))
    for pdf in by_role[Role.QC_REPORT]:
        check_pdf(client, bucket, pdf)
    master = technical.filename or _unlisted_name(files, entries)
    return AssetRow(
        code,
        files[0].folder,
        kind,
        technical,
        document,
        master,
        _master_md5(files, entries, master),
        rows,
    )


def _by_role(files: list[ValidFile]) -> dict[Role, list[ValidFile]]:
    by_role: dict[Role, list[ValidFile]] = {role: [] for role in Role}
    for f in sorted_files(files):
        by_role[f.role].append(f)
    return by_role


def sorted_files(files: list[ValidFile]) -> list[ValidFile]:
    return sorted(files, key=lambda f: f.obj.key)


def _check_shape(kind: MediaKind, streaming: list[ValidFile], metadata: list[ValidFile]) -> None:
    expected = STREAMING_EXTENSION[kind]
    if any(extension_of(f.obj.key) != expected for f in streaming):
        raise AssetRejected(f"a {kind.value} code's streaming copy must be {expected}")
    if len(streaming) > 1 or len(metadata) > 1:
        raise AssetRejected("more than one streaming copy or technical metadata file")


def _check_container(kind: MediaKind, technical: TechnicalMetadata) -> None:
    """The original's container rules: video codes need video, audio codes audio only."""
    if kind is MediaKind.VIDEO and not technical.has_video:
        raise AssetRejected(f"video code but the master ({technical.container}) has no video")
    if kind is MediaKind.AUDIO and (technical.has_video or not technical.has_audio):
        raise AssetRejected(f"audio code but the master ({technical.container}) is not audio")


def read_technical_metadata(
    client: Any, bucket: str, sidecar: ValidFile
) -> tuple[TechnicalMetadata, Mapping[str, Any]]:
    body = get_object(client, bucket, sidecar.obj.key)
    try:
        document = json.loads(body)
        return parse_technical_metadata(document), document
    except (UnicodeDecodeError, json.JSONDecodeError, TechnicalMetadataError) as exc:
        raise AssetRejected(f"{sidecar.obj.key}: {exc}") from exc


def read_md5sum(client: Any, bucket: str, sidecar: ValidFile) -> list[ChecksumEntry]:
    try:
        return decode_md5sum(get_object(client, bucket, sidecar.obj.key))
    except ChecksumFileError as exc:
        raise AssetRejected(f"{sidecar.obj.key}: {exc}") from exc


def check_pdf(client: Any, bucket: str, report: ValidFile) -> None:
    # Only the head is needed; S3 answers any range of an empty object with 416, so read it whole.
    length = PDF_HEAD_BYTES if report.obj.size else None
    if not looks_like_pdf(get_object(client, bucket, report.obj.key, length)):
        raise AssetRejected(f"{report.obj.key} is not a PDF")


def verified_row(client: Any, bucket: str, f: ValidFile, entries: list[ChecksumEntry]) -> FileRow:
    """The file's row; a file listed in the .md5 sidecar must match it (md5_verified)."""
    listed = {e.filename: e.md5 for e in entries}
    name = filename_of(f.obj.key)
    if name not in listed:
        etag_md5 = plain_md5_etag(f.obj.etag)
        return FileRow(f, etag_md5, "etag" if etag_md5 else None, False)
    actual = object_md5(client, bucket, f.obj)
    if actual != listed[name]:
        raise AssetRejected(f"{name}: .md5 sidecar says {listed[name]}, its bytes are {actual}")
    return FileRow(f, actual, "md5sum", True)


def object_md5(client: Any, bucket: str, obj: StoredObject) -> str:
    """A plain-MD5 ETag stands for the bytes, as in media_import; otherwise (multipart uploads)
    the object is downloaded and hashed, streamed because streaming copies can be large."""
    etag_md5 = plain_md5_etag(obj.etag)
    if etag_md5:
        return etag_md5
    digest = hashlib.md5(usedforsecurity=False)
    try:
        body = client.get_object(Bucket=bucket, Key=obj.key)["Body"]
        for chunk in body.iter_chunks(HASH_CHUNK_BYTES):
            digest.update(chunk)
    except (BotoCoreError, ClientError) as exc:
        raise AssetRejected(f"cannot read {obj.key}: {exc}") from exc
    return digest.hexdigest()


def get_object(client: Any, bucket: str, key: str, length: int | None = None) -> bytes:
    """One GET (of the first `length` bytes, or all); a failed read rejects the asset only."""
    extra = {"Range": f"bytes=0-{length - 1}"} if length else {}
    try:
        return client.get_object(Bucket=bucket, Key=key, **extra)["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise AssetRejected(f"cannot read {key}: {exc}") from exc


def _unlisted_name(files: list[ValidFile], entries: list[ChecksumEntry]) -> str | None:
    """The one .md5 entry naming no object in the bucket: the master's file name."""
    in_bucket = {filename_of(f.obj.key) for f in files}
    outside = [e.filename for e in entries if e.filename not in in_bucket]
    return outside[0] if len(outside) == 1 else None


def _master_md5(
    files: list[ValidFile], entries: list[ChecksumEntry], master: str | None
) -> str | None:
    """The master's checksum as the .md5 sidecar records it (it cannot be verified)."""
    by_name = {e.filename: e.md5 for e in entries}
    if master and master in by_name:
        return by_name[master]
    unlisted = _unlisted_name(files, entries)
    return by_name.get(unlisted) if unlisted else None


def insert_asset(conn: psycopg.Connection, bucket: str, asset: AssetRow, run_id: str) -> None:
    """One INSERT per row, committed per asset."""
    conn.execute(INSERT_ASSET, _asset_params(bucket, asset, run_id))
    for row in asset.files:
        conn.execute(INSERT_FILE, _file_params(bucket, row, run_id))
    conn.commit()


def _asset_params(bucket: str, asset: AssetRow, run_id: str) -> dict[str, Any]:
    t = asset.technical
    return {
        "inventory_code": asset.inventory_code,
        "media_kind": asset.media_kind.value,
        "bucket": bucket,
        "folder": asset.folder,
        "master_filename": asset.master_filename,
        "master_mime_type": t.mime_type,
        "master_container": t.container,
        "master_md5": asset.master_md5,
        "duration_seconds": t.duration_seconds,
        "metadata_tool": t.tool,
        "technical_metadata": Jsonb(asset.document),
        "run_id": run_id,
    }


def _file_params(bucket: str, row: FileRow, run_id: str) -> dict[str, Any]:
    f = row.file
    return {
        "bucket": bucket,
        "key": f.obj.key,
        "folder": f.folder,
        "inventory_code": f.inventory_code,
        "role": f.role.value,
        "mime_type": MIME_BY_EXTENSION[extension_of(f.obj.key)],
        "size_bytes": f.obj.size,
        "etag": f.obj.etag,
        "md5": row.md5,
        "md5_source": row.md5_source,
        "md5_verified": row.md5_verified,
        "last_modified": f.obj.last_modified,
        "run_id": run_id,
    }


# -- command line -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.reset:
        reset_baseline(args.database_url)
    result = run_baseline(
        args.endpoint,
        args.bucket,
        args.database_url,
        args.access_key,
        args.secret_key,
        args.region,
    )
    json.dump(result.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.baseline",
        description="Import a bucket into the `baseline` schema the original importer's way "
        "and print counts and phase timings as JSON.",
    )
    # Defaults come from the variables media_import (and the original) read.
    _option(parser, "--endpoint", env_value(ENDPOINT_VARS), "S3 endpoint (unset: AWS S3)")
    _option(parser, "--bucket", env_value(BUCKET_VARS), "bucket name", required=True)
    _option(parser, "--database-url", env_value(("DATABASE_URL",)), "PostgreSQL URL", True)
    _option(parser, "--access-key", env_value(("AWS_ACCESS_KEY_ID",)), "access key", True)
    _option(parser, "--secret-key", env_value(("AWS_SECRET_ACCESS_KEY",)), "secret key", True)
    _option(parser, "--region", env_value(REGION_VARS) or "us-east-1", "region")
    parser.add_argument(
        "--reset", action="store_true", help="drop and recreate the baseline schema first"
    )
    return parser


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    default: str | None,
    help_text: str,
    required: bool = False,
) -> None:
    # Required only when the environment does not already provide a value.
    parser.add_argument(
        flag, default=default, required=required and default is None, help=help_text
    )


if __name__ == "__main__":
    raise SystemExit(main())
