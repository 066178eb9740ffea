"""md5sum files and what may stand in for reading an object's bytes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from media_import.core.inventory import basename

_LINE_RE = re.compile(r"(?P<md5>[0-9a-fA-F]{32}) (?P<mode>[ *])(?P<name>.+)")
_PLAIN_MD5_RE = re.compile(r"[0-9a-f]{32}")


class ChecksumFileError(ValueError):
    """An .md5 sidecar that is not in md5sum format."""


# Not frozen, as the plans of media_import.core.assembly: built for every asset in phase 2.
@dataclass(slots=True)
class ChecksumEntry:
    md5: str
    filename: str


def parse_md5sum(text: str) -> list[ChecksumEntry]:
    """Parse `<hex>  <name>` / `<hex> *<name>` lines (md5sum's text and binary modes).

    Blank lines are allowed; anything else that is not such a line makes the file unreadable,
    because a half-understood checksum file would silently verify less than it claims.
    """
    entries: list[ChecksumEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip("\r\ufeff")
        if not line.strip():
            continue
        match = _LINE_RE.fullmatch(line)
        if not match:
            raise ChecksumFileError(f"line {number} is not '<md5>  <file name>': {line[:80]!r}")
        # Keep the basename of a path, POSIX or Windows (Windows tools write "dir\\name").
        name = basename(match["name"])
        entries.append(ChecksumEntry(match["md5"].lower(), name))
    if not entries:
        raise ChecksumFileError("no checksum lines")
    return entries


def decode_md5sum(body: bytes) -> list[ChecksumEntry]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChecksumFileError(f"not UTF-8 text: {exc}") from exc
    return parse_md5sum(text)


def plain_md5_etag(etag: str | None) -> str | None:
    """The MD5 an ETag stands for, or None when it is not a plain MD5.

    A multipart upload's ETag (`<hex>-<parts>`) is an MD5 of MD5s, never the object's own.
    """
    if not etag:
        return None
    # Called for every file several times a plan; listings hand the ETag over unquoted.
    if len(etag) == 32 and _PLAIN_MD5_RE.fullmatch(etag):
        return etag
    value = etag.strip().strip('"').lower()
    return value if _PLAIN_MD5_RE.fullmatch(value) else None
