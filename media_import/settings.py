"""Settings from the environment, accepting the original importer's variable names.

Dagster-free: the resources, the CLI and the demo all resolve settings here, so an existing
`.env` of the original importer works unchanged everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import quote

from media_import.core.inventory import (
    DEFAULT_ALLOWED_EXTENSIONS,
    DEFAULT_EXCLUDED_FOLDERS,
    Rules,
    parse_folder_types,
)

# Each setting with the names it may have, preferred first.
BUCKET_VARS = ("BUCKET_NAME", "S3_BUCKET_IN")
ENDPOINT_VARS = ("S3_ENDPOINT_URL",)
REGION_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION")
DB_PART_VARS = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")


DEFAULT_FOLDER_TYPES = "FILE=FIL"


class SettingsError(ValueError):
    """A missing or malformed setting; the message names it."""


class ServiceUnavailable(RuntimeError):
    """A service the run needs is down or overloaded: not a setting to fix; try again later."""


def first_set(names: tuple[str, ...], env: Mapping[str, str] | None = None) -> str | None:
    """The name of the first variable among `names` that is set and not blank."""
    env = os.environ if env is None else env
    return next((n for n in names if env.get(n, "").strip()), None)


def env_value(names: tuple[str, ...], env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    name = first_set(names, env)
    return env[name].strip() if name else None


def s3_tuning_from_env(env: Mapping[str, str] | None = None) -> dict[str, bool | int]:
    """The S3 settings beyond the endpoint, bucket and credentials that the environment sets
    (unset ones keep their defaults): S3_FORCE_PATH_STYLE, AWS_MAX_ATTEMPTS (botocore's
    name), S3_CONCURRENCY, S3_LIST_CONCURRENCY."""
    env = os.environ if env is None else env
    found: dict[str, bool | int] = {}
    if env_value(("S3_FORCE_PATH_STYLE",), env):
        found["force_path_style"] = truthy(env.get("S3_FORCE_PATH_STYLE"))
    for field, name in (
        ("max_attempts", "AWS_MAX_ATTEMPTS"),
        ("concurrency", "S3_CONCURRENCY"),
        ("list_concurrency", "S3_LIST_CONCURRENCY"),
    ):
        value = env_value((name,), env)
        if value:
            try:
                found[field] = int(value)
            except ValueError:
                raise SettingsError(f"{name} must be a whole number, not {value!r}") from None
            if found[field] < 1:
                raise SettingsError(f"{name} must be at least 1, not {value!r}")
    return found


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on", "y"}


def split_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def excluded_folders(env: Mapping[str, str] | None = None) -> list[str]:
    value = env_value(("ACH_EXCLUDED_FOLDERS", "EXCLUDED_FOLDERS"), env)
    return [f.strip("/") for f in split_list(value)] if value else list(DEFAULT_EXCLUDED_FOLDERS)


def allowed_extensions(env: Mapping[str, str] | None = None) -> list[str]:
    value = env_value(("ACH_ALLOWED_EXTENSIONS", "ALLOWED_EXTENSIONS"), env)
    if not value:
        return list(DEFAULT_ALLOWED_EXTENSIONS)
    return [e.lower() if e.startswith(".") else f".{e.lower()}" for e in split_list(value)]


def folder_types_text(env: Mapping[str, str] | None = None) -> str:
    # FILE/ holds born-digital FIL codes in the original archive; other folders hold their own type.
    return env_value(("ACH_FOLDER_TYPES",), env) or DEFAULT_FOLDER_TYPES


def build_rules(excluded: list[str], extensions: list[str], folder_types: str) -> Rules:
    try:
        mapping = parse_folder_types(folder_types)
    except ValueError as exc:
        raise SettingsError(f"ACH_FOLDER_TYPES: {exc}") from exc
    try:
        return Rules(
            allowed_extensions=frozenset(e.lower() for e in extensions),
            excluded_folders=frozenset(f.strip("/") for f in excluded),
            folder_types=mapping,
        )
    except ValueError as exc:
        raise SettingsError(f"ACH_ALLOWED_EXTENSIONS: {exc}") from exc


def database_url(env: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL, or one built from the original importer's DB_HOST, DB_PORT, DB_NAME,
    DB_USER and DB_PASSWORD."""
    env = os.environ if env is None else env
    url = env_value(("DATABASE_URL",), env)
    if url:
        return url
    host = env_value(("DB_HOST",), env)
    if not host:
        raise SettingsError(
            "no catalog database configured: set DATABASE_URL "
            "(or DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD)"
        )
    return compose_database_url(
        host=host,
        port=env_value(("DB_PORT",), env),
        dbname=env_value(("DB_NAME",), env),
        user=env_value(("DB_USER",), env),
        password=env.get("DB_PASSWORD"),
    )


def compose_database_url(
    host: str,
    port: str | int | None,
    dbname: str | None,
    user: str | None,
    password: str | None,
) -> str:
    auth = quote(user or "postgres", safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port or 5432}/{quote(dbname or 'postgres', safe='')}"


def redact_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    # libpq also takes the password as a query parameter.
    url = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", url)
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in auth else url
