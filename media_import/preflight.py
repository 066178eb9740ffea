"""Settings checked before any run: one clear message naming the setting, not a stack trace."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from media_import.core.storage import Bucket, S3Config, StorageError
from media_import.settings import (
    BUCKET_VARS,
    ENDPOINT_VARS,
    REGION_VARS,
    SettingsError,
    database_url,
    env_value,
    redact_url,
)


def s3_config_from_env(env: Mapping[str, str]) -> S3Config:
    bucket = env_value(BUCKET_VARS, env)
    if not bucket:
        raise SettingsError("no bucket configured: set BUCKET_NAME (or S3_BUCKET_IN)")
    return S3Config(
        bucket=bucket,
        endpoint_url=env_value(ENDPOINT_VARS, env),
        region=env_value(REGION_VARS, env),
        access_key_id=env_value(("AWS_ACCESS_KEY_ID",), env),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
    )


def check_database(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise SettingsError(
            f"cannot connect to the catalog database {redact_url(url)} "
            f"(check DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD): {last}"
        ) from None


def preflight(env: Mapping[str, str]) -> tuple[S3Config, str]:
    """Validate the bucket and database settings and reach both; raise SettingsError."""
    config = s3_config_from_env(env)
    url = database_url(env)
    check_database(url)
    try:
        Bucket(config).check_reachable()
    except StorageError as exc:
        raise SettingsError(str(exc)) from None
    return config, url
