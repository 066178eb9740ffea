"""AWS Signature Version 4 for S3 GETs, the only requests `s3_get` and `s3_list` make.

Kept to what a GET with no body needs: the canonical request signs its query string, `host`,
`x-amz-content-sha256` (the empty body's hash) and `x-amz-date` (and `x-amz-security-token`
for temporary credentials). The signing key depends only on the day, so it is derived once a
day instead of four HMACs per request; a test checks every signature against botocore's.

The per-request HMAC is computed from copies of the key's two padded SHA-256 states: 1.9 µs
a request here, against 4.6 µs for OpenSSL's one-shot `hmac.digest`, which also gives up the
GIL on every call (the GET loop must then win it back from the threads planning folders).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class SigV4Signer:
    access_key_id: str
    secret_access_key: str
    region: str
    session_token: str | None = None
    service: str = "s3"
    _day: str = field(default="", init=False, repr=False)
    _inner: hashlib._Hash | None = field(default=None, init=False, repr=False)
    _outer: hashlib._Hash | None = field(default=None, init=False, repr=False)
    _scope: str = field(default="", init=False, repr=False)
    _second: int = field(default=-1, init=False, repr=False)
    _amz_date: str = field(default="", init=False, repr=False)
    _host: str = field(default="", init=False, repr=False)
    _canonical_tail: str = field(default="", init=False, repr=False)
    _to_sign_head: str = field(default="", init=False, repr=False)
    _lines_head: str = field(default="", init=False, repr=False)

    @property
    def signed_headers(self) -> str:
        names = "host;x-amz-content-sha256;x-amz-date"
        return names + ";x-amz-security-token" if self.session_token else names

    def header_lines(self, host: str, path: str, now: float | None = None, query: str = "") -> str:
        """The request's `Host` and signature header lines, each ending in CRLF, for a GET of
        `path` (already URI-encoded as sent) to `host` (with its port when not the scheme's
        default, exactly as sent in the Host header), with `query` as `canonical_query`
        made it (and sent exactly so)."""
        second = int(time.time() if now is None else now)
        if second != self._second or host != self._host:
            self._prepare(host, second)
        canonical = f"GET\n{path}\n{query}\n{self._canonical_tail}"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return f"{self._lines_head}{self._hmac((self._to_sign_head + digest).encode())}\r\n"

    def _prepare(self, host: str, second: int) -> None:
        """What every request to `host` within `second` shares: the canonical request after
        its query, the string to sign before its hash, the header lines before the signature
        (formatted once a second and host: a GET costs ~16 µs of client CPU in all)."""
        amz_date = self._date(second)
        token = self.session_token
        self._host = host
        self._canonical_tail = (
            f"host:{host}\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{amz_date}\n"
            + (f"x-amz-security-token:{token}\n" if token else "")
            + f"\n{self.signed_headers}\n{EMPTY_SHA256}"
        )
        self._to_sign_head = f"AWS4-HMAC-SHA256\n{amz_date}\n{self._scope}\n"
        self._lines_head = (
            f"Host: {host}\r\n"
            f"x-amz-content-sha256: {EMPTY_SHA256}\r\n"
            f"x-amz-date: {amz_date}\r\n"
            + (f"x-amz-security-token: {token}\r\n" if token else "")
            + f"Authorization: AWS4-HMAC-SHA256 Credential={self.access_key_id}/{self._scope}, "
            f"SignedHeaders={self.signed_headers}, Signature="
        )

    def _date(self, second: int) -> str:
        """x-amz-date for `second`, formatted once a second; the day's key derived once a day."""
        if second != self._second:
            self._second = second
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._ensure_key(self._amz_date[:8])
        return self._amz_date

    def _ensure_key(self, day: str) -> None:
        if day == self._day:
            return
        key = hmac.digest(f"AWS4{self.secret_access_key}".encode(), day.encode(), "sha256")
        for part in (self.region, self.service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        # HMAC (RFC 2104) with a 32-byte key: SHA-256 over key ^ opad, then key ^ ipad, padded
        # to the 64-byte block; the two states after the pads are all a signature needs.
        block = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self._day = day
        self._scope = f"{day}/{self.region}/{self.service}/aws4_request"

    def _hmac(self, message: bytes) -> str:
        """HMAC-SHA256 of `message` under the day's signing key, as hex."""
        assert self._inner is not None and self._outer is not None
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def canonical_query(params: Mapping[str, str]) -> str:
    """A query string in SigV4's canonical form: names sorted, names and values with every byte
    but the unreserved ones percent-encoded. S3 accepts it as sent, so it is sent as signed."""
    return "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(params.items())
    )
