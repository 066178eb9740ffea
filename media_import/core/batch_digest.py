"""A digest of listed objects from their Arrow buffers: which key ranges changed since the last
listing, at the cost of hashing the bytes once.

Discovery digests every key range of every listing to tell the unchanged ones (at 1M
objects, every object of every run). Rendering each object as a text record first (four
casts to strings and two joins, as the seen objects' digest must be, to match PostgreSQL's)
cost more CPU than the listing's own parsing. Here each column is hashed as Arrow holds it:
the keys' and ETags' UTF-8 bytes, their lengths (which delimit them; -1 for a missing ETag),
the sizes and the times as 64-bit integers. Each column has its own hash, fed batch by batch,
so the digest does not depend on how the objects were split into pages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc


class BatchDigest:
    """Fed the listing's batches (key, etag, size, last_modified) in key order."""

    def __init__(self) -> None:
        self._parts = [hashlib.md5(usedforsecurity=False) for _ in range(6)]

    def update(self, batch: pa.RecordBatch) -> None:
        if not batch.num_rows:
            return
        keys, etags = batch.column("key"), batch.column("etag")
        pieces = (
            _string_bytes(keys),
            _values(pc.binary_length(keys)),
            _string_bytes(etags),
            _values(pc.fill_null(pc.binary_length(etags), -1)),
            _values(batch.column("size")),
            _values(batch.column("last_modified")),
        )
        for part, piece in zip(self._parts, pieces, strict=True):
            part.update(piece)

    def hexdigest(self) -> str:
        whole = hashlib.md5(usedforsecurity=False)
        for part in self._parts:
            whole.update(part.digest())
        return whole.hexdigest()


def batches_digest(batches: Iterable[pa.RecordBatch]) -> str:
    digest = BatchDigest()
    for batch in batches:
        digest.update(batch)
    return digest.hexdigest()


def _values(array: pa.Array) -> memoryview:
    """A fixed-width array's values, as bytes (a slice's own only)."""
    width = array.type.bit_width // 8
    data = memoryview(array.buffers()[1])  # type: ignore[arg-type]
    return data[array.offset * width : (array.offset + len(array)) * width]


def _string_bytes(array: pa.Array) -> memoryview:
    """A string array's UTF-8 bytes, all values' in a row (a slice's own only)."""
    _, offsets, data = array.buffers()
    if data is None:  # all values empty or missing
        return memoryview(b"")
    ends = memoryview(offsets).cast("q" if pa.types.is_large_string(array.type) else "i")
    return memoryview(data)[ends[array.offset] : ends[array.offset + len(array)]]
