"""Typed resources: the bucket, the catalog database and the import's run settings.

Secrets reach them through EnvVar (see `resources_from_env`), so they are resolved in the run
worker and never stored in run configuration, printed or logged.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

import dagster as dg
import psycopg
from dagster_aws.s3.resources import ResourceWithS3Configuration
from dagster_aws.s3.utils import construct_s3_client
from pydantic import Field

from media_import.concurrency import DEFAULT_FOLDER_WORKERS, DEFAULT_INSERT_WORKERS
from media_import.core.inventory import DEFAULT_ALLOWED_EXTENSIONS, DEFAULT_EXCLUDED_FOLDERS, Rules
from media_import.core.storage import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LIST_CONCURRENCY,
    LIST_PAGE_SIZE,
    Bucket,
    S3Config,
)
from media_import.db import session
from media_import.db.migrate import migrate
from media_import.defs.env import env_var_if_set
from media_import.planning import DEFAULT_PLAN_PROCESSES, MIN_PROCESS_KEYS, PlanningJob
from media_import.settings import (
    BUCKET_VARS,
    DEFAULT_FOLDER_TYPES,
    ENDPOINT_VARS,
    REGION_VARS,
    allowed_extensions,
    build_rules,
    compose_database_url,
    excluded_folders,
    first_set,
    folder_types_text,
    redact_url,
    s3_tuning_from_env,
    truthy,
)


class S3BucketResource(ResourceWithS3Configuration):
    """The S3-compatible bucket the archive is uploaded to (AWS S3, MinIO, any S3 server).

    The connection fields are dagster-aws's (endpoint_url, region_name, profile_name, use_ssl,
    verify, max_attempts, aws_access_key_id, aws_secret_access_key, aws_session_token), fed from
    the usual environment names (see `resources_from_env`); the bucket and the read tuning are
    this project's. Listing and reads go through obstore (media_import.core.storage); boto3
    clients from the same fields serve the rest (dagster-aws's `get_client`)."""

    bucket: str = Field(description="Bucket name (BUCKET_NAME, or the original's S3_BUCKET_IN).")
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of extra CA certificates to trust for TLS (AWS_CA_BUNDLE).",
    )
    force_path_style: bool = Field(
        default=False,
        description="Path-style requests (https://host/bucket/key) even against AWS "
        "(S3_FORCE_PATH_STYLE). Always used for a custom endpoint and for bucket names "
        "with dots.",
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        description="GETs in flight reading sidecars, in each planning process "
        "(S3_CONCURRENCY); against a distant endpoint they, not the CPU, bound the GETs a "
        "second.",
    )
    list_concurrency: int = Field(
        default=DEFAULT_LIST_CONCURRENCY,
        ge=1,
        description="Listing pages in flight for one folder's listing, its key ranges fetched "
        "side by side (S3_LIST_CONCURRENCY).",
    )
    list_page_size: int = Field(
        default=LIST_PAGE_SIZE, description="Keys per listing batch (S3 returns at most 1000)."
    )

    def __repr_args__(self) -> Any:
        # The secrets are resolved into the fields in a run: never shown.
        for name, value in super().__repr_args__():
            yield name, ("**********" if value and name in _SECRET_FIELDS else value)

    def get_client(self) -> Any:
        """A boto3 S3 client from the same fields (dagster-aws's construction)."""
        return construct_s3_client(
            max_attempts=self.max_attempts,
            region_name=self.region_name,
            endpoint_url=self.endpoint_url,
            use_unsigned_session=self.use_unsigned_session,
            profile_name=self.profile_name,
            use_ssl=self.use_ssl,
            verify=self.ca_bundle if self.ca_bundle and self.verify is not False else self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
        )

    def config(self) -> S3Config:
        """The settings a Dagster-free reader (and a planning process) needs."""
        return S3Config(
            bucket=self.bucket,
            endpoint_url=self.endpoint_url or None,
            region=self.region_name or None,
            access_key_id=self.aws_access_key_id or None,
            secret_access_key=self.aws_secret_access_key or None,  # type: ignore[arg-type]
            session_token=self.aws_session_token or None,  # type: ignore[arg-type]
            profile_name=self.profile_name or None,
            use_ssl=self.use_ssl,
            verify=self.verify,
            ca_bundle=self.ca_bundle or None,
            force_path_style=self.force_path_style,
            max_attempts=self.max_attempts,
            unsigned=self.use_unsigned_session,
        )

    def open(self) -> Bucket:
        return Bucket(self.config(), self.concurrency, self.list_page_size, self.list_concurrency)

    def planning_job(self, catalog: CatalogDatabase) -> PlanningJob:
        """What a planning worker process needs to read this bucket and write the catalog."""
        return PlanningJob(
            self.config(),
            self.concurrency,
            self.list_page_size,
            catalog.conninfo(),
            self.list_concurrency,
        )


_SECRET_FIELDS = frozenset({"aws_secret_access_key", "aws_session_token"})


class CatalogDatabase(dg.ConfigurableResource):
    """The PostgreSQL database holding the catalog. Its schema is migrated on first use."""

    url: str | None = Field(
        default=None, description="Connection URL (DATABASE_URL). Takes precedence over the parts."
    )
    host: str | None = Field(default=None, description="DB_HOST")
    port: int | None = Field(default=None, description="DB_PORT")
    dbname: str | None = Field(default=None, description="DB_NAME")
    user: str | None = Field(default=None, description="DB_USER")
    password: str | None = Field(default=None, description="DB_PASSWORD")

    def conninfo(self) -> str:
        if self.url:
            return self.url
        if not self.host:
            raise dg.Failure(
                "no catalog database configured: set DATABASE_URL (or DB_HOST, DB_PORT, "
                "DB_NAME, DB_USER, DB_PASSWORD)"
            )
        return compose_database_url(self.host, self.port, self.dbname, self.user, self.password)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        try:
            migrate(self.conninfo())
        except psycopg.OperationalError as exc:
            raise dg.Failure(
                f"cannot connect to the catalog database {redact_url(self.conninfo())} "
                f"(check DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD): "
                f"{str(exc).strip().splitlines()[-1]}"
            ) from None

    def connect(self) -> AbstractContextManager[psycopg.Connection]:
        return session.connect(self.conninfo())


class ImportSettings(dg.ConfigurableResource):
    """How the import behaves. Every field can be changed per run in the launchpad."""

    dry_run: bool = Field(
        default=False,
        description="Run every phase and report what would be inserted; the catalog is untouched "
        "(ACH_DRY_RUN).",
    )
    safe_run: bool = Field(
        default=False,
        description="Abort with nothing written to the catalog on any rejection or deferral "
        "(ACH_SAFE_RUN).",
    )
    excluded_folders: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_FOLDERS),
        description="Top-level folders never imported (ACH_EXCLUDED_FOLDERS).",
    )
    allowed_extensions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_EXTENSIONS),
        description="Extensions considered (ACH_ALLOWED_EXTENSIONS).",
    )
    folder_types: str = Field(
        default=DEFAULT_FOLDER_TYPES,
        description="Folders holding other code types than their name, e.g. 'FILE=FIL,DIG;"
        "AUDIO=CAS' (ACH_FOLDER_TYPES).",
    )

    folder_workers: int = Field(
        default=DEFAULT_FOLDER_WORKERS,
        ge=1,
        description="Folders listed, planned and imported at once in a run over several "
        "folders (a single-run backfill), each on its own database connection "
        "(ACH_FOLDER_WORKERS).",
    )

    insert_workers: int = Field(
        default=DEFAULT_INSERT_WORKERS,
        ge=1,
        description="Folders inserted into the catalog at once (phase 3), at most "
        "folder_workers. The insert is the database server's CPU: about one per server core "
        "(ACH_INSERT_WORKERS).",
    )

    plan_processes: int = Field(
        default=DEFAULT_PLAN_PROCESSES,
        ge=0,
        description="Worker processes that plan the folders a run plans whole (phase 2: sidecar "
        "reads and decisions; a first import, a backfill of new folders), one folder each at a "
        "time, when there are two or more such folders; at most folder_workers. 0 or 1: every "
        "folder in the run process (ACH_PLAN_PROCESSES).",
    )
    plan_process_min_keys: int = Field(
        default=MIN_PROCESS_KEYS,
        ge=1,
        description="Keys the folders planned whole must hold together for worker processes "
        "to plan them (fewer: the run process plans them; starting workers would cost more).",
    )

    def rules(self) -> Rules:
        return build_rules(self.excluded_folders, self.allowed_extensions, self.folder_types)


def s3_resource_from_env() -> S3BucketResource:
    """The bucket's resource, its dagster-aws fields fed from the usual environment names."""
    return S3BucketResource(
        bucket=dg.EnvVar(first_set(BUCKET_VARS) or BUCKET_VARS[0]),
        endpoint_url=env_var_if_set(*ENDPOINT_VARS),
        region_name=env_var_if_set(*REGION_VARS),
        profile_name=env_var_if_set("AWS_PROFILE"),
        aws_access_key_id=env_var_if_set("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env_var_if_set("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env_var_if_set("AWS_SESSION_TOKEN"),
        ca_bundle=env_var_if_set("AWS_CA_BUNDLE"),
        **s3_tuning_from_env(),
    )


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """Resources wired to the environment, original variable names included.

    Values are EnvVar references, resolved when a run starts: changing `.env` needs no code
    change, and the secrets never appear in the run's stored configuration.
    """
    s3 = s3_resource_from_env()
    if first_set(("DATABASE_URL",)) or not first_set(("DB_HOST",)):
        catalog = CatalogDatabase(url=dg.EnvVar("DATABASE_URL"))
    else:
        port = first_set(("DB_PORT",))
        catalog = CatalogDatabase(
            host=dg.EnvVar("DB_HOST"),
            port=dg.EnvVar.int(port) if port else None,
            dbname=env_var_if_set("DB_NAME"),
            user=env_var_if_set("DB_USER"),
            password=env_var_if_set("DB_PASSWORD"),
        )
    settings = ImportSettings(
        dry_run=truthy(os.environ.get("ACH_DRY_RUN")),
        safe_run=truthy(os.environ.get("ACH_SAFE_RUN")),
        excluded_folders=excluded_folders(),
        allowed_extensions=allowed_extensions(),
        folder_types=folder_types_text(),
        folder_workers=int(os.environ.get("ACH_FOLDER_WORKERS") or DEFAULT_FOLDER_WORKERS),
        plan_processes=int(os.environ.get("ACH_PLAN_PROCESSES") or DEFAULT_PLAN_PROCESSES),
        insert_workers=int(os.environ.get("ACH_INSERT_WORKERS") or DEFAULT_INSERT_WORKERS),
    )
    return {"s3": s3, "catalog": catalog, "import_settings": settings}
