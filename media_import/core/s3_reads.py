"""Many small GETs (the sidecars) and a few streamed ones (objects to hash), each pinned to
the version that was listed and checked against it.

Sidecar GETs are obstore's async calls on one event loop (uvloop), a fixed number of them in
flight: per GET that costs less client CPU than its blocking calls on as many threads, and
the loop waits on the network without a thread per request (see docs/performance.md).

Pinned and checked: a whole read of an object whose ETag is a plain MD5 is asked for as the
listed number of bytes and its MD5 compared with the ETag; any other read carries
`If-Match: <listed ETag>`, so S3 answers 412 rather than another version's bytes, and its
length is compared with the listing. A body that does not match is read again, then is that
object's `BodyMismatch`. A 404 or 412 (deleted or overwritten since the listing) is its
`ObjectGone`. Failures a setting causes or an outage (after obstore's retries) are raised
for the whole call: they must fail or retry the run, never reject assets.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import obstore

from media_import.core.checksums import plain_md5_etag
from media_import.core.s3_connection import S3Config
from media_import.core.s3_errors import (
    BodyMismatch,
    ObjectGone,
    ObjectReadError,
    is_object_answer,
    raise_for_run,
    status_and_code,
)

BODY_ATTEMPTS = 3  # reads of a body that does not match its listing before giving up on it
RETRY_WAIT_S = 0.2
STREAM_CHUNK = 1 << 20


@dataclass(slots=True)  # not frozen: one per sidecar read (see core.assembly.Candidate)
class RangeRead:
    """A read of the first `length` bytes of `key` (None: the whole object), as listed with
    `size` bytes and `etag` (None: not checked)."""

    key: str
    length: int | None = None
    size: int | None = None
    etag: str | None = None


def read_many(
    store: Any, config: S3Config, reads: Sequence[RangeRead], concurrency: int
) -> dict[str, bytes | Exception]:
    """Each read's body, or the ObjectReadError of an object that cannot be read as listed."""
    if not reads:
        return {}
    return _run(_read_all(store, config, reads, max(1, min(concurrency, len(reads)))))


def _run(work: Any) -> dict[str, bytes | Exception]:
    try:
        import uvloop
    except ImportError:  # asyncio's own loop works too, at more CPU a GET
        return asyncio.run(work)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)


async def _read_all(
    store: Any, config: S3Config, reads: Sequence[RangeRead], workers: int
) -> dict[str, bytes | Exception]:
    results: dict[str, bytes | Exception] = {}
    queue = iter(reads)

    async def worker() -> None:
        for read in queue:
            results[read.key] = await _read(store, config, read)

    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return results


async def _read(store: Any, config: S3Config, read: RangeRead) -> bytes | Exception:
    attempt = 0
    while True:
        attempt += 1
        try:
            body = await _get(store, read)
        except Exception as exc:
            return object_failure(config, read.key, exc)
        problem = mismatch(read, body)
        if problem is None:
            return body
        if attempt >= BODY_ATTEMPTS:
            return await _changed(store, config, read) or BodyMismatch(
                read.key, f"{problem} ({attempt} reads)"
            )
        await asyncio.sleep(RETRY_WAIT_S * attempt)


async def _changed(store: Any, config: S3Config, read: RangeRead) -> ObjectReadError | None:
    """ObjectGone when the object is no longer the listed version (the cause of a mismatch)."""
    try:
        meta = await obstore.head_async(store, read.key)
    except Exception as exc:
        return object_failure(config, read.key, exc)
    etag = (meta.get("e_tag") or "").strip('"')
    if read.etag and etag != read.etag:
        return ObjectGone(read.key, "overwritten since it was listed")
    return None


async def _get(store: Any, read: RangeRead) -> bytes:
    md5 = plain_md5_etag(read.etag)
    if read.length is None and md5 and read.size:
        # The MD5 pins these bytes to the listed version: no If-Match needed (a cheaper call).
        return bytes(await obstore.get_range_async(store, read.key, start=0, length=read.size))
    options: dict[str, Any] = {}
    if read.length is not None:
        options["range"] = (0, read.length)
    if read.etag:
        options["if_match"] = f'"{read.etag}"'
    result = await obstore.get_async(store, read.key, options=options or None)
    return bytes(await result.bytes_async())


def mismatch(read: RangeRead, body: bytes) -> str | None:
    """Why `body` is not what the listing promised, or None."""
    if read.size is None:
        return None
    expected = read.size if read.length is None else min(read.length, read.size)
    if len(body) != expected:
        return f"read {len(body)} bytes where the listing promised {expected}"
    md5 = plain_md5_etag(read.etag)
    if read.length is None and md5:
        actual = hashlib.md5(body, usedforsecurity=False).hexdigest()
        if actual != md5:
            return f"the bytes read have MD5 {actual}, the listed ETag is {md5}"
    return None


def object_failure(config: S3Config, key: str, exc: Exception) -> ObjectReadError:
    """What a failed read means for its object; raises when it means more than that."""
    if is_object_answer(exc):
        status, code = status_and_code(exc)
        if status == 412 or code == "PreconditionFailed" or "precondition" in str(exc).lower():
            return ObjectGone(key, "overwritten since it was listed")
        if status == 404 or code == "NoSuchKey" or isinstance(exc, FileNotFoundError):
            return ObjectGone(key, "deleted since it was listed")
        return ObjectReadError(key, f"S3 refused to read it ({code or status})")
    raise_for_run(config, exc)
    status, code = status_and_code(exc)
    if status is not None and 400 <= status < 500:
        return ObjectReadError(key, f"S3 refused to read it ({code or status})")
    raise exc


# -- whole objects, streamed and hashed --------------------------------------------------------


def md5_many(
    store: Any, config: S3Config, reads: Sequence[RangeRead], threads: int
) -> dict[str, str | Exception]:
    """MD5 of whole objects, streamed (streaming copies can be large), pinned like reads."""
    if not reads:
        return {}

    def one(read: RangeRead) -> tuple[str, str | Exception]:
        return read.key, _md5_one(store, config, read)

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(reads)))) as pool:
        return dict(pool.map(one, reads))


def _md5_one(store: Any, config: S3Config, read: RangeRead) -> str | Exception:
    for attempt in range(1, BODY_ATTEMPTS + 1):
        digest, length = hashlib.md5(usedforsecurity=False), 0
        options = {"if_match": f'"{read.etag}"'} if read.etag else None
        try:
            for chunk in obstore.get(store, read.key, options=options).stream(STREAM_CHUNK):
                digest.update(chunk)
                length += len(chunk)
        except Exception as exc:
            return object_failure(config, read.key, exc)
        if read.size is None or length == read.size:
            return digest.hexdigest()
        if attempt == BODY_ATTEMPTS:
            return BodyMismatch(
                read.key,
                f"read {length} bytes where the listing promised {read.size} ({attempt} reads)",
            )
    raise AssertionError("unreachable")
