"""Typed resources: the bucket, the catalog database and the import's run settings.

Secrets reach them through EnvVar (see `resources_from_env`), so they are resolved in the run
worker and never stored in run configuration, printed or logged.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager

import dagster as dg
import psycopg
from pydantic import Field

from media_import.concurrency import DEFAULT_FOLDER_WORKERS, DEFAULT_INSERT_WORKERS
from media_import.core.inventory import DEFAULT_ALLOWED_EXTENSIONS, DEFAULT_EXCLUDED_FOLDERS, Rules
from media_import.core.s3_get import DEFAULT_PIPELINE_DEPTH
from media_import.core.storage import DEFAULT_CONCURRENCY, LIST_PAGE_SIZE, Bucket, S3Config
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
    truthy,
)


class S3BucketResource(dg.ConfigurableResource):
    """The S3-compatible bucket the archive is uploaded to (AWS S3 or MinIO)."""

    bucket: str = Field(description="Bucket name (BUCKET_NAME, or the original's S3_BUCKET_IN).")
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint for MinIO or another S3-compatible server (S3_ENDPOINT_URL); "
        "unset means AWS S3.",
    )
    region: str | None = Field(default=None, description="Region (AWS_REGION).")
    access_key_id: str | None = Field(
        default=None, description="Access key (AWS_ACCESS_KEY_ID); unset: the default chain."
    )
    secret_access_key: str | None = Field(
        default=None, description="Secret key (AWS_SECRET_ACCESS_KEY)."
    )
    session_token: str | None = Field(
        default=None,
        description="Session token of temporary credentials (AWS_SESSION_TOKEN), with the keys.",
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        description="Keep-alive connections reading sidecars, in each planning process "
        "(S3_CONCURRENCY); against a distant endpoint they, not the CPU, bound the GETs a "
        "second.",
    )
    pipeline_depth: int = Field(
        default=DEFAULT_PIPELINE_DEPTH,
        ge=1,
        description="GETs pipelined on each connection when reading sidecars "
        "(S3_PIPELINE_DEPTH); 1 sends one at a time. A connection lost with several in "
        "flight turns pipelining off for the rest of that read.",
    )

    list_page_size: int = Field(
        default=LIST_PAGE_SIZE, description="Keys per listing page (S3 returns at most 1000)."
    )

    def config(self) -> S3Config:
        return S3Config(
            bucket=self.bucket,
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            pipeline_depth=self.pipeline_depth,
        )

    def open(self) -> Bucket:
        return Bucket(self.config(), self.concurrency, self.list_page_size)

    def planning_job(self, catalog: CatalogDatabase) -> PlanningJob:
        """What a planning worker process needs to read this bucket and write the catalog."""
        return PlanningJob(self.config(), self.concurrency, self.list_page_size, catalog.conninfo())


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


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """Resources wired to the environment, original variable names included.

    Values are EnvVar references, resolved when a run starts: changing `.env` needs no code
    change, and the secrets never appear in the run's stored configuration.
    """
    s3 = S3BucketResource(
        bucket=dg.EnvVar(first_set(BUCKET_VARS) or BUCKET_VARS[0]),
        endpoint_url=env_var_if_set(*ENDPOINT_VARS),
        region=env_var_if_set(*REGION_VARS),
        access_key_id=env_var_if_set("AWS_ACCESS_KEY_ID"),
        secret_access_key=env_var_if_set("AWS_SECRET_ACCESS_KEY"),
        session_token=env_var_if_set("AWS_SESSION_TOKEN"),
        pipeline_depth=int(os.environ.get("S3_PIPELINE_DEPTH") or DEFAULT_PIPELINE_DEPTH),
        concurrency=int(os.environ.get("S3_CONCURRENCY") or DEFAULT_CONCURRENCY),
    )
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
