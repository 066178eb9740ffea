"""Settings checked before any run: one clear message naming the setting, not a stack trace."""

from __future__ import annotations

from collections.abc import Mapping

import psycopg

from media_import.core.storage import Bucket, S3Config, S3Unavailable, StorageError
from media_import.settings import (
    BUCKET_VARS,
    ENDPOINT_VARS,
    REGION_VARS,
    ServiceUnavailable,
    SettingsError,
    database_url,
    env_value,
    redact_url,
    s3_tuning_from_env,
)


def s3_config_from_env(env: Mapping[str, str]) -> S3Config:
    """The bucket's settings, read from the same names as the S3 resource's."""
    bucket = env_value(BUCKET_VARS, env)
    if not bucket:
        raise SettingsError("no bucket configured: set BUCKET_NAME (or S3_BUCKET_IN)")
    tuning = s3_tuning_from_env(env)
    return S3Config(
        bucket=bucket,
        endpoint_url=env_value(ENDPOINT_VARS, env),
        region=env_value(REGION_VARS, env),
        access_key_id=env_value(("AWS_ACCESS_KEY_ID",), env),
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,  # type: ignore[arg-type]
        session_token=env.get("AWS_SESSION_TOKEN") or None,  # type: ignore[arg-type]
        profile_name=env_value(("AWS_PROFILE",), env),
        ca_bundle=env_value(("AWS_CA_BUNDLE",), env),
        force_path_style=bool(tuning.get("force_path_style", False)),
        max_attempts=int(tuning.get("max_attempts", S3Config.max_attempts)),
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
        # Retried as the import's reads are (the clients' own retries, backoff and jitter):
        # only what a setting can cause is blamed on one.
        Bucket(config).check_reachable()
    except StorageError as exc:
        raise SettingsError(str(exc)) from None
    except S3Unavailable as exc:
        if exc.unreachable:  # no connection after every retry: the address, most likely
            raise SettingsError(str(exc)) from None
        raise ServiceUnavailable(str(exc)) from None
    return config, url
