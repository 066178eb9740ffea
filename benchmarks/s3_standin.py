"""A benchmark-only S3 stand-in: one bucket served from an `ArchiveSpec`, held in memory.

moto's server is right for 10k and 100k objects, but it scans the whole bucket for every LIST
page, so listing 1M objects costs a thousand full scans. This server answers the requests the
importer (obstore) and boto3 make, with S3's semantics, from a manifest computed at startup:

* ``GET /<bucket>?list-type=2`` (prefix, start-after, continuation-token, max-keys <= 1000,
  delimiter, encoding-type=url), ``GET``/``HEAD /<bucket>/<key>`` (``Range: bytes=a-b``, 206 and
  416 as S3 gives them), ``HEAD /<bucket>``; NoSuchKey / NoSuchBucket errors. Signatures are
  accepted unchecked.
* An overlay of added and removed keys on top of the archive, for "1% new objects" and
  "objects deleted" scenarios.
* Injected latency per LIST and per GET/HEAD, to model AWS: the response waits on a timer, so a
  slow request never delays another connection.
* A control API for the process running a benchmark: ``POST /__standin__/add?key=K`` (the body
  is the object's), ``POST /__standin__/remove?key=K``, ``POST /__standin__/latency?list=S&get=S``
  and ``GET /__standin__/stats``.

It is one asyncio process with a minimal HTTP/1.1 keep-alive parser (obstore keeps connections
open), on uvloop when installed. Chosen by measurement on the 2-core machine, 64 keep-alive
connections of a lean client GETting sidecars: http.server's ThreadingHTTPServer ~5.3k GETs/s,
asyncio ~10k, asyncio on uvloop ~17.5k (one core busy), which is what the importer's obstore
client can ask of a fast endpoint. `StandIn` runs it as a child process, so its CPU never
competes with the benchmarked importer's GIL. ``python -m benchmarks.check_standin`` measures
it with the importer's own client.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import parse_qs, quote, unquote, urlencode
from xml.sax.saxutils import escape

from benchmarks.archive import ArchiveSpec

__all__ = ["BucketIndex", "StandIn", "main", "serve"]

MAX_KEYS = 1000
CONTROL = "/__standin__/"
# Every archive object was "uploaded" at this instant: fixed, so listings are reproducible.
ARCHIVE_MTIME = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
# Below this many objects the manifest is computed in-process: a pool costs more than it saves.
POOL_THRESHOLD = 50_000
START_TIMEOUT_S = 300.0


# -- the bucket's contents -------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: built once a request (a frozen __init__ costs more)
class StoredObject:
    """An object as a request sees it."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    body: Callable[[], bytes]  # a call, so that HEADs and listings never copy bodies


@dataclass(frozen=True, slots=True)
class _Added:
    body: bytes
    etag: str
    last_modified: datetime


# A listed object: key, etag (MD5 hex), size, LastModified (ISO 8601).
Row = tuple[str, str, int, str]


@dataclass
class ListPage:
    """One ListObjectsV2 page: its rows and common prefixes."""

    contents: list[Row] = field(default_factory=list)
    common_prefixes: list[str] = field(default_factory=list)
    next_token: str | None = None  # set when the listing is truncated


# An archive's MD5 digests (16 bytes each, concatenated), sizes and bodies, in S3 order.
Manifest = tuple[bytes, array, list[bytes]]


def _folder_manifest(spec: ArchiveSpec, folder: str) -> Manifest:
    """The digests, sizes and bodies of one folder's objects."""
    digests, sizes, bodies = bytearray(), array("I"), []
    for key in spec.folder_keys(folder):
        body = spec.body(key)
        digests += bytes.fromhex(spec.etag(key))
        sizes.append(len(body))
        bodies.append(body)
    return bytes(digests), sizes, bodies


def build_manifest(spec: ArchiveSpec) -> Manifest:
    """Digests, sizes and bodies of every archive object: building 1M bodies takes ~10 s of CPU
    on this machine, so folders are spread over a process per core. The bodies are kept
    (~0.8 GB at 1M objects) because building one costs ~16 µs of CPU per GET, a third of
    what the rest of the stand-in spends on it, on the cores the benchmarked importer uses."""
    folders = sorted(spec.folder_names())
    if len(spec) < POOL_THRESHOLD or (os.cpu_count() or 1) < 2:
        parts = [_folder_manifest(spec, f) for f in folders]
    else:
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            parts = list(pool.map(_folder_manifest, [spec] * len(folders), folders))
    sizes, bodies = array("I"), []
    for _, part_sizes, part_bodies in parts:
        sizes.extend(part_sizes)
        bodies.extend(part_bodies)
    return b"".join(d for d, _, _ in parts), sizes, bodies


class BucketIndex:
    """The archive's keys (one sorted list, ~80 bytes a key), its manifest, and an overlay.

    Thread-safe: the overlay is only read and written under a lock, and the archive part never
    changes. The server itself is single-threaded; the lock is for in-process users.
    """

    def __init__(self, spec: ArchiveSpec, manifest: Manifest | None = None) -> None:
        self.spec = spec
        self.keys: list[str] = list(spec.keys())
        self.digests, self.sizes, self.bodies = manifest or build_manifest(spec)
        if len(self.sizes) != len(self.keys):
            raise ValueError("manifest does not match the archive's keys")
        self.added: dict[str, _Added] = {}
        self.added_keys: list[str] = []  # sorted
        self.removed: set[str] = set()
        self.lock = threading.Lock()
        self.mtime_iso = _iso(ARCHIVE_MTIME)

    def __len__(self) -> int:
        with self.lock:
            overwritten = sum(1 for k in self.added_keys if self._base_index(k) is not None)
            return len(self.keys) - len(self.removed) + len(self.added_keys) - overwritten

    # -- overlay -----------------------------------------------------------------------------

    def add(self, key: str, body: bytes) -> None:
        """Put an object (a new key, or overwriting one: S3's PUT)."""
        entry = _Added(body, hashlib.md5(body, usedforsecurity=False).hexdigest(), _now())
        with self.lock:
            if key not in self.added:
                bisect.insort(self.added_keys, key)
            self.added[key] = entry
            self.removed.discard(key)

    def remove(self, key: str) -> bool:
        """Delete an object; False when there was none."""
        with self.lock:
            existed = self._lookup(key) is not None
            if self.added.pop(key, None) is not None:
                self.added_keys.remove(key)
            if self._base_index(key) is not None:
                self.removed.add(key)
            return existed

    # -- reads -------------------------------------------------------------------------------

    def get(self, key: str) -> StoredObject | None:
        with self.lock:
            return self._lookup(key)

    def _lookup(self, key: str) -> StoredObject | None:
        added = self.added.get(key)
        if added is not None:
            body = added.body
            return StoredObject(key, len(body), added.etag, added.last_modified, lambda: body)
        index = self._base_index(key)
        if index is None or key in self.removed:
            return None
        return StoredObject(
            key,
            self.sizes[index],
            self.digests[16 * index : 16 * index + 16].hex(),
            ARCHIVE_MTIME,
            lambda: self.bodies[index],
        )

    def _base_index(self, key: str) -> int | None:
        index = bisect.bisect_left(self.keys, key)
        return index if index < len(self.keys) and self.keys[index] == key else None

    def list_page(
        self,
        prefix: str = "",
        start_after: str = "",
        token: str | None = None,
        max_keys: int = MAX_KEYS,
        delimiter: str = "",
    ) -> ListPage:
        """ListObjectsV2's page: keys under `prefix` after `start_after` (or after where the
        `token` left off), up to `max_keys` keys and common prefixes counted together."""
        page = ListPage()
        if max_keys <= 0:
            return page
        lower, inclusive = _resume_point(prefix, start_after, token)
        with self.lock:
            if delimiter:
                self._fill_delimited(page, prefix, delimiter, lower, inclusive, max_keys)
                return page
            rows = self._flat_rows(prefix, lower, inclusive, max_keys + 1)
        page.contents = rows[:max_keys]
        if len(rows) > max_keys:
            page.next_token = _token(page)
        return page

    def _fill_delimited(
        self, page: ListPage, prefix: str, delimiter: str, lower: str, inclusive: bool, limit: int
    ) -> None:
        """A page with common prefixes: walks key by key, jumping past each folded prefix."""
        rows = self._rows_from(lower, inclusive)
        while (row := next(rows, None)) is not None:
            key = row[0]
            if not key.startswith(prefix):
                return
            if len(page.contents) + len(page.common_prefixes) == limit:
                page.next_token = _token(page)
                return
            cut = key.find(delimiter, len(prefix))
            if cut < 0:
                page.contents.append(row)
                continue
            common = key[: cut + len(delimiter)]
            page.common_prefixes.append(common)
            # Every key under a common prefix is folded into it: jump past them all.
            rows = self._rows_from(_after_prefix(common), True)

    def _flat_rows(self, prefix: str, lower: str, inclusive: bool, limit: int) -> list[Row]:
        """Up to `limit` rows under `prefix` from `lower` on. Archive keys are taken in runs
        between overlay keys (list slices, not one generator step per key): the listing is the
        hot path of a million-key benchmark."""
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        keys, added_keys = self.keys, self.added_keys
        end, added_end = len(keys), len(added_keys)
        if prefix:
            end = bisect.bisect_left(keys, _after_prefix(prefix))
            added_end = bisect.bisect_left(added_keys, _after_prefix(prefix))
        i, j = find(keys, lower), find(added_keys, lower)
        rows: list[Row] = []
        while len(rows) < limit and (i < end or j < added_end):
            next_added = added_keys[j] if j < added_end else None
            stop = end if next_added is None else bisect.bisect_left(keys, next_added, i, end)
            stop = min(stop, i + limit - len(rows))
            rows += self._archive_rows(i, stop)
            i = stop
            if next_added is not None and len(rows) < limit and (i >= end or next_added <= keys[i]):
                if i < end and keys[i] == next_added:
                    i += 1  # overwritten: the overlay's version replaces the archive's
                rows.append(self._added_row(next_added))
                j += 1
        return rows

    def _archive_rows(self, start: int, stop: int) -> list[Row]:
        keys, digests, sizes, mtime = self.keys, self.digests, self.sizes, self.mtime_iso
        removed = self.removed
        return [
            (keys[i], digests[16 * i : 16 * i + 16].hex(), sizes[i], mtime)
            for i in range(start, stop)
            if not removed or keys[i] not in removed
        ]

    def _added_row(self, key: str) -> Row:
        added = self.added[key]
        return key, added.etag, len(added.body), _iso(added.last_modified)

    def _rows_from(self, lower: str, inclusive: bool) -> Iterator[Row]:
        """The rows of every object from `lower` on, archive and overlay merged in key order;
        the overlay wins on equal keys and removed keys are skipped."""
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        keys, added_keys = self.keys, self.added_keys
        i, j = find(keys, lower), find(added_keys, lower)
        n, m = len(keys), len(added_keys)
        while i < n or j < m:
            if j < m and (i >= n or added_keys[j] <= keys[i]):
                if i < n and keys[i] == added_keys[j]:
                    i += 1
                yield self._added_row(added_keys[j])
                j += 1
                continue
            yield from self._archive_rows(i, i + 1)
            i += 1


def _resume_point(prefix: str, start_after: str, token: str | None) -> tuple[str, bool]:
    """Where a listing starts: (lower bound, whether the bound itself is included)."""
    if token is not None:
        kind, _, last = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        # A common prefix folds every key under it: resume after all of them.
        return (_after_prefix(last), True) if kind == "p" else (last, False)
    if start_after and start_after >= prefix:
        return start_after, False
    return prefix, True


def _token(page: ListPage) -> str:
    """An opaque continuation token: the last entry returned and whether it was a prefix."""
    last_key = page.contents[-1][0] if page.contents else ""
    last_prefix = page.common_prefixes[-1] if page.common_prefixes else ""
    entry = f"p:{last_prefix}" if last_prefix > last_key else f"k:{last_key}"
    return base64.urlsafe_b64encode(entry.encode()).decode()


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@lru_cache(maxsize=256)
def _http_date(moment: datetime) -> str:
    # Cached: formatting costs more than the rest of a GET, and archive objects share one date.
    return format_datetime(moment, usegmt=True)


@lru_cache(maxsize=256)
def _object_headers(last_modified: datetime) -> str:
    """An object's header lines after its ETag (archive objects share one time)."""
    return (
        f"Last-Modified: {_http_date(last_modified)}\r\nAccept-Ranges: bytes\r\n"
        "Content-Type: application/octet-stream\r\n"
    )


def _now() -> datetime:
    return datetime.now(UTC)


# -- HTTP ------------------------------------------------------------------------------------


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more
class Request:
    method: str
    path: str  # percent-encoded, as sent
    query: str
    headers: dict[str, str]  # those the stand-in acts on (_WANTED_HEADERS), lower-case names
    body: bytes


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    # A HEAD's answer: the Content-Length of the GET it stands for, and no body.
    head_length: int | None = None
    # Header lines already rendered ("Name: value\r\n" each), sent after `headers`: an
    # object's answer is rendered in one f-string (see S3Handler._object).
    header_lines: str = ""

    def encode(self, close: bool, head: bool = False) -> bytes:
        """The response's bytes; `head`: for a HEAD request, whose answer never has a body."""
        length = len(self.body) if self.head_length is None else self.head_length
        lines = "".join(f"{name}: {value}\r\n" for name, value in self.headers)
        header = (
            f"{_status_line(self.status)}{lines}{self.header_lines}Content-Length: {length}\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n"
        ).encode("latin-1")
        return header if head else header + self.body


@lru_cache(maxsize=64)
def _status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"


_REASONS = {
    200: "OK",
    204: "No Content",
    206: "Partial Content",
    400: "Bad Request",
    404: "Not Found",
    416: "Requested Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
}
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def _error(status: int, code: str, message: str, detail: str = "", delay: float = 0.0) -> Response:
    """S3's error document; `detail` names what was missing (<Key>..</Key>, ...)."""
    xml = f"{_XML_HEAD}<Error><Code>{code}</Code><Message>{message}</Message>{detail}</Error>"
    return Response(status, xml.encode(), (("Content-Type", "application/xml"),), delay)


@dataclass
class Stats:
    """Requests served, for a benchmark to report (and to check its client's behaviour)."""

    lists: int = 0
    keys_listed: int = 0
    gets: int = 0
    heads: int = 0
    bytes_sent: int = 0


class S3Handler:
    """Turns one parsed request into a response: S3 for the bucket, JSON for the control API."""

    def __init__(
        self, index: BucketIndex, bucket: str, list_latency: float, get_latency: float
    ) -> None:
        self.index = index
        self.bucket = bucket
        self.list_latency = list_latency
        self.get_latency = get_latency
        self.stats = Stats()

    def handle(self, request: Request) -> Response:
        if request.path.startswith(CONTROL):
            return self._control(request)
        bucket, _, key = request.path.lstrip("/").partition("/")
        if bucket != self.bucket:
            detail = f"<BucketName>{_xml_text(bucket)}</BucketName>"
            return _error(404, "NoSuchBucket", "The specified bucket does not exist", detail)
        if request.method not in ("GET", "HEAD"):
            return _error(501, "NotImplemented", "This stand-in only reads")
        if key:
            return self._object(request, unquote(key))
        if request.method == "HEAD":
            return Response(200, headers=(("x-amz-bucket-region", "us-east-1"),))
        return self._list(parse_qs(request.query, keep_blank_values=True))

    # -- ListObjectsV2 -----------------------------------------------------------------------

    def _list(self, query: dict[str, list[str]]) -> Response:
        arg = {name: values[0] for name, values in query.items()}
        if arg.get("list-type") != "2":
            return _error(501, "NotImplemented", "Only ListObjectsV2 (list-type=2) is served")
        try:
            max_keys = min(MAX_KEYS, int(arg.get("max-keys", MAX_KEYS)))
        except ValueError:
            return _error(400, "InvalidArgument", "max-keys must be an integer")
        try:
            page = self.index.list_page(
                arg.get("prefix", ""),
                arg.get("start-after", ""),
                arg.get("continuation-token"),
                max_keys,
                arg.get("delimiter", ""),
            )
        except ValueError:  # a token that is not one of ours (not base64, not UTF-8)
            return _error(400, "InvalidArgument", "The continuation token provided is incorrect")
        self.stats.lists += 1
        self.stats.keys_listed += len(page.contents)
        xml = _list_xml(self.bucket, arg, max_keys, page)
        headers = (("Content-Type", "application/xml"),)
        return Response(200, xml.encode(), headers, self.list_latency)

    # -- objects -----------------------------------------------------------------------------

    def _object(self, request: Request, key: str) -> Response:
        head = request.method == "HEAD"
        if head:
            self.stats.heads += 1
        else:
            self.stats.gets += 1
        found = self.index.get(key)
        if found is None:
            if head:  # a HEAD answer has no body, so S3 sends the bare status
                return Response(404, delay=self.get_latency)
            message, detail = "The specified key does not exist.", f"<Key>{_xml_text(key)}</Key>"
            return _error(404, "NoSuchKey", message, detail, self.get_latency)
        # ETag, Last-Modified, Accept-Ranges, Content-Type, rendered at once: the answer to a
        # GET is most of the stand-in's CPU, which the benchmarked importer shares.
        lines = f'ETag: "{found.etag}"\r\n{_object_headers(found.last_modified)}'
        if head:
            return Response(200, b"", (), self.get_latency, found.size, lines)
        return self._body(found, request.headers.get("range"), lines)

    def _body(self, found: StoredObject, range_header: str | None, lines: str) -> Response:
        wanted = _parse_range(range_header, found.size) if range_header else None
        if wanted == "unsatisfiable":
            message = "The requested range is not satisfiable"
            detail = f"<ActualObjectSize>{found.size}</ActualObjectSize>"
            response = _error(416, "InvalidRange", message, detail, self.get_latency)
            response.headers += (("Content-Range", f"bytes */{found.size}"),)
            return response
        body = found.body()
        if wanted is None:
            self.stats.bytes_sent += len(body)
            return Response(200, body, (), self.get_latency, None, lines)
        first, last = wanted
        lines += f"Content-Range: bytes {first}-{last}/{found.size}\r\n"
        self.stats.bytes_sent += last + 1 - first
        return Response(206, body[first : last + 1], (), self.get_latency, None, lines)

    # -- control -----------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        action = request.path[len(CONTROL) :]
        arg = {name: values[0] for name, values in parse_qs(request.query).items()}
        if action == "stats" and request.method == "GET":
            stats = {**vars(self.stats), "objects": len(self.index)}
            headers = (("Content-Type", "application/json"),)
            return Response(200, json.dumps(stats).encode(), headers)
        if request.method != "POST":
            return _error(400, "InvalidRequest", "control actions are POSTs")
        if action == "add" and "key" in arg:
            self.index.add(arg["key"], request.body)
            return Response(204)
        if action == "remove" and "key" in arg:
            return Response(204 if self.index.remove(arg["key"]) else 404)
        if action == "latency":
            self.list_latency = float(arg.get("list", self.list_latency))
            self.get_latency = float(arg.get("get", self.get_latency))
            return Response(204)
        return _error(400, "InvalidRequest", f"unknown control action {action!r}")


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` as (first, last) clamped to the object; None for a
    header S3 would ignore (malformed or several ranges), "unsatisfiable" for a 416."""
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or "," in spec:
        return None
    try:
        if not first_text:  # the last n bytes
            count = int(last_text)
            return (max(0, size - count), size - 1) if count and size else "unsatisfiable"
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if last < first:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


def _list_xml(bucket: str, arg: dict[str, str], max_keys: int, page: ListPage) -> str:
    """ListBucketResult as S3 writes it; keys are URL-encoded when the client asked for it
    (boto3 always does, and decodes them back)."""
    encode = quote if arg.get("encoding-type") == "url" else _xml_text
    encode_key = encode
    if encode is quote and _URL_SAFE.fullmatch("".join(c[0] for c in page.contents)):
        encode_key = _as_is  # a page of plain archive keys: nothing to encode
    parts = [
        f'{_XML_HEAD}<ListBucketResult xmlns="{_S3_NS}"><Name>{bucket}</Name>',
        f"<Prefix>{encode(arg.get('prefix', ''))}</Prefix>",
        f"<KeyCount>{len(page.contents) + len(page.common_prefixes)}</KeyCount>",
        f"<MaxKeys>{max_keys}</MaxKeys>",
    ]
    if arg.get("delimiter"):
        parts.append(f"<Delimiter>{encode(arg['delimiter'])}</Delimiter>")
    if arg.get("encoding-type"):
        parts.append(f"<EncodingType>{_xml_text(arg['encoding-type'])}</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if page.next_token else 'false'}</IsTruncated>")
    if "continuation-token" in arg:
        parts.append(f"<ContinuationToken>{arg['continuation-token']}</ContinuationToken>")
    if page.next_token:
        parts.append(f"<NextContinuationToken>{page.next_token}</NextContinuationToken>")
    if arg.get("start-after"):
        parts.append(f"<StartAfter>{encode(arg['start-after'])}</StartAfter>")
    parts += [
        f"<Contents><Key>{encode_key(key)}</Key><LastModified>{mtime}</LastModified>"
        f"<ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        for key, etag, size, mtime in page.contents
    ]
    parts += [
        f"<CommonPrefixes><Prefix>{encode(p)}</Prefix></CommonPrefixes>"
        for p in page.common_prefixes
    ]
    parts.append("</ListBucketResult>")
    return "".join(parts)


# What URL encoding leaves as it is (and XML too): most archive keys are only these.
_URL_SAFE = re.compile(r"[A-Za-z0-9/_.~-]*")


def _as_is(text: str) -> str:
    return text


def _xml_text(text: str) -> str:
    # Archive keys never need escaping; checking first keeps the common case cheap.
    return escape(text) if "&" in text or "<" in text or ">" in text else text


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, one at a time, each after
    its injected latency (a timer, so other connections go on meanwhile)."""

    def __init__(self, handler: S3Handler) -> None:
        self.handler = handler
        self.buffer = bytearray()
        self.waiting = False  # a response is on its latency timer
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.waiting:
            self._answer_buffered()

    def _answer_buffered(self) -> None:
        # The answers to pipelined requests that arrived together leave in one write: a send
        # is about half the stand-in's CPU per GET, CPU the benchmarked importer shares.
        out: list[bytes] = []
        try:
            while self.transport is not None and not self.waiting:
                parsed = _parse_request(self.buffer)
                if parsed is None:
                    return
                if isinstance(parsed, Response):  # malformed: answer and hang up
                    out.append(parsed.encode(True))
                    self._flush(out, close=True)
                    return
                request, close = parsed
                response = self._handle(request)
                head = request.method == "HEAD"
                if response.delay > 0:
                    self.waiting = True
                    loop = asyncio.get_running_loop()
                    loop.call_later(response.delay, self._send_later, response, close, head)
                    return
                out.append(response.encode(close, head))
                if close:
                    self._flush(out, close=True)
                    return
        finally:
            self._flush(out)

    def _handle(self, request: Request) -> Response:
        try:
            return self.handler.handle(request)
        except Exception as exc:  # a bug here must not hang the client: answer like S3 would
            print(f"S3 stand-in: {request.method} {request.path}: {exc!r}", file=sys.stderr)
            return _error(500, "InternalError", "We encountered an internal error.")

    def _send_later(self, response: Response, close: bool, head: bool) -> None:
        self.waiting = False
        self._send(response, close, head)
        self._answer_buffered()

    def _send(self, response: Response, close: bool, head: bool = False) -> None:
        self._flush([response.encode(close, head)], close)

    def _flush(self, out: list[bytes], close: bool = False) -> None:
        if self.transport is None or not out:
            return
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        if close:
            self.transport.close()
            self.transport = None


def _parse_request(buffer: bytearray) -> tuple[Request, bool] | Response | None:
    """Take one complete request off the buffer: (request, close after answering), an error
    response for a malformed one, or None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end])
    line_end = head.find(b"\r\n")
    try:
        method, target, version = (
            head[: line_end if line_end >= 0 else end].decode("latin-1").split(" ")
        )
    except ValueError:
        return _error(400, "BadRequest", "malformed request line")
    headers = _wanted_headers(head)
    if "chunked" in headers.get("transfer-encoding", ""):
        return _error(501, "NotImplemented", "chunked request bodies are not supported")
    length_text = headers.get("content-length", "0") or "0"
    if not length_text.isdigit():
        return _error(400, "BadRequest", "malformed Content-Length")
    length = int(length_text)
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    path, _, query = target.partition("?")
    connection = headers.get("connection", "").lower()
    close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    return Request(method, path, query, headers, body), close


# The only request headers the stand-in acts on.
_WANTED_HEADERS = ("range", "content-length", "transfer-encoding", "connection")
_WANTED_NEEDLES = tuple((name, f"\r\n{name}:".encode()) for name in _WANTED_HEADERS)


def _wanted_headers(head: bytes) -> dict[str, str]:
    """The wanted headers of a request's head (lower-case names). Each is found by a search of
    the lowered head: splitting every header line (a client sends eight or more) was a third
    of the stand-in's CPU per GET, CPU the benchmarked importer shares."""
    lowered = head.lower()
    headers: dict[str, str] = {}
    for name, needle in _WANTED_NEEDLES:
        at = lowered.find(needle)
        if at < 0:
            continue
        start = at + len(needle)
        stop = head.find(b"\r\n", start)
        value = head[start : stop if stop >= 0 else len(head)]
        headers[name] = value.decode("latin-1").strip()
    return headers


# -- running it ------------------------------------------------------------------------------


def serve(
    spec: ArchiveSpec,
    bucket: str = "bench",
    host: str = "127.0.0.1",
    port: int = 0,
    list_latency: float = 0.0,
    get_latency: float = 0.0,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; `ready(port)` is called once the socket listens."""
    index = BucketIndex(spec)
    handler = S3Handler(index, bucket, list_latency, get_latency)
    _event_loop_runner()(_serve(handler, host, port, ready))


async def _serve(
    handler: S3Handler, host: str, port: int, ready: Callable[[int], None] | None
) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(handler), host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    await stop.wait()
    # Not `async with server`: its wait_closed() would wait for clients' kept-alive connections
    # to go away, which a pooled client may never do. Exiting the process closes them.
    server.close()


def _event_loop_runner() -> Callable:
    """uvloop's run when it is installed (it comes with dagster-webserver's uvicorn[standard]):
    it serves small requests about twice as fast as asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


class StandIn:
    """The stand-in as a child process, for `with StandIn(spec) as s3: ... s3.endpoint_url`.

    A child keeps the server's CPU off the benchmarked process's GIL; the overlay and the
    latency are driven through its control API (each call its own HTTP request, so any thread
    may call them).
    """

    def __init__(
        self,
        spec: ArchiveSpec,
        bucket: str = "bench",
        port: int = 0,
        list_latency: float = 0.0,
        get_latency: float = 0.0,
    ) -> None:
        self.spec = spec
        self.bucket = bucket
        self.port = port
        self.list_latency = list_latency
        self.get_latency = get_latency
        self.process: subprocess.Popen[str] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the stand-in is not running")
        return self.process.pid

    def start(self) -> StandIn:
        spec = self.spec
        command = [sys.executable, "-m", "benchmarks.s3_standin"]
        command += ["--objects", str(spec.objects), "--seed", str(spec.seed)]
        command += ["--folders", str(spec.folders), "--bucket", self.bucket]
        command += ["--port", str(self.port), "--list-latency", str(self.list_latency)]
        command += ["--get-latency", str(self.get_latency)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=_child_env()
        )
        self.port = self._read_port()
        return self

    def _read_port(self) -> int:
        """The child prints "listening <port>" once the manifest is built and it serves."""
        assert self.process is not None and self.process.stdout is not None
        line = _readline_within(self.process.stdout, START_TIMEOUT_S)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"the S3 stand-in did not start (it printed {line!r})")
        return int(line.split()[1])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- control -----------------------------------------------------------------------------

    def add(self, key: str, body: bytes) -> None:
        self._control("add", {"key": key}, body)

    def remove(self, key: str) -> bool:
        """Delete `key`; False when it did not exist."""
        return self._control("remove", {"key": key}) == 204

    def set_latency(
        self, list_latency: float | None = None, get_latency: float | None = None
    ) -> None:
        """Change the injected latency (seconds; None keeps the current value)."""
        values = {"list": list_latency, "get": get_latency}
        self._control("latency", {k: str(v) for k, v in values.items() if v is not None})
        self.list_latency = self.list_latency if list_latency is None else list_latency
        self.get_latency = self.get_latency if get_latency is None else get_latency

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.endpoint_url}{CONTROL}stats", timeout=30) as reply:
            return json.loads(reply.read())

    def _control(self, action: str, params: dict[str, str], body: bytes = b"") -> int:
        url = f"{self.endpoint_url}{CONTROL}{action}?{urlencode(params)}"
        request = urllib.request.Request(url, data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return 404
            raise


def _child_env() -> dict[str, str]:
    # The child imports `benchmarks` from this checkout whatever the caller's working directory.
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _readline_within(stream: IO[str], timeout: float) -> str:
    """One line from a child's stdout, or "" if none came in time (a reader thread: pipes
    have no portable read timeout)."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = ArchiveSpec(args.objects, args.seed, args.folders)
    started = time.monotonic()

    def ready(port: int) -> None:
        # The first stdout line is what StandIn waits for; the rest is for a person.
        print(f"listening {port}", flush=True)
        print(
            f"S3 stand-in: {len(spec)} objects in bucket {args.bucket!r} at "
            f"http://{args.host}:{port} (ready in {time.monotonic() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    serve(spec, args.bucket, args.host, args.port, args.list_latency, args.get_latency, ready)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.s3_standin",
        description="Serve a synthetic archive as one S3 bucket (benchmarks only).",
    )
    parser.add_argument("--objects", type=int, required=True, help="objects in the archive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--folders", type=int, default=16)
    parser.add_argument("--bucket", default="bench")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--list-latency", type=float, default=0.0, help="seconds per LIST page")
    parser.add_argument("--get-latency", type=float, default=0.0, help="seconds per GET/HEAD")
    return parser


if __name__ == "__main__":
    # Run the module's importable copy, so the manifest's worker processes find their function
    # as benchmarks.s3_standin._folder_manifest rather than under __main__.
    from benchmarks.s3_standin import main as importable_main

    sys.exit(importable_main())
