"""Settings checked before any run: one clear message naming the setting, not a stack trace."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
import yaml

from media_import.core.storage import Bucket, S3Config, S3Unavailable, StorageError
from media_import.settings import (
    BUCKET_VARS,
    ENDPOINT_VARS,
    REGION_VARS,
    ServiceUnavailable,
    SettingsError,
    compose_database_url,
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
        raise SettingsError(
            f"cannot connect to the catalog database {redact_url(url)} "
            f"(check DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD): "
            f"{connection_failure(exc)}"
        ) from None


def connection_failure(exc: psycopg.Error) -> str:
    """libpq's cause on one line: 'Connection refused (Is the server running on that host
    and accepting TCP/IP connections?)' rather than its last line alone."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    cause = lines[0].rsplit(" failed: ", 1)[-1]  # after "connection to server at ... failed:"
    return f"{cause} ({' '.join(lines[1:])})" if len(lines) > 1 else cause


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


def check_instance(env: Mapping[str, str]) -> Path:
    """DAGSTER_HOME and the instance its dagster.yaml describes: every variable the file reads
    is set, and its PostgreSQL storage answers. Checked here because Dagster itself reports a
    missing variable with a long traceback, and retries a closed port for seconds."""
    home = (env.get("DAGSTER_HOME") or "").strip()
    if not home:
        raise SettingsError(
            "DAGSTER_HOME is not set: point it at the folder holding dagster.yaml "
            "(this repository's dagster_home/ for a local setup)"
        )
    folder = Path(home).resolve()
    if not folder.is_dir():
        raise SettingsError(f"DAGSTER_HOME={home} is not a folder")
    config_file = folder / "dagster.yaml"
    if not config_file.is_file():
        return folder  # Dagster's defaults: the instance kept in files under DAGSTER_HOME
    config = _instance_config(config_file)
    for name in _env_references(config):
        if not (env.get(name) or "").strip():
            raise SettingsError(f"{name} is not set: the Dagster instance ({config_file}) reads it")
    storage = (config.get("storage") or {}).get("postgres") or {}
    url, setting = _postgres_url(storage, env)
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise SettingsError(
                f"cannot connect to the Dagster instance's database {redact_url(url)} "
                f"(check {setting}): {connection_failure(exc)}"
            ) from None
    return folder


def _instance_config(config_file: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(config_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettingsError(f"{config_file} cannot be read: {first}") from None
    if config is not None and not isinstance(config, dict):
        raise SettingsError(f"{config_file} is not a mapping of instance settings")
    return config or {}


def _env_references(node: object) -> list[str]:
    """The variables named by `{env: NAME}` values anywhere in the configuration."""
    if isinstance(node, dict):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return [node["env"]]
        return [name for value in node.values() for name in _env_references(value)]
    if isinstance(node, list):
        return [name for value in node for name in _env_references(value)]
    return []


def _setting(value: object, env: Mapping[str, str], where: str) -> tuple[str | None, str]:
    """A configured value, literal or `{env: NAME}`, with the setting to name in messages."""
    if isinstance(value, dict) and "env" in value:
        return env.get(value["env"]) or None, value["env"]
    return (str(value) if value is not None else None), where


def _postgres_url(storage: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str | None, str]:
    if "postgres_url" in storage:
        return _setting(storage["postgres_url"], env, "storage.postgres.postgres_url")
    parts = storage.get("postgres_db")
    if not isinstance(parts, dict):
        return None, ""
    values = {k: _setting(v, env, f"storage.postgres.postgres_db.{k}")[0] for k, v in parts.items()}
    if not values.get("hostname"):
        return None, ""
    url = compose_database_url(
        host=values["hostname"],
        port=values.get("port"),
        dbname=values.get("db_name"),
        user=values.get("username"),
        password=values.get("password"),
    )
    return url, "storage.postgres.postgres_db in dagster.yaml"
