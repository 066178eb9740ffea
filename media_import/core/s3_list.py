"""ListObjectsV2, page by page, as Arrow record batches at about half obstore's CPU a key.

Listing is the steady state's largest cost: every import run and every reconciliation pass lists
the whole bucket (1M keys in the benchmark), and obstore spends ~3.7-4.2 µs of CPU a key on
HTTP, XML and Arrow. Here a page comes over one keep-alive connection and Arrow's string
kernels cut it into arrays (1.8-2.1 µs a key in all). The next page is asked for as soon as
this one's continuation token is read, so the server renders it while this one is parsed.
See docs/performance.md.

Keys are asked for URL-encoded (`encoding-type=url`, as every AWS SDK does): XML 1.0 cannot
carry control characters, so a key with a tab or a newline lists too (obstore refuses those).

Failures as in `s3_get`: an error answer (NoSuchBucket, AccessDenied) raises `S3ReadError`; a
dropped connection, a timeout or a 5xx answer (SlowDown) is retried with backoff, and the
listing raises `S3Unavailable` (a ConnectionError) once a page failed MAX_ATTEMPTS times.
"""

from __future__ import annotations

import html
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from urllib.parse import unquote_plus

import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.s3_get import (
    MAX_ATTEMPTS,
    REQUEST_TIMEOUT_S,
    BadResponse,
    Endpoint,
    HttpResponse,
    S3ReadError,
    S3Unavailable,
    backoff,
    get_request,
)
from media_import.core.sigv4 import SigV4Signer, canonical_query

LAST_MODIFIED = pa.timestamp("us", "UTC")  # as obstore lists it
SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("size", pa.int64()),
        ("etag", pa.string()),
        ("last_modified", LAST_MODIFIED),
    ]
)

# A page laid out otherwise than AWS, MinIO and moto lay it out is read object by object.
_BLOCK = re.compile(rb"<Contents>(.*?)</Contents>", re.DOTALL)
_FIELDS = tuple(
    re.compile(rb"<%s>\s*([^<]*?)\s*</%s>" % (name, name))
    for name in (b"Key", b"LastModified", b"ETag", b"Size")
)


def list_batches(
    endpoint: Endpoint,
    signer: SigV4Signer | None,
    prefix: str = "",
    start_after: str = "",
    page_size: int = 1000,
    until: str | None = None,
    parsing: AbstractContextManager[object] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The keys under `prefix` after `start_after` (in S3's UTF-8 byte order), one batch a page
    (key, size, etag without its quotes, last_modified). With `until`, the listing ends with
    the page that reaches that key (the caller drops what lies beyond it): no page past it is
    asked for. `parsing` is entered around each page's parsing (the CPU part; the wait for
    the page is outside it): listings on threads can share a bound on how many parse at once."""
    parsing = parsing or nullcontext()
    params = {"list-type": "2", "encoding-type": "url", "max-keys": str(page_size)}
    if prefix:
        params["prefix"] = prefix
    if start_after:
        params["start-after"] = start_after
    pages = _Pages(endpoint, signer, prefix)
    try:
        pages.ask(params)
        while True:
            body = pages.answer()
            token = next_token(body)
            if token is not None and until is not None and _last_key(body) >= until:
                token = None
            if token is not None:
                pages.ask({**params, "continuation-token": token})
            with parsing:
                batch = parse_page(body)
            if batch.num_rows:  # an empty folder lists as one empty page: no batch, as obstore
                yield batch
            if token is None:
                return
    finally:
        pages.close()


def next_token(body: bytes) -> str | None:
    """The page's NextContinuationToken, or None on the last page."""
    if b"<IsTruncated>true</IsTruncated>" not in body:
        return None
    start = body.find(b"<NextContinuationToken>")
    stop = body.find(b"</NextContinuationToken>", start)
    if start < 0 or stop < 0:
        raise BadResponse("a truncated listing page without a NextContinuationToken")
    return html.unescape(body[start + len(b"<NextContinuationToken>") : stop].decode())


def _last_key(body: bytes) -> str:
    """The page's last key, decoded (str order is S3's: code points sort as UTF-8 bytes)."""
    start = body.rfind(b"<Key>")
    stop = body.find(b"</Key>", start)
    if start < 0 or stop < 0:
        return ""
    raw = body[start + len(b"<Key>") : stop].strip().decode()
    if b"<EncodingType>url</EncodingType>" in body:
        return unquote_plus(raw, errors="strict")
    return html.unescape(raw)


def parse_page(body: bytes) -> pa.RecordBatch:
    """One ListBucketResult page as a record batch of SCHEMA."""
    fields = _fields_by_cutting(body)
    if fields is None:
        rows = _rows_any_layout(body)
        columns = zip(*rows, strict=True) if rows else ((),) * 4
        fields = tuple(pa.array(column, pa.binary()).cast(pa.string()) for column in columns)
    key, modified, etag, size = fields
    for quote_entity in ("&quot;", "&#34;"):
        etag = pc.replace_substring(etag, quote_entity, "")
    return pa.RecordBatch.from_arrays(
        [
            _decoded(key, url_encoded=b"<EncodingType>url</EncodingType>" in body),
            pc.cast(size, pa.int64()),
            pc.utf8_trim(etag, '"'),
            pc.cast(modified, LAST_MODIFIED),
        ],
        schema=SCHEMA,
    )


def _fields_by_cutting(body: bytes) -> tuple[pa.Array, ...] | None:
    """Each listed object's Key, LastModified, ETag and Size, cut out of the page by Arrow's
    string kernels, which run without the GIL (a regular expression scan would hold it while
    the other folders' work waits). Only for the layout AWS, MinIO and moto write: elements
    in this order and nothing between them, but AWS's checksum fields between ETag and Size.
    None for a page laid out otherwise."""
    text = pa.array([body], pa.binary()).cast(pa.string())  # validates the UTF-8 once
    pieces = pc.list_flatten(pc.split_pattern(text, "<Contents><Key>")).slice(1)
    if len(pieces) != body.count(b"<Contents>"):
        return None
    try:
        key, rest = _cut(pieces, "</Key><LastModified>")
        modified, rest = _cut(rest, "</LastModified><ETag>")
        etag, rest = _cut(rest, "</ETag>")
        _, rest = _cut(rest, "<Size>")
        size, _ = _cut(rest, "</Size>")
    except pa.ArrowInvalid:  # a separator missing from an object: laid out otherwise
        return None
    return key, modified, etag, size


def _cut(strings: pa.Array, separator: str) -> tuple[pa.Array, pa.Array]:
    """What comes before and after the first `separator` in each string."""
    parts = pc.split_pattern(strings, separator, max_splits=1)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)


def _decoded(keys: pa.Array, url_encoded: bool) -> pa.Array:
    """Keys as listed: URL-encoded ones decoded (`+` is a space) or, from a server that ignored
    `encoding-type`, XML-escaped ones. Archive keys seldom need either, so check first."""
    if url_encoded and pc.any(pc.match_substring_regex(keys, "[%+]")).as_py():
        return pa.array([unquote_plus(k, errors="strict") for k in keys.to_pylist()], pa.string())
    if not url_encoded and pc.any(pc.match_substring(keys, "&")).as_py():
        return pa.array([html.unescape(k) for k in keys.to_pylist()], pa.string())
    return keys


def _rows_any_layout(body: bytes) -> list[tuple[bytes, ...]]:
    """Each listed object's fields wherever they stand in its element (slower: per object)."""
    rows = []
    for block in _BLOCK.findall(body):
        found = [pattern.search(block) for pattern in _FIELDS]
        if not all(found):
            raise BadResponse(f"a listed object without Key, LastModified, ETag or Size: {block!r}")
        rows.append(tuple(m.group(1) for m in found if m is not None))
    return rows


class _Pages:
    """One keep-alive connection asking for listing pages, one request in flight at a time;
    a page that fails on the connection or with a 5xx is asked for again after a backoff."""

    def __init__(self, endpoint: Endpoint, signer: SigV4Signer | None, prefix: str) -> None:
        self.endpoint = endpoint
        self.signer = signer
        self.prefix = prefix
        self.path = endpoint.path_prefix or "/"
        self.sock: socket.socket | None = None
        self.params: dict[str, str] = {}
        self.sent = False

    def ask(self, params: dict[str, str]) -> None:
        """Send the request for a page now; a failure to send shows in `answer`."""
        self.params, self.sent = params, False
        try:
            self._send()
        except OSError:
            self.close()

    def answer(self) -> bytes:
        """The asked-for page's body, asking again while the endpoint fails."""
        attempts = 0
        while True:
            try:
                if not self.sent:
                    self._send()
                response = self._receive()
            except (OSError, BadResponse) as exc:
                self.close()
                error: BaseException = exc
            else:
                if not response.keep_alive:
                    self.close()
                if response.status == 200:
                    return response.body()
                failure = S3ReadError(self.prefix, response.status, *response.error())
                if not 500 <= response.status < 600:
                    raise failure
                error = failure
            attempts += 1
            if attempts >= MAX_ATTEMPTS:
                raise S3Unavailable(
                    f"listing {self.prefix or 'the bucket'!r} at {self.endpoint.host_header} "
                    f"failed {attempts} times, last: {error}"
                ) from error
            time.sleep(backoff(attempts))
            self.sent = False

    def _send(self) -> None:
        if self.sock is None:
            self.sock = self._connect()
        query = canonical_query(self.params)
        self.sock.sendall(get_request(self.endpoint, self.signer, self.path, query))
        self.sent = True

    def _receive(self) -> HttpResponse:
        assert self.sock is not None
        response = HttpResponse()
        while True:
            data = self.sock.recv(1 << 18)
            if not data:
                if response.feed_eof():
                    return response
                raise ConnectionResetError("the server closed the connection")
            if response.feed(data):
                return response

    def _connect(self) -> socket.socket:
        endpoint = self.endpoint
        sock = socket.create_connection((endpoint.host, endpoint.port), REQUEST_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.tls:
            return ssl.create_default_context().wrap_socket(sock, server_hostname=endpoint.host)
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
