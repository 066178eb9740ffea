"""An HTTP server over TCP that answers each request as a test scripts it: what S3 does now and
then (503 SlowDown, dropped connections, chunked bodies, HTTP/1.0 peers) and moto never does."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from media_import.core.s3_get import Endpoint


@dataclass
class Seen:
    requests: list[str]
    connections: int = 0
    pipelined: int = 0  # requests that had arrived before the one ahead of them was answered


Answer = Callable[[str, int], bytes | None]  # (request head, request number) -> bytes to send


@contextmanager
def scripted(answer: Answer, refuse_pipelining: bool = False) -> Iterator[tuple[Endpoint, Seen]]:
    """An HTTP server answering each request with `answer(...)`; None: hang up instead.
    `refuse_pipelining`: answer a request, then hang up, when the next one had already come,
    as a proxy that does not take pipelined requests may."""
    seen = Seen([])
    lock = threading.Lock()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with lock:
                seen.connections += 1
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = self.request.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                pipelined = b"\r\n\r\n" in buffer
                with lock:
                    seen.requests.append(head.decode())
                    number = len(seen.requests)
                    seen.pipelined += pipelined
                reply = answer(head.decode(), number)
                if reply is None:
                    return
                self.request.sendall(reply)
                if pipelined and refuse_pipelining:
                    return
                if b"connection: close" in reply.lower() or reply.startswith(b"HTTP/1.0"):
                    return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        try:
            yield Endpoint.for_bucket("b", f"http://127.0.0.1:{port}", None), seen
        finally:
            server.shutdown()


def ok(body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def slow_down() -> bytes:
    xml = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return f"HTTP/1.1 503 Slow Down\r\nContent-Length: {len(xml)}\r\n\r\n".encode() + xml
