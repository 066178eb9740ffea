"""ListObjectsV2 pages as Arrow record batches, trusted only when they are listings.

A page is fetched by obstore (its Rust client parses the XML into Arrow). object_store takes
any 200 answer for a page, though, and cannot represent some keys, so:

* a page that ends a listing (fewer keys than a full page: no continuation) is confirmed by
  botocore, whose answer must be S3's XML with an `IsTruncated`: an HTML login page, a proxy's
  error page or a truncated body is an error, never an empty folder or an early end;
* a page obstore refuses (a key with a control character, an empty or `.`/`..` segment) or
  mangles (it drops a key's trailing `/`, which shows as keys out of order) is read again by
  botocore, with URL-encoded keys, so one odd key never fails its folder's listing.

Keys come out in S3's order (UTF-8 bytes), each once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import obstore
import pyarrow as pa
import pyarrow.compute as pc
from obstore.exceptions import InvalidPathError

from media_import.core.s3_connection import S3Config, StorageError
from media_import.core.s3_errors import raise_for_run, status_and_code

LAST_MODIFIED = pa.timestamp("us", "UTC")
SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("size", pa.int64()),
        ("etag", pa.string()),
        ("last_modified", LAST_MODIFIED),
    ]
)
PAGE_KEYS = 1000  # S3's largest page
# Keys object_store cannot take as a path (nor as a start-after offset).
_NOT_A_PATH = re.compile(r"[\x00-\x1f\x7f]|//|(^|/)\.{1,2}(/|$)|^/|/$")


class ListingNotTrusted(StorageError):
    """The endpoint answered a listing with something that is not a ListObjectsV2 result."""


@dataclass(frozen=True)
class Page:
    """Keys listed after a point, in order; `last`: no key of the prefix lies beyond them
    (confirmed by a checked ListObjectsV2 answer)."""

    batch: pa.RecordBatch
    last: bool

    @property
    def last_key(self) -> str | None:
        return self.batch.column("key")[-1].as_py() if self.batch.num_rows else None


class PageReader:
    """Fetches listing pages of one bucket: obstore first, botocore where it must."""

    def __init__(self, config: S3Config, store: Any, boto: Callable[[], Any]) -> None:
        self.config, self.store, self._boto = config, store, boto

    def page(self, prefix: str, after: str) -> Page:
        """The page of keys under `prefix` (a folder "X/", or "" for the bucket) after `after`."""
        batch = self._obstore_page(prefix, after)
        if batch is None:
            return self._boto_page(prefix, after, PAGE_KEYS)
        if batch.num_rows >= PAGE_KEYS:
            return Page(batch, last=False)
        # obstore saw the end of the listing: confirm it with a checked answer.
        last_key = batch.column("key")[-1].as_py() if batch.num_rows else after
        beyond = self._boto_page(prefix, last_key, 1)
        if not beyond.batch.num_rows:
            return Page(batch, last=True)
        if batch.num_rows:  # a key arrived meanwhile, or obstore's page ended early
            return Page(batch, last=False)
        return self._boto_page(prefix, after, PAGE_KEYS)

    def _obstore_page(self, prefix: str, after: str) -> pa.RecordBatch | None:
        """obstore's page, or None where botocore must read it instead."""
        if after and _NOT_A_PATH.search(after):
            return None
        try:
            stream = obstore.list(
                self.store,
                prefix.rstrip("/") or None,
                offset=after or None,
                chunk_size=PAGE_KEYS,
                return_arrow=True,
            )
            chunk = next(stream, None)
        except InvalidPathError:
            return None
        except Exception as exc:
            raise_for_run(self.config, exc)
            return None  # an answer obstore could not parse: botocore reads it and judges it
        batch = _from_obstore(chunk)
        return batch if _in_order(batch, prefix, after) else None

    def _boto_page(self, prefix: str, after: str, max_keys: int) -> Page:
        """A page through botocore, its answer checked for being a ListObjectsV2 result."""
        args: dict[str, Any] = {"Bucket": self.config.bucket, "MaxKeys": max_keys}
        if prefix:
            args["Prefix"] = prefix
        if after:
            args["StartAfter"] = after
        answer = checked_listing(self.config, lambda: self._boto().list_objects_v2(**args))
        batch = _from_boto(answer.get("Contents", []))
        return Page(batch, last=not answer["IsTruncated"])

    def folders(self) -> list[str]:
        """The bucket's top-level folders (common prefixes), without the trailing slash."""
        found: list[str] = []
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.config.bucket, "Delimiter": "/"}
            if token:
                args["ContinuationToken"] = token
            answer = checked_listing(self.config, lambda a=args: self._boto().list_objects_v2(**a))
            found += [p["Prefix"].rstrip("/") for p in answer.get("CommonPrefixes", [])]
            token = answer.get("NextContinuationToken")
            if not answer["IsTruncated"] or not token:
                return sorted(found)


def checked_listing(config: S3Config, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A botocore ListObjectsV2 answer, if it is one: XML with an `IsTruncated`. Failures
    are sorted as `s3_errors` does; an answer that is not a listing is ListingNotTrusted."""
    from botocore.parsers import ResponseParserError

    try:
        answer = call()
    except ResponseParserError as exc:
        raise ListingNotTrusted(_not_a_listing(config, _first_line(exc))) from None
    except Exception as exc:
        raise_for_run(config, exc)
        status, code = status_and_code(exc)
        raise ListingNotTrusted(
            _not_a_listing(config, f"HTTP {status} {code or ''}".strip())
        ) from exc
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    content_type = headers.get("content-type", "")
    if "IsTruncated" not in answer or (content_type and "xml" not in content_type.lower()):
        raise ListingNotTrusted(_not_a_listing(config, content_type or "no IsTruncated"))
    return answer


def _not_a_listing(config: S3Config, what: str) -> str:
    return (
        f"the S3 endpoint {config.where} answered a listing of bucket {config.bucket!r} with "
        f"something that is not an S3 listing ({what[:120]}): check S3_ENDPOINT_URL (the S3 "
        "API's address, not a console or a proxy's login page)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__


def _from_obstore(chunk: Any) -> pa.RecordBatch:
    if chunk is None:
        return _empty()
    batch = pa.record_batch(chunk)
    etag = batch.column("e_tag")
    return pa.RecordBatch.from_arrays(
        [
            batch.column("path").cast(pa.string()),
            batch.column("size").cast(pa.int64()),
            pc.utf8_trim(etag.cast(pa.string()), '"'),
            batch.column("last_modified").cast(LAST_MODIFIED),
        ],
        schema=SCHEMA,
    )


def _from_boto(contents: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            # botocore asks for URL-encoded keys and decodes them: control characters list too.
            pa.array([c["Key"] for c in contents], pa.string()),
            pa.array([int(c["Size"]) for c in contents], pa.int64()),
            pa.array([str(c.get("ETag", "")).strip('"') or None for c in contents], pa.string()),
            pa.array([c["LastModified"] for c in contents], LAST_MODIFIED),
        ],
        schema=SCHEMA,
    )


def _empty() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in SCHEMA], schema=SCHEMA)


def _in_order(batch: pa.RecordBatch, prefix: str, after: str) -> bool:
    """The keys lie under `prefix`, after `after`, strictly ascending: as S3 lists them."""
    if not batch.num_rows:
        return True
    keys = batch.column("key")
    if after and not keys[0].as_py() > after:
        return False
    if prefix and not pc.all(pc.starts_with(keys, prefix)).as_py():
        return False
    if batch.num_rows > 1:
        ascending = pc.less(keys.slice(0, batch.num_rows - 1), keys.slice(1))
        if not pc.all(ascending).as_py():
            return False
    return True
