"""S3-compatible storage, read-only: the operations the importer needs, on one bucket.

Listing (`s3_listing`, `s3_ranges`), sidecar GETs and streamed hashing (`s3_reads`) go through
obstore; botocore checks the answers obstore cannot (see `s3_connection`). Failures come out
sorted by kind (`s3_errors`): a setting to fix raises StorageError, an outage S3Unavailable,
and a listed object that cannot be read as listed is that object's result alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import obstore
import pyarrow as pa

from media_import.core import s3_reads
from media_import.core.s3_connection import (
    S3Config,
    StorageError,
    botocore_client,
    no_credentials_message,
    open_store,
)
from media_import.core.s3_errors import (
    BodyMismatch,
    ObjectGone,
    ObjectReadError,
    S3Unavailable,
    raise_for_run,
    setting_message,
)
from media_import.core.s3_listing import SCHEMA, ListingNotTrusted, PageReader
from media_import.core.s3_ranges import list_in_ranges
from media_import.core.s3_reads import RangeRead

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LIST_CONCURRENCY",
    "LIST_PAGE_SIZE",
    "SCHEMA",
    "BodyMismatch",
    "Bucket",
    "ListingNotTrusted",
    "ObjectGone",
    "ObjectInfo",
    "ObjectReadError",
    "RangeRead",
    "S3Config",
    "S3Unavailable",
    "StorageError",
    "describe_storage_error",
    "no_credentials_message",
]

# GETs in flight in each planning process, which reads one folder (one prefix) at a time.
# Sidecars are small, so against a distant endpoint latency, not bandwidth, bounds the GETs
# a second: 160 at ~30 ms a GET are ~5.3k a second, under the 5,500 GETs/s per prefix past
# which S3 answers 503 SlowDown. S3_CONCURRENCY sets it.
DEFAULT_CONCURRENCY = 160
# Listing pages in flight for one folder's listing (S3_LIST_CONCURRENCY).
DEFAULT_LIST_CONCURRENCY = 16
LIST_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime


class Bucket:
    """The read operations the importer needs, on one bucket."""

    def __init__(
        self,
        config: S3Config,
        concurrency: int = DEFAULT_CONCURRENCY,
        page_size: int = LIST_PAGE_SIZE,
        list_concurrency: int = DEFAULT_LIST_CONCURRENCY,
    ) -> None:
        self.config = config
        self.name = config.bucket
        self.concurrency = concurrency
        # Keys per batch handed on by `list_batches` (S3's own pages hold up to 1000).
        self.page_size = page_size
        self.list_concurrency = list_concurrency

    @cached_property
    def store(self) -> Any:
        """obstore's client (built on first use: it resolves the credentials)."""
        return open_store(self.config, self.concurrency)

    @cached_property
    def _pages(self) -> PageReader:
        return PageReader(self.config, self.store, self._boto)

    def _boto(self) -> Any:
        return self._botocore

    @cached_property
    def _botocore(self) -> Any:
        return botocore_client(self.config)

    # -- listing -----------------------------------------------------------------------------

    def list_batches(
        self, prefix: str | None = None, start_after: str | None = None, until: str | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The objects in folder `prefix` (all of the bucket: None) after key `start_after`, in
        S3's UTF-8 byte order, as Arrow record batches of SCHEMA (key, size, etag without its
        quotes, last_modified), one page after another. `until`: the caller stops at that key,
        so no page past the one reaching it is asked for (pages may go beyond it)."""
        folder = _folder(prefix)
        after = start_after or ""
        while True:
            page = self._pages.page(folder, after)
            yield from _batches(page.batch, self.page_size)
            last = page.last_key
            if page.last or last is None or (until is not None and last >= until):
                return
            after = last

    def list_folder(self, prefix: str, bounds: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """The same listing as `list_batches(prefix)`, its key ranges fetched in parallel: cut
        at `bounds` (keys of the folder, e.g. the ends of its previous listing's ranges) and
        wherever the first pages show more to come (see s3_ranges)."""
        folder = _folder(prefix)
        pages = list_in_ranges(
            lambda after: self._pages.page(folder, after), "", bounds, self.list_concurrency
        )
        for batch in pages:
            yield from _batches(batch, self.page_size)

    def list_pages(
        self, prefix: str | None = None, start_after: str | None = None
    ) -> Iterator[list[ObjectInfo]]:
        """The same listing as `list_batches`, as ObjectInfo rows."""
        for batch in self.list_batches(prefix, start_after):
            columns = [batch.column(name).to_pylist() for name in SCHEMA.names]
            yield [ObjectInfo(*row) for row in zip(*columns, strict=True)]

    def top_level_folders(self) -> list[str]:
        """The bucket's top-level folders (common prefixes), without the trailing slash."""
        return self._pages.folders()

    # -- reads -------------------------------------------------------------------------------

    def read_many(self, reads: Sequence[RangeRead]) -> dict[str, bytes | Exception]:
        """Fetch many objects (or their first bytes) concurrently. A listed object that cannot
        be read as listed gives its ObjectReadError (one unreadable sidecar rejects one asset);
        a failure of the credentials, the bucket or the endpoint raises."""
        return s3_reads.read_many(self.store, self.config, reads, self.concurrency)

    def md5_many(self, reads: Sequence[RangeRead]) -> dict[str, str | Exception]:
        """MD5 of whole objects, streamed (streaming copies can be large)."""
        return s3_reads.md5_many(self.store, self.config, reads, max(1, self.concurrency // 16))

    def check_reachable(self) -> None:
        """One listing through each client, turning misconfigurations into one clear message:
        StorageError for what a setting can cause, S3Unavailable for an outage that outlasted
        the clients' retries."""
        self._pages.page("__media_import_probe__/", "")
        try:
            next(obstore.list(self.store, "__media_import_probe__", chunk_size=1), None)
        except Exception as exc:
            raise_for_run(self.config, exc)
            raise StorageError(describe_storage_error(self.config, exc)) from None


def describe_storage_error(config: S3Config, exc: BaseException) -> str:
    """One line for an S3 failure, naming the setting to check where a setting can cause it."""
    if isinstance(exc, StorageError | S3Unavailable):
        return str(exc)
    message = setting_message(config, exc)
    if message is not None:
        return message
    text = str(exc).strip()
    first_line = text.splitlines()[0][:300] if text else type(exc).__name__
    return f"cannot read bucket {config.bucket!r} at {config.where}: {first_line}"


def _folder(prefix: str | None) -> str:
    # A prefix is a folder: "BRD" lists "BRD/..." and not "BRD-old/...".
    return f"{prefix.rstrip('/')}/" if prefix else ""


def _batches(batch: pa.RecordBatch, size: int) -> Iterator[pa.RecordBatch]:
    if not batch.num_rows:
        return
    if size >= batch.num_rows:
        yield batch
        return
    for start in range(0, batch.num_rows, size):
        yield batch.slice(start, size)
