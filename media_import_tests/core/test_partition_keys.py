"""Folder names <-> Dagster partition keys: reversible, and always keys Dagster accepts."""

from __future__ import annotations

import pytest

from media_import.core.partition_keys import folder_to_partition_key, partition_key_to_folder

# Dagster refuses these in partition keys (dagster/_core/definitions/partitions/utils/base.py).
DAGSTER_INVALID = ["...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0"]

FOLDERS = [
    "BRD",
    "DVD",
    "FILE",
    "TEST-FOLDER-DEV",
    "DOCUMENTAZIONE_FOTOGRAFICA",
    "Nastri audio",
    "  leading and trailing  ",
    "Città",
    "音声",
    "émoji 🎞",
    "v1.2",
    ".",
    "..",
    "...",
    "a...b",
    ".hidden",
    "100%",
    "%2E",
    "%",
    "a,b",
    "[BRD]",
    "x]y[z",
    "tab\there",
    "new\nline",
    "nul\0",
    "bell\a",
    "a/b",
    "a+b=c&d?e#f",
    "~tilde",
    "",
]


@pytest.mark.parametrize("folder", FOLDERS)
def test_round_trip(folder: str) -> None:
    assert partition_key_to_folder(folder_to_partition_key(folder)) == folder


@pytest.mark.parametrize("folder", FOLDERS)
def test_keys_hold_nothing_dagster_rejects(folder: str) -> None:
    key = folder_to_partition_key(folder)
    for bad in DAGSTER_INVALID:
        assert bad not in key
    assert not any(ch in key for ch in ",[]")
    assert all(0x20 < ord(ch) < 0x7F for ch in key)  # printable ASCII, no spaces


def test_dagster_itself_accepts_the_keys() -> None:
    from dagster._core.definitions.partitions.utils.base import (
        INVALID_PARTITION_SUBSTRINGS,
        raise_error_on_invalid_partition_key_substring,
    )

    assert set(DAGSTER_INVALID) >= set(INVALID_PARTITION_SUBSTRINGS)
    raise_error_on_invalid_partition_key_substring([folder_to_partition_key(f) for f in FOLDERS])


@pytest.mark.parametrize(
    "folder", ["BRD", "DVD", "FILE", "UMT", "TEST-FOLDER-DEV", "DOCUMENTAZIONE_FOTOGRAFICA", "a1"]
)
def test_plain_names_stay_as_they_are(folder: str) -> None:
    assert folder_to_partition_key(folder) == folder


def test_examples() -> None:
    assert folder_to_partition_key("Nastri audio") == "Nastri%20audio"
    assert folder_to_partition_key("...") == "%2E%2E%2E"
    assert folder_to_partition_key("100%") == "100%25"
    assert folder_to_partition_key("a,b[c]") == "a%2Cb%5Bc%5D"


def test_distinct_folders_get_distinct_keys() -> None:
    keys = [folder_to_partition_key(f) for f in FOLDERS]
    assert len(set(keys)) == len(FOLDERS)
