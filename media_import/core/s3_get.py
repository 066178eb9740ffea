"""Many small GETs at a low CPU cost: the sidecar reads of phase 3.

A first import reads three sidecars per asset: 750k GETs at 1M objects. Through obstore's
blocking calls on threads each GET cost ~220 µs of client CPU on the 2-core benchmark machine;
here one event loop (uvloop when installed) drives keep-alive HTTP/1.1 connections, and a GET
costs ~35-55 µs: no thread, task or future per request, the SigV4 key derived once a day,
responses parsed with a few byte searches. Listing and streamed MD5s stay on obstore (see
docs/performance.md).

Pipelining: each connection sends up to `depth` GETs (RFC 9112 §9.3: a client may pipeline
safe methods; the server answers in order) in one write, topped up when half are answered, so
a syscall on either side carries several requests. It is an optimisation that steps aside: a
connection lost with more than one request unanswered turns it off for the rest of the call
(the unanswered requests are sent again, one at a time), and `depth=1` turns it off altogether.

What it speaks: GET of a whole object or of its first bytes (`Range`), path-style requests to
an endpoint (MinIO, moto, any S3-compatible server) or virtual-hosted ones to AWS, static
credentials (with a session token) or anonymous requests, HTTP or HTTPS, bodies delimited by
Content-Length, chunked encoding or the connection's end.

Failures: an error answer (404 NoSuchKey, 403 AccessDenied, ...) is that read's result, an
`S3ReadError`, so one unreadable sidecar rejects one asset. A dropped connection, a timeout
or a 5xx answer (500 InternalError, 503 SlowDown) is retried with exponential backoff; when a
read runs out of attempts the whole call raises `S3Unavailable`, a ConnectionError, so that
the step is retried later instead of rejecting assets because of an outage.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from media_import.core.sigv4 import SigV4Signer

DEFAULT_CONNECTIONS = 128
# GETs in flight on one connection. On one 1M folder's 46,875 sidecar reads against the
# stand-in, 16 took a GET from 26-33 to 16 µs of client CPU and the server's from 25-37 to
# 15 µs; 8 took them to 17-18 and 16-17 µs (see docs/performance.md).
DEFAULT_PIPELINE_DEPTH = 16
MAX_ATTEMPTS = 6  # per read: the first try and five retries, waits 0.1 s doubling to 3.2 s
BASE_BACKOFF_S = 0.1
REQUEST_TIMEOUT_S = 30.0
MAX_HEAD_BYTES = 64 * 1024


class Read(Protocol):
    """What to read: `key`, and `length` (the first bytes) or None (the whole object)."""

    @property
    def key(self) -> str: ...

    @property
    def length(self) -> int | None: ...


class S3ReadError(Exception):
    """S3 answered a read with an error that waiting will not mend (NoSuchKey, AccessDenied)."""

    def __init__(self, key: str, status: int, code: str, message: str) -> None:
        super().__init__(
            f"{code} (HTTP {status}): {message}" if message else f"{code} (HTTP {status})"
        )
        self.key, self.status, self.code, self.message = key, status, code, message

    def __reduce__(self) -> tuple[type[S3ReadError], tuple[str, int, str, str]]:
        # Pickled whole (a planning process sends its failures to the run process).
        return (type(self), (self.key, self.status, self.code, self.message))


class S3Unavailable(ConnectionError):
    """A read still failed after every retry: the endpoint is down, overloaded or unreachable."""


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket's objects are: the connection's address and each request's prefix."""

    host: str
    port: int
    tls: bool
    host_header: str
    path_prefix: str  # "/bucket" for path-style requests, "" for virtual-hosted ones

    @classmethod
    def for_bucket(cls, bucket: str, endpoint_url: str | None, region: str | None) -> Endpoint:
        if not endpoint_url:
            # AWS: virtual-hosted style, as obstore (and every AWS SDK) uses for AWS.
            host = f"{bucket}.s3.{region or 'us-east-1'}.amazonaws.com"
            return cls(host, 443, True, host, "")
        url = urlsplit(endpoint_url)
        tls = url.scheme == "https"
        default_port = 443 if tls else 80
        host = url.hostname or "localhost"
        port = url.port or default_port
        shown = f"[{host}]" if ":" in host else host
        host_header = shown if port == default_port else f"{shown}:{port}"
        return cls(host, port, tls, host_header, f"{url.path.rstrip('/')}/{quote(bucket)}")

    def path(self, key: str) -> str:
        # S3's canonical URI is the key with every byte but unreserved ones and "/" encoded,
        # exactly what is sent: S3 never normalises "." segments or double slashes.
        return f"{self.path_prefix}/{quote(key, safe='/')}"


def read_many(
    endpoint: Endpoint,
    signer: SigV4Signer | None,
    reads: Sequence[Read],
    connections: int = DEFAULT_CONNECTIONS,
    depth: int = DEFAULT_PIPELINE_DEPTH,
) -> dict[str, bytes | Exception]:
    """Read every object (or its first bytes); an error answer is the read's result. Raises
    S3Unavailable when a read still fails on the connection or with a 5xx after its retries.
    `depth`: requests pipelined on each connection (1: one at a time)."""
    if not reads:
        return {}
    batch = _Batch(endpoint, signer, reads, connections, depth)
    return _run(batch.run())


def _run(work: Coroutine[Any, Any, dict[str, bytes | Exception]]) -> dict[str, bytes | Exception]:
    try:
        import uvloop
    except ImportError:  # uvloop is optional: asyncio's own loop works, at about half the speed
        return asyncio.run(work)
    return uvloop.run(work)


class _Batch:
    """One call's reads: a queue the connections take from, and what they found."""

    def __init__(
        self,
        endpoint: Endpoint,
        signer: SigV4Signer | None,
        reads: Sequence[Read],
        connections: int,
        depth: int = DEFAULT_PIPELINE_DEPTH,
    ) -> None:
        self.endpoint = endpoint
        self.depth = max(1, depth)
        self.signer = signer
        self.queue: deque[Read] = deque(reads)
        self.results: dict[str, bytes | Exception] = {}
        self.unfinished = len(reads)
        self.attempts: dict[str, int] = {}
        self.wanted_connections = max(1, min(connections, len(reads)))
        self.open: set[_Connection] = set()
        self.idle: list[_Connection] = []
        self.connecting = 0
        self.connect_failures = 0  # in a row: reset whenever a connection opens
        self.failure: BaseException | None = None
        self.ssl = ssl.create_default_context() if endpoint.tls else None

    async def run(self) -> dict[str, bytes | Exception]:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.finished = loop.create_future()
        watchdog = loop.call_later(1.0, self._watch)
        try:
            self._connect()  # one first: the others follow once it opened (see `opened`)
            await self.finished
        finally:
            watchdog.cancel()
            for connection in list(self.open):
                connection.close()
        if self.failure is not None:
            raise self.failure
        return self.results

    # -- connections -------------------------------------------------------------------------

    def _connect(self, delay: float = 0.0) -> None:
        self.connecting += 1
        self.loop.create_task(self._open_connection(delay))

    async def _open_connection(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            endpoint = self.endpoint
            await self.loop.create_connection(
                lambda: _Connection(self),
                endpoint.host,
                endpoint.port,
                ssl=self.ssl,
                server_hostname=endpoint.host if self.ssl else None,
            )
        except OSError as exc:
            self.connecting -= 1
            self._connection_failed(exc)

    def _connection_failed(self, exc: OSError) -> None:
        """A connection could not be opened: try again after a backoff, and give up once
        every attempt failed with no connection open."""
        self.connect_failures += 1
        if self.connect_failures >= MAX_ATTEMPTS and not self.open:
            where = f"{self.endpoint.host}:{self.endpoint.port}"
            self.fail(S3Unavailable(f"cannot connect to the S3 endpoint {where}: {exc}"))
        elif not self.finished.done():
            self._connect(backoff(self.connect_failures))

    def opened(self, connection: _Connection) -> None:
        self.connecting -= 1
        self.open.add(connection)
        self.connect_failures = 0
        self._top_up()

    def _top_up(self) -> None:
        """Keep as many connections as there is work for."""
        if self.finished.done():
            return
        missing = min(self.wanted_connections, self.unfinished) - len(self.open) - self.connecting
        for _ in range(missing):
            self._connect()

    def connection_closed(self, connection: _Connection) -> None:
        self.open.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)
        self._top_up()

    # -- reads -------------------------------------------------------------------------------

    def next_reads(self, connection: _Connection, room: int) -> list[Read]:
        """Up to `room` reads for `connection` to send, and no more than its share of what is
        left: a server answers a connection's requests one after another, so a few reads
        piled on the first connection to open would wait on each other's latency."""
        queue = self.queue
        room = min(room, -(-len(queue) // self.wanted_connections))
        if len(queue) <= room:
            taken = list(queue)
            queue.clear()
        else:
            taken = [queue.popleft() for _ in range(room)]
        idle = not taken and not connection.inflight and self.unfinished
        if idle and connection not in self.idle:
            self.idle.append(connection)  # reads wait on their backoff: woken by `requeue`
        return taken

    def complete(self, read: Read, result: bytes | Exception) -> None:
        self.results[read.key] = result
        self.unfinished -= 1
        if self.unfinished == 0 and not self.finished.done():
            self.finished.set_result(None)

    def retry(self, read: Read, error: BaseException) -> None:
        attempts = self.attempts.get(read.key, 0) + 1
        self.attempts[read.key] = attempts
        if attempts >= MAX_ATTEMPTS:
            self.fail(
                S3Unavailable(
                    f"reading {read.key!r} from {self.endpoint.host_header} failed "
                    f"{attempts} times, last: {error}"
                )
            )
            return
        self.loop.call_later(backoff(attempts), self._requeue, read)

    def _requeue(self, read: Read) -> None:
        if self.finished.done():
            return
        self.queue.append(read)
        if self.idle:
            self.idle.pop().send_more()
        else:
            self._top_up()

    def resend(self, reads: Sequence[Read]) -> None:
        """Reads sent but never answered (the connection closed first): sent again at once,
        without counting an attempt, since the server did not refuse them."""
        if self.finished.done() or not reads:
            return
        self.queue.extendleft(reversed(reads))
        while self.idle and self.queue:
            self.idle.pop().send_more()
        self._top_up()

    def pipelining_failed(self) -> None:
        """A connection was lost with several requests in flight: perhaps something between
        here and S3 does not take pipelined requests. One at a time from now on."""
        self.depth = 1

    def fail(self, error: BaseException) -> None:
        if not self.finished.done():
            self.failure = error
            self.finished.set_result(None)

    def _watch(self) -> None:
        """Abort connections whose request has waited too long (their read is retried)."""
        now = time.monotonic()
        for connection in list(self.open):
            if connection.inflight and now - connection.sent_at > REQUEST_TIMEOUT_S:
                connection.lost(TimeoutError(f"no answer within {REQUEST_TIMEOUT_S:.0f} s"))
        if not self.finished.done():
            self.loop.call_later(1.0, self._watch)

    def request(self, read: Read) -> bytes:
        extra = f"Range: bytes=0-{read.length - 1}\r\n" if read.length is not None else ""
        return get_request(self.endpoint, self.signer, self.endpoint.path(read.key), extra=extra)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends reads (several at once when pipelining), parses their
    answers in order, and tops the pipeline up once half of it is answered."""

    def __init__(self, batch: _Batch) -> None:
        self.batch = batch
        self.transport: asyncio.Transport | None = None
        self.inflight: deque[Read] = deque()
        self.sent_at = 0.0  # when the oldest unanswered request was sent, or last answered
        self.response = HttpResponse()

    # -- asyncio's callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.batch.opened(self)
        self.send_more()

    def data_received(self, data: bytes) -> None:
        if not self.inflight:
            self.abort()  # nothing was asked: the server is not speaking HTTP to us
            return
        response = self.response
        try:
            done = response.feed(data)
            while done:
                if not self._answered(response):
                    return  # the server closes this connection
                response = self.response = HttpResponse(response.rest())
                if not response.buffer:
                    break
                if not self.inflight:
                    raise BadResponse("an answer to a request that was not sent")
                done = response.feed(b"")
        except BadResponse as exc:
            self.lost(exc)
            return
        if len(self.inflight) <= self.batch.depth // 2:
            self.send_more()

    def eof_received(self) -> bool | None:
        if self.inflight and self.response.feed_eof():
            self._answered(self.response)
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.inflight:
            self.lost(exc or ConnectionResetError("the server closed the connection"))
        self.batch.connection_closed(self)

    # -- requests ----------------------------------------------------------------------------

    def send_more(self) -> None:
        """Fill the pipeline up to the batch's depth, in one write."""
        if self.transport is None:
            return
        batch = self.batch
        reads = batch.next_reads(self, batch.depth - len(self.inflight))
        if not reads:
            if not self.inflight and not batch.unfinished:
                self.close()
            return
        if not self.inflight:
            self.sent_at = time.monotonic()
        self.inflight.extend(reads)
        if len(reads) == 1:
            self.transport.write(batch.request(reads[0]))
        else:
            self.transport.write(b"".join([batch.request(read) for read in reads]))

    def _answered(self, response: HttpResponse) -> bool:
        """Hand the oldest read its answer; False once the connection is closing."""
        read = self.inflight.popleft()
        self.sent_at = time.monotonic()
        if 500 <= response.status < 600:
            self.batch.retry(read, S3ReadError(read.key, response.status, *response.error()))
        elif response.status in (200, 206):
            self.batch.complete(read, response.body())
        else:
            self.batch.complete(read, S3ReadError(read.key, response.status, *response.error()))
        if response.keep_alive:
            return True
        unanswered = list(self.inflight)
        self.inflight.clear()
        self.close()
        self.batch.resend(unanswered)
        return False

    def lost(self, exc: BaseException) -> None:
        """The connection failed with reads in flight: the oldest is retried (it counts as an
        attempt), the others sent again; this connection is dropped."""
        inflight = list(self.inflight)
        self.inflight.clear()
        if inflight:
            if len(inflight) > 1:
                self.batch.pipelining_failed()
            self.batch.retry(inflight[0], exc)
            self.batch.resend(inflight[1:])
        self.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class BadResponse(Exception):
    pass


class HttpResponse:
    """An HTTP/1.1 response being received: head, then a body by length, chunks or EOF."""

    __slots__ = ("buffer", "chunks", "end", "keep_alive", "length", "mode", "status")

    def __init__(self, buffer: bytearray | None = None) -> None:
        # Bytes already received for it: what followed the previous answer on the connection.
        self.buffer = bytearray() if buffer is None else buffer
        self.end = 0  # once complete: where in `buffer` the next answer starts
        self.chunks: list[bytes] = []
        self.status = 0
        self.length = 0
        # "head", then "length", "chunked" or "eof"; "chunks done" or "done" (eof) once complete
        self.mode = "head"
        self.keep_alive = True

    def feed(self, data: bytes) -> bool:
        """Take received bytes; True once the response is complete."""
        self.buffer += data
        if self.mode == "head" and not self._head():
            return False
        if self.mode == "length":
            self.end = self.length
            return len(self.buffer) >= self.length
        if self.mode == "chunked":
            return self._chunks()
        return False  # "eof": complete when the server closes

    def rest(self) -> bytearray:
        """Once complete: the bytes received after it, the start of the next answer."""
        del self.buffer[: self.end]
        rest, self.buffer = self.buffer, bytearray()
        return rest

    def feed_eof(self) -> bool:
        """The server closed: True if that completes the response (a body read to EOF)."""
        if self.mode == "eof":
            self.mode, self.keep_alive = "done", False
            return True
        return False

    def body(self) -> bytes:
        if self.mode == "length":
            return bytes(self.buffer[: self.length])
        if self.mode == "chunks done":
            return b"".join(self.chunks)
        return bytes(self.buffer)  # read to the connection's end

    def error(self) -> tuple[str, str]:
        """S3's error code and message from an error document (or the bare status)."""
        text = self.body().decode("utf-8", "replace")
        return xml_field(text, "Code") or f"HTTP{self.status}", xml_field(text, "Message")

    def _head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise BadResponse("response head too large")
            return False
        head = bytes(self.buffer[:end]).lower()
        del self.buffer[: end + 4]
        if not head.startswith(b"http/1.") or len(head) < 12 or not head[9:12].isdigit():
            raise BadResponse(f"not an HTTP response: {head[:40]!r}")
        self.status = int(head[9:12])
        if 100 <= self.status < 200:  # 100 Continue and friends: the real answer follows
            return self._head()
        connection = _header(head, b"connection")
        self.keep_alive = (
            connection != b"close" if head.startswith(b"http/1.1") else connection == b"keep-alive"
        )
        if b"chunked" in _header(head, b"transfer-encoding"):
            self.mode = "chunked"
        elif (length := _header(head, b"content-length")) and length.isdigit():
            self.mode, self.length = "length", int(length)
        elif self.status in (204, 304):
            self.mode, self.length = "length", 0
        else:
            self.mode, self.keep_alive = "eof", False
        return True

    def _chunks(self) -> bool:
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return False
            try:
                size = int(bytes(buffer[:line_end]).split(b";", 1)[0], 16)
            except ValueError:
                raise BadResponse("malformed chunk size") from None
            if size == 0:  # the last chunk, then optional trailers and an empty line
                end = buffer.find(b"\r\n\r\n", line_end)
                if end < 0:
                    return False
                self.mode, self.end = "chunks done", end + 4
                return True
            if len(buffer) < line_end + 2 + size + 2:
                return False
            self.chunks.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
            del buffer[: line_end + 2 + size + 2]


def get_request(
    endpoint: Endpoint, signer: SigV4Signer | None, path: str, query: str = "", extra: str = ""
) -> bytes:
    """A GET of `path` (URI-encoded) with `query` (canonical, see sigv4.canonical_query), signed
    when there is a signer, with `extra` header lines (each ending in CRLF)."""
    host = endpoint.host_header
    head = f"Host: {host}\r\n" if signer is None else signer.header_lines(host, path, query=query)
    target = f"{path}?{query}" if query else path
    return f"GET {target} HTTP/1.1\r\n{head}{extra}\r\n".encode()


def _header(head: bytes, name: bytes) -> bytes:
    """A header's value from a lowered response head ("" when absent)."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return b""
    start = at + len(name) + 3
    stop = head.find(b"\r\n", start)
    return head[start : stop if stop >= 0 else len(head)].strip()


def xml_field(text: str, tag: str) -> str:
    start = text.find(f"<{tag}>")
    stop = text.find(f"</{tag}>", start)
    return text[start + len(tag) + 2 : stop] if start >= 0 and stop > start else ""


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): doubling, with jitter."""
    return BASE_BACKOFF_S * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
