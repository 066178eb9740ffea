"""S3-compatible storage, read-only: list once, fetch sidecars concurrently.

Listing goes through `s3_list` (ListObjectsV2 parsed straight into Arrow, about half obstore's
CPU a key) and sidecar GETs, the first import's largest cost, through `s3_get` (an event loop
over keep-alive connections with pipelined requests, about a tenth of obstore's CPU per GET),
both signed with the configured keys or, without them, with the AWS default credential chain
as botocore resolves it (`credentials`: instance profile, SSO, profiles, web identity).
obstore (Rust object_store) streams the MD5s and finds the top-level folders, with the same
credentials. With no credentials at all, every read fails with a message saying where to put
them. botocore's own S3 client is not used: its XML parsing costs ~30x more CPU per key. See
docs/performance.md. The configuration surface is the usual one: endpoint (absent: AWS),
bucket, keys, region.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

import obstore
import pyarrow as pa
from obstore.store import S3Store

from media_import.core import credentials, s3_get, s3_list
from media_import.core.sigv4 import SigV4Signer

T = TypeVar("T")
R = TypeVar("R")

# Connections reading sidecars (threads for obstore's streamed MD5s: a quarter of them).
# Sidecars are small, so latency (not bandwidth) bounds throughput: 128 keep up ~4k GETs/s at
# an AWS-like 30 ms a GET (256 took a 1M first import's phase 2 from 103 s to 60 s against
# the stand-in), which stays under S3's 5,500 GETs/s per prefix, a folder being one: a
# planning process reads one folder at a time. S3_CONCURRENCY sets it.
DEFAULT_CONCURRENCY = s3_get.DEFAULT_CONNECTIONS
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    # GETs pipelined on each connection (s3_get); 1 sends them one at a time.
    pipeline_depth: int = s3_get.DEFAULT_PIPELINE_DEPTH


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime


@dataclass(slots=True)  # not frozen: one per sidecar read (see core.assembly.Candidate)
class RangeRead:
    """A read of the first `length` bytes of `key` (None: the whole object)."""

    key: str
    length: int | None = None


class StorageError(RuntimeError):
    """The bucket could not be reached or read; the message names what to check."""


def open_store(config: S3Config, chain: credentials.Chain | None = None) -> S3Store:
    """An obstore client; `chain`: the default chain's credentials, for a config without keys."""
    options: dict[str, object] = {}
    if config.endpoint_url:
        # A MinIO or local endpoint: path-style requests, plain HTTP allowed for localhost setups.
        options["endpoint"] = config.endpoint_url
        options["virtual_hosted_style_request"] = False
        client_options = {"allow_http": True}
    else:
        client_options = {}
    for name, value in (
        ("region", config.region),
        ("access_key_id", config.access_key_id),
        ("secret_access_key", config.secret_access_key),
        ("session_token", config.session_token),
    ):
        if value:
            options[name] = value
    if chain is not None and chain.credentials is not None and "access_key_id" not in options:
        options["credential_provider"] = credentials.ObstoreCredentials(chain.credentials)
    return S3Store(config.bucket, client_options=client_options, **options)  # type: ignore[arg-type]


class Bucket:
    """The read operations the importer needs, on one bucket."""

    def __init__(
        self,
        config: S3Config,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int = LIST_PAGE_SIZE,
    ) -> None:
        # Without keys, the default chain's credentials (and its region, where the
        # configuration names none) sign the requests.
        self._chain: credentials.Chain | None = None
        if not (config.access_key_id and config.secret_access_key):
            self._chain = credentials.default_chain()
            if not config.region and self._chain.region:
                config = replace(config, region=self._chain.region)
        self.config = config
        self.name = config.bucket
        self.store = open_store(config, self._chain)
        self.concurrency = concurrency
        self.page_size = page_size

    def list_pages(
        self, prefix: str | None = None, start_after: str | None = None
    ) -> Iterator[list[ObjectInfo]]:
        """The same listing as `list_batches`, as ObjectInfo rows."""
        for batch in self.list_batches(prefix, start_after):
            columns = [batch.column(name).to_pylist() for name in s3_list.SCHEMA.names]
            yield [ObjectInfo(*row) for row in zip(*columns, strict=True)]

    def list_batches(
        self,
        prefix: str | None = None,
        start_after: str | None = None,
        until: str | None = None,
        parsing: AbstractContextManager[object] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """The objects in folder `prefix` (all of the bucket: None) after key `start_after`, in
        S3's UTF-8 byte order, as Arrow record batches of s3_list.SCHEMA (key, size, etag,
        last_modified), a page each: memory stays flat, and no Python object per key, so rules
        can run vectorised over a page. `until`: the caller stops at that key, so no page past
        the one reaching it need be asked for (a hint: pages may go beyond it)."""
        # A prefix is a folder: "BRD" lists "BRD/..." and not "BRD-old/...", as obstore does.
        folder = f"{prefix.rstrip('/')}/" if prefix else ""
        yield from s3_list.list_batches(
            self._endpoint(),
            self._require_signer(),
            folder,
            start_after or "",
            self.page_size,
            until,
            parsing,
        )

    def top_level_folders(self) -> list[str]:
        """The bucket's top-level folders (common prefixes), without the trailing slash."""
        result = obstore.list_with_delimiter(self.store)
        return sorted(p.rstrip("/") for p in result["common_prefixes"])

    def read_many(self, reads: Sequence[RangeRead]) -> dict[str, bytes | Exception]:
        """Fetch many objects (or their heads) concurrently. S3's error answers are returned,
        not raised, so one unreadable sidecar rejects one asset instead of the whole folder;
        an endpoint still failing after retries raises (a ConnectionError: worth a retry)."""
        return s3_get.read_many(
            self._endpoint(),
            self._require_signer(),
            reads,
            self.concurrency,
            self.config.pipeline_depth,
        )

    def _endpoint(self) -> s3_get.Endpoint:
        return s3_get.Endpoint.for_bucket(self.name, self.config.endpoint_url, self.config.region)

    def _signer(self) -> SigV4Signer | None:
        """A signer for the configured keys, else for the default chain's credentials as of
        now (one per call: it caches the day's key, and temporary credentials refresh between
        calls); None where neither exists."""
        config = self.config
        region = config.region or "us-east-1"
        if config.access_key_id and config.secret_access_key:
            return SigV4Signer(
                config.access_key_id, config.secret_access_key, region, config.session_token
            )
        if self._chain is None or self._chain.credentials is None:
            return None
        access_key, secret_key, token = credentials.frozen(self._chain.credentials)
        return SigV4Signer(access_key, secret_key, region, token)

    def _require_signer(self) -> SigV4Signer:
        signer = self._signer()
        if signer is None:
            raise StorageError(no_credentials_message(self.config))
        return signer

    def md5_many(self, keys: Sequence[str]) -> dict[str, str | Exception]:
        """MD5 of whole objects, streamed (streaming copies can be large)."""
        return self._concurrently(self._md5_one, keys, lambda k: k, max(1, self.concurrency // 4))

    def _md5_one(self, key: str) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in obstore.get(self.store, key).stream(min_chunk_size=1 << 20):
            digest.update(chunk)
        return digest.hexdigest()

    @staticmethod
    def _concurrently(
        work: Callable[[T], R], items: Sequence[T], key: Callable[[T], str], workers: int
    ) -> dict[str, R | Exception]:
        # Threads, not asyncio: obstore's blocking calls release the GIL while Rust does the
        # request, and skip asyncio's per-request task, future and semaphore bookkeeping,
        # which cost more CPU than the request itself (7k GETs/s against 4k/s here, see
        # docs/performance.md).
        if not items:
            return {}

        def guarded(item: T) -> tuple[str, R | Exception]:
            try:
                return key(item), work(item)
            except Exception as exc:
                return key(item), exc

        with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
            return dict(pool.map(guarded, items))

    def check_reachable(self) -> None:
        """One cheap request, turning the usual misconfigurations into a clear message."""
        self._require_signer()
        try:
            obstore.list_with_delimiter(self.store, prefix="__media_import_probe__/")
        except Exception as exc:
            raise StorageError(describe_storage_error(self.config, exc)) from exc


def no_credentials_message(config: S3Config) -> str:
    return (
        f"no credentials for bucket {config.bucket!r}: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or give the AWS default chain some (AWS_PROFILE, a shared "
        "credentials file, an instance or container role, web identity)"
    )


def describe_storage_error(config: S3Config, exc: Exception) -> str:
    text = str(exc)
    where = config.endpoint_url or "AWS S3"
    lowered = text.lower()
    if "nosuchbucket" in lowered or "bucket does not exist" in lowered or "404" in lowered:
        return f"bucket {config.bucket!r} does not exist at {where} (check BUCKET_NAME)"
    if any(s in lowered for s in ("accessdenied", "403", "invalidaccesskeyid", "signature")):
        which = (
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            if config.access_key_id
            else "the default chain's credentials: AWS_PROFILE, the instance or container role"
        )
        return f"access to bucket {config.bucket!r} at {where} was refused (check {which})"
    if any(s in lowered for s in ("connect", "dns", "timed out", "connection refused")):
        return f"cannot reach the S3 endpoint {where} (check S3_ENDPOINT_URL)"
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"cannot read bucket {config.bucket!r} at {where}: {first_line}"
