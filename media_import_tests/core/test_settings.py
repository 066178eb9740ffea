"""Settings from explicit env mappings, with the original importer's variable names."""

from __future__ import annotations

import pytest

from media_import.core.inventory import DEFAULT_ALLOWED_EXTENSIONS, DEFAULT_EXCLUDED_FOLDERS
from media_import.settings import (
    BUCKET_VARS,
    SettingsError,
    allowed_extensions,
    build_rules,
    compose_database_url,
    database_url,
    env_value,
    excluded_folders,
    first_set,
    folder_types_text,
    redact_url,
    split_list,
    truthy,
)

# -- database -------------------------------------------------------------------------------------


def test_database_url_wins() -> None:
    env = {"DATABASE_URL": " postgresql://u:p@db:5433/cat ", "DB_HOST": "ignored"}
    assert database_url(env) == "postgresql://u:p@db:5433/cat"


def test_database_url_from_parts() -> None:
    env = {
        "DB_HOST": "db.example",
        "DB_PORT": "6543",
        "DB_NAME": "catalog",
        "DB_USER": "importer",
        "DB_PASSWORD": "secret",
    }
    assert database_url(env) == "postgresql://importer:secret@db.example:6543/catalog"


def test_blank_database_url_falls_back_to_parts() -> None:
    assert (
        database_url({"DATABASE_URL": "  ", "DB_HOST": "h"})
        == "postgresql://postgres@h:5432/postgres"
    )


def test_password_and_names_are_url_escaped() -> None:
    env = {
        "DB_HOST": "h",
        "DB_NAME": "my db",
        "DB_USER": "me@corp",
        "DB_PASSWORD": "p@ss:w/rd?#% ",
    }
    assert database_url(env) == "postgresql://me%40corp:p%40ss%3Aw%2Frd%3F%23%25%20@h:5432/my%20db"


def test_compose_database_url_defaults() -> None:
    assert (
        compose_database_url("h", None, None, None, None) == "postgresql://postgres@h:5432/postgres"
    )
    assert compose_database_url("h", 5433, "d", "u", "") == "postgresql://u@h:5433/d"


@pytest.mark.parametrize("env", [{}, {"DB_NAME": "x", "DB_USER": "u"}, {"DATABASE_URL": " "}])
def test_missing_database_names_the_variables(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as excinfo:
        database_url(env)
    message = str(excinfo.value)
    for name in ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"):
        assert name in message


# -- variable names -------------------------------------------------------------------------------


def test_bucket_name_is_preferred_over_s3_bucket_in() -> None:
    assert BUCKET_VARS == ("BUCKET_NAME", "S3_BUCKET_IN")
    env = {"BUCKET_NAME": "new", "S3_BUCKET_IN": "old"}
    assert first_set(BUCKET_VARS, env) == "BUCKET_NAME"
    assert env_value(BUCKET_VARS, env) == "new"


def test_s3_bucket_in_is_used_when_bucket_name_is_unset_or_blank() -> None:
    for env in ({"S3_BUCKET_IN": " old "}, {"BUCKET_NAME": "  ", "S3_BUCKET_IN": " old "}):
        assert first_set(BUCKET_VARS, env) == "S3_BUCKET_IN"
        assert env_value(BUCKET_VARS, env) == "old"


def test_nothing_set() -> None:
    assert first_set(BUCKET_VARS, {}) is None
    assert env_value(BUCKET_VARS, {"BUCKET_NAME": ""}) is None


def test_first_set_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)
    monkeypatch.setenv("S3_BUCKET_IN", "from-os")
    assert env_value(BUCKET_VARS) == "from-os"


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " True ", "yes", "Y", "on"])
def test_truthy(value: str) -> None:
    assert truthy(value) is True


@pytest.mark.parametrize("value", [None, "", "0", "false", "no", "off", "n", "2", "truthy"])
def test_not_truthy(value: str | None) -> None:
    assert truthy(value) is False


def test_split_list() -> None:
    assert split_list(" a, b ,,c ,") == ["a", "b", "c"]
    assert split_list(None) == []


# -- phase-1 rules --------------------------------------------------------------------------------


def test_excluded_folders_default() -> None:
    assert excluded_folders({}) == list(DEFAULT_EXCLUDED_FOLDERS)
    assert excluded_folders({"ACH_EXCLUDED_FOLDERS": "  "}) == list(DEFAULT_EXCLUDED_FOLDERS)


def test_excluded_folders_parsing_and_names() -> None:
    assert excluded_folders({"ACH_EXCLUDED_FOLDERS": "TMP/, /OLD , X"}) == ["TMP", "OLD", "X"]
    assert excluded_folders({"EXCLUDED_FOLDERS": "LEGACY/"}) == ["LEGACY"]
    both = {"ACH_EXCLUDED_FOLDERS": "NEW", "EXCLUDED_FOLDERS": "LEGACY"}
    assert excluded_folders(both) == ["NEW"]
    # A lone comma is the way to exclude nothing.
    assert excluded_folders({"ACH_EXCLUDED_FOLDERS": ","}) == []


def test_allowed_extensions_default() -> None:
    assert allowed_extensions({}) == list(DEFAULT_ALLOWED_EXTENSIONS)


def test_allowed_extensions_parsing() -> None:
    env = {"ACH_ALLOWED_EXTENSIONS": "MP4, .JSON ,md5"}
    assert allowed_extensions(env) == [".mp4", ".json", ".md5"]
    assert allowed_extensions({"ALLOWED_EXTENSIONS": ".pdf"}) == [".pdf"]


def test_folder_types_default_and_override() -> None:
    assert folder_types_text({}) == "FILE=FIL"
    assert folder_types_text({"ACH_FOLDER_TYPES": "FILE=FIL,DIG"}) == "FILE=FIL,DIG"


def test_build_rules() -> None:
    rules = build_rules(["TMP/"], [".MP4", ".json"], "FILE=FIL,DIG")
    assert rules.excluded_folders == {"TMP"}
    assert rules.allowed_extensions == {".mp4", ".json"}
    assert rules.types_allowed_in("FILE") == {"FIL", "DIG"}


def test_build_rules_names_a_malformed_folder_types_setting() -> None:
    with pytest.raises(SettingsError, match="ACH_FOLDER_TYPES"):
        build_rules([], [".mp4"], "FILE")


def test_build_rules_refuses_extensions_without_a_role() -> None:
    with pytest.raises(SettingsError, match=r"ACH_ALLOWED_EXTENSIONS.*\.mov"):
        build_rules([], allowed_extensions({"ACH_ALLOWED_EXTENSIONS": "mp4,mov"}), "FILE=FIL")


# -- redaction ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://u:secret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p%40ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # unescaped @ in the password
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("not a url", "not a url"),
        (
            "postgresql://h/db?user=u&password=secret&sslmode=require",
            "postgresql://h/db?user=u&password=***&sslmode=require",
        ),
        ("postgresql://h/db?PASSWORD=secret", "postgresql://h/db?PASSWORD=***"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
    assert "secret" not in redact_url(url)


def test_redact_url_of_a_composed_url() -> None:
    url = compose_database_url("h", 5432, "d", "u", "p@ss word")
    assert redact_url(url) == "postgresql://u:***@h:5432/d"
