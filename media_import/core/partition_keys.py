"""Folder names <-> partition keys.

Dagster partition keys must not hold control characters or "..", and commas and brackets
confuse key ranges and tags; bucket folders may hold anything. Keys keep letters, digits,
"-" and "_" as they are (BRD stays BRD) and percent-encode the rest, reversibly.
"""

from urllib.parse import quote, unquote

_SAFE = "-_"


def folder_to_partition_key(folder: str) -> str:
    return quote(folder, safe=_SAFE).replace(".", "%2E")


def partition_key_to_folder(key: str) -> str:
    return unquote(key)
