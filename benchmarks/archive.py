"""A deterministic synthetic archive for the benchmarks, at any size up to millions of objects.

Nothing is stored: every key follows from the asset's index and every body from its key, so a
1M-object archive costs no memory and the same spec always yields the same bytes. The shapes
are the importer's real ones (see ``media_import/samples``): keys valid under the default rules,
ffprobe sidecars its parser accepts, md5sum files that list the streaming copy's true MD5 and
real PDFs, so a benchmark run imports every asset with no rejection and no deferral.

Layout: asset ``i`` lives in folder ``i % folders``; within its folder its running number ``j``
picks the code's prefix (``j % 4``: VO, VC, AO, AC) and number (a seeded start + ``j // 4``).
Growing an archive therefore only appends assets, which `extra_keys` uses to hand out the keys
a grown archive would add.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["FOLDER_TYPES", "ArchiveSpec"]

# Carrier types, each its own top-level folder (folder == code type, which the default rules
# accept; FIL is left out because the default rules map folder FILE to it).
FOLDER_TYPES: tuple[str, ...] = (
    "BRD", "VHS", "CAS", "DVC", "BTC", "U32", "DIG", "REE",
    "DAT", "MDC", "LTO", "MIN", "DVD", "HI8", "SVH", "U16",
)  # fmt: skip
# The order assets are dealt to prefixes; listing order is the sorted one.
PREFIXES: tuple[str, ...] = ("VO", "VC", "AO", "AC")
# Numbers start at a seeded offset below this, so every prefix has >= 99,000 numbers left.
MAX_START = 1000
MAX_NUMBER = 99_999
FILES_PER_ASSET = 4
STREAMING_EXT = {"V": ".mp4", "A": ".mp3"}
# The four files of a code in S3 order: ".json" < ".md5" < ".mp3"/".mp4" < ".pdf".
_SIDE_EXTS = (".json", ".md5")
_KEY_RE = re.compile(
    r"^(?P<folder>[A-Z0-9]{3})/(?P<code>[VA][OC]-[A-Z0-9]{3}-[0-9]{5})(?P<ext>\.[a-z0-9]+)$"
)


@dataclass(frozen=True)
class ArchiveSpec:
    """`objects` keys (rounded down to whole assets of 4 files) over `folders` folders."""

    objects: int
    seed: int = 1
    folders: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.folders <= len(FOLDER_TYPES):
            raise ValueError(f"folders must be 1..{len(FOLDER_TYPES)}, got {self.folders}")
        if self.objects < 0:
            raise ValueError(f"objects must be >= 0, got {self.objects}")
        object.__setattr__(self, "objects", self.objects - self.objects % FILES_PER_ASSET)
        capacity = self.folders * len(PREFIXES) * (MAX_NUMBER - MAX_START + 1)
        if self.assets > capacity:
            raise ValueError(f"at most {capacity} assets fit in {self.folders} folders")

    @property
    def assets(self) -> int:
        return self.objects // FILES_PER_ASSET

    def __len__(self) -> int:
        return self.objects

    def __iter__(self) -> Iterator[str]:
        """The keys, as `keys()`: a spec is the collection of its keys."""
        return self.keys()

    def folder_names(self) -> list[str]:
        """The top-level folders holding at least one object, sorted. (Not `folders()`: that
        name is the dataclass field giving how many folders assets are dealt to.)"""
        return sorted(f for i, f in enumerate(self._dealt()) if self._in_folder(i) > 0)

    def _dealt(self) -> tuple[str, ...]:
        """The folders assets are dealt to, in dealing order."""
        return FOLDER_TYPES[: self.folders]

    # -- keys -------------------------------------------------------------------------------

    def keys(self) -> Iterator[str]:
        """Every key, in S3 order (UTF-8 bytes; keys are ASCII, so str order is the same)."""
        for folder in sorted(self._dealt()):
            yield from self.folder_keys(folder)

    def folder_keys(self, folder: str) -> Iterator[str]:
        """The keys of one folder, sorted."""
        index = self._dealt().index(folder)
        for prefix in sorted(PREFIXES):
            start = self.first_number(folder, prefix)
            count = self._in_prefix(index, prefix)
            exts = (*_SIDE_EXTS, STREAMING_EXT[prefix[0]], ".pdf")
            head = f"{folder}/{prefix}-{folder}-"
            for number in range(start, start + count):
                base = f"{head}{number:05d}"
                for ext in exts:
                    yield base + ext

    def extra_keys(self, assets: int) -> list[str]:
        """The keys of `assets` assets the archive does not hold: those a spec with that many
        more assets would add (for "new objects arrived" scenarios), sorted."""
        grown = ArchiveSpec((self.assets + assets) * FILES_PER_ASSET, self.seed, self.folders)
        return [key for key in grown if not self.holds(key)]

    def holds(self, key: str) -> bool:
        """Whether `key` is one of this archive's keys (O(1), from the key's parts)."""
        match = _KEY_RE.match(key)
        if not match or match["folder"] not in self._dealt():
            return False
        code, ext = match["code"], match["ext"]
        prefix, folder, number = code[:2], match["folder"], int(code[7:])
        if code[3:6] != folder or ext not in (*_SIDE_EXTS, STREAMING_EXT[code[0]], ".pdf"):
            return False
        start = self.first_number(folder, prefix)
        count = self._in_prefix(self._dealt().index(folder), prefix)
        return start <= number < start + count

    def first_number(self, folder: str, prefix: str) -> int:
        """The seeded first number of a folder's prefix (numbering does not start at 1 in a
        real archive, and seeds should not all produce the same codes)."""
        digest = _digest(f"{self.seed}:{folder}:{prefix}:start", 4)
        return 1 + int.from_bytes(digest) % MAX_START

    def _in_folder(self, index: int) -> int:
        """How many assets the folder dealt `index`-th holds."""
        base, extra = divmod(self.assets, self.folders)
        return base + (1 if index < extra else 0)

    def _in_prefix(self, index: int, prefix: str) -> int:
        """How many of that folder's assets have codes starting with `prefix`."""
        in_folder = self._in_folder(index)
        base, extra = divmod(in_folder, len(PREFIXES))
        return base + (1 if PREFIXES.index(prefix) < extra else 0)

    # -- bodies -----------------------------------------------------------------------------

    def body(self, key: str) -> bytes:
        """The object's bytes, from the key alone (any well-formed key, held or not)."""
        return _object(self.seed, key)[0]

    def etag(self, key: str) -> str:
        """The MD5 hex of the body: what S3 gives as ETag for a single-part upload."""
        return _object(self.seed, key)[1]

    def size(self, key: str) -> int:
        return len(_object(self.seed, key)[0])

    def items(self) -> Iterator[tuple[str, bytes]]:
        """(key, body) pairs in S3 order, e.g. for `put_many`."""
        for key in self.keys():
            yield key, self.body(key)


def _digest(text: str, size: int) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# Each body is built once even though etag(), size() and body() are separate calls, and an .md5
# body's streaming copy (next in key order) is built for it and found here again. Small on
# purpose: bodies are a few KB, so 1024 of them are ~2 MB.
@lru_cache(maxsize=1024)
def _object(seed: int, key: str) -> tuple[bytes, str]:
    body = _build_body(seed, key)
    return body, _md5(body)


def _build_body(seed: int, key: str) -> bytes:
    match = _KEY_RE.match(key)
    if not match:
        raise ValueError(f"not a synthetic archive key: {key!r}")
    code, ext = match["code"], match["ext"]
    if ext == STREAMING_EXT[code[0]]:
        return _streaming_copy(seed, key, ext)
    if ext == ".json":
        return _ffprobe_json(seed, code)
    if ext == ".md5":
        return _md5sum(seed, match["folder"], code)
    if ext == ".pdf":
        return _qc_pdf(code)
    raise ValueError(f"no body for extension {ext} of {key!r}")


# -- streaming copy ---------------------------------------------------------------------------

# The container's first bytes, so a sniffing tool sees an MP4 (ftyp box) or an MP3 (ID3 tag).
_MAGIC = {
    ".mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2",
    ".mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
}


def _streaming_copy(seed: int, key: str, ext: str) -> bytes:
    noise = _digest(f"{seed}:{key}", 64)
    return _MAGIC[ext] + noise[: 16 + noise[0] % 48]


# -- technical metadata (ffprobe) --------------------------------------------------------------


@dataclass(frozen=True)
class _Master:
    """One master flavour: what its ffprobe document says and how its file is named."""

    name: str
    suffix: str  # the master's file name after the code
    document: dict[str, Any]
    bit_rate: int  # bits per second, for the recorded size
    header: int  # bytes besides the media data


def _disposition(default: int) -> dict[str, int]:
    names = (
        *("default", "dub", "original", "comment", "lyrics", "karaoke", "forced"),
        *("hearing_impaired", "visual_impaired", "clean_effects", "attached_pic"),
        *("timed_thumbnails", "captions", "descriptions", "metadata", "dependent", "still_image"),
    )
    return {name: default if name == "default" else 0 for name in names}


def _video_stream(codec: str, long_name: str, tag: str, profile: str) -> dict[str, Any]:
    return {
        "index": 0,
        "codec_name": codec,
        "codec_long_name": long_name,
        "profile": profile,
        "codec_type": "video",
        "codec_tag_string": tag,
        "width": 1920,
        "height": 1080,
        "coded_width": 1920,
        "coded_height": 1080,
        "has_b_frames": 0,
        "sample_aspect_ratio": "1:1",
        "display_aspect_ratio": "16:9",
        "pix_fmt": "yuv422p10le",
        "field_order": "tt",
        "id": "0x1",
        "r_frame_rate": "25/1",
        "avg_frame_rate": "25/1",
        "time_base": "1/12800",
        "start_pts": 0,
        "start_time": "0.000000",
        "duration_ts": "@@n:video_ts@@",
        "duration": "@@duration@@",
        "nb_frames": "@@frames@@",
        "disposition": _disposition(1),
        "tags": {"language": "und", "handler_name": "VideoHandler", "vendor_id": "appl"},
    }


def _audio_stream(index: int, codec: str, long_name: str, sample_fmt: str) -> dict[str, Any]:
    return {
        "index": index,
        "codec_name": codec,
        "codec_long_name": long_name,
        "codec_type": "audio",
        "sample_fmt": sample_fmt,
        "sample_rate": "48000",
        "channels": 2,
        "channel_layout": "stereo",
        "bits_per_sample": 24 if codec.startswith("pcm") else 0,
        "r_frame_rate": "0/0",
        "avg_frame_rate": "0/0",
        "time_base": "1/48000",
        "start_pts": 0,
        "start_time": "0.000000",
        "duration_ts": "@@n:audio_ts@@",
        "duration": "@@duration@@",
        "disposition": _disposition(1 if index else 0),
    }


def _format(name: str, long_name: str, streams: int, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "filename": "@@filename@@",
        "nb_streams": streams,
        "nb_programs": 0,
        "format_name": name,
        "format_long_name": long_name,
        "start_time": "0.000000",
        "duration": "@@duration@@",
        "size": "@@size@@",
        "bit_rate": "@@bit_rate@@",
        "probe_score": 100,
        "tags": tags,
    }


_ISOBMFF = "mov,mp4,m4a,3gp,3g2,mj2"
_PCM = ("pcm_s24le", "PCM signed 24-bit little-endian", "s32")
_MASTERS: dict[str, tuple[_Master, ...]] = {
    # Video: mostly ProRes in QuickTime (major brand "qt  "), some H.264 in MP4 ("isom"; its
    # name gets a suffix so it cannot clash with the .mp4 streaming copy in the .md5 file).
    "V": (
        _Master(
            "quicktime",
            ".mov",
            {
                "streams": [
                    _video_stream("prores", "Apple ProRes (iCodec Pro)", "apch", "HQ"),
                    _audio_stream(1, *_PCM),
                ],
                "format": _format(
                    _ISOBMFF,
                    "QuickTime / MOV",
                    2,
                    {"major_brand": "qt  ", "minor_version": "512", "compatible_brands": "qt  "},
                ),
            },
            bit_rate=186_000_000,
            header=48_000,
        ),
        _Master(
            "mp4",
            "_master.mp4",
            {
                "streams": [
                    _video_stream("h264", "H.264 / AVC / MPEG-4 AVC", "avc1", "High 4:2:2"),
                    _audio_stream(1, "aac", "AAC (Advanced Audio Coding)", "fltp"),
                ],
                "format": _format(
                    _ISOBMFF,
                    "QuickTime / MOV",
                    2,
                    {
                        "major_brand": "isom",
                        "minor_version": "512",
                        "compatible_brands": "isomiso2avc1mp41",
                    },
                ),
            },
            bit_rate=50_000_000,
            header=32_000,
        ),
    ),
    # Audio: mostly 24-bit/48 kHz WAV, some FLAC.
    "A": (
        _Master(
            "wav",
            ".wav",
            {
                "streams": [_audio_stream(0, *_PCM)],
                "format": _format(
                    "wav", "WAV / WAVE (Waveform Audio)", 1, {"encoder": "Lavf59.27.100"}
                ),
            },
            bit_rate=2_304_000,
            header=44,
        ),
        _Master(
            "flac",
            ".flac",
            {
                "streams": [_audio_stream(0, "flac", "FLAC (Free Lossless Audio Codec)", "s32")],
                "format": _format("flac", "raw FLAC", 1, {"encoder": "Lavf59.27.100"}),
            },
            bit_rate=1_400_000,
            header=8_234,
        ),
    ),
}
_PLACEHOLDER = re.compile(r'"@@n:(\w+)@@"|@@(\w+)@@')


def _template(document: dict[str, Any]) -> tuple[str, ...]:
    """ffprobe's JSON text split around its placeholders: literal, field, literal, ...

    Rendering joins strings (no json.dumps per object), so bodies stay cheap to build even when
    a server computes the ETag of every key in a million-object listing.
    """
    text = json.dumps(document, indent=4) + "\n"
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        parts += [text[last : match.start()], match[1] or match[2]]
        last = match.end()
    return (*parts, text[last:])


_TEMPLATES = {id(m): _template(m.document) for ms in _MASTERS.values() for m in ms}


def _master(seed: int, code: str) -> tuple[_Master, bytes]:
    """The asset's master flavour (3 in 4 the first one) and the digest its numbers come from."""
    digest = _digest(f"{seed}:{code}:master", 16)
    flavours = _MASTERS[code[0]]
    return flavours[0 if digest[0] % 4 else 1], digest


def master_filename(seed: int, code: str) -> str:
    """The master's file name, as its .json records it and its .md5 lists it."""
    return code + _master(seed, code)[0].suffix


def _ffprobe_json(seed: int, code: str) -> bytes:
    master, digest = _master(seed, code)
    # 10 minutes to 2 hours, to the millisecond.
    millis = 600_000 + int.from_bytes(digest[1:5]) % 6_600_000
    seconds = millis / 1000
    values = {
        "filename": code + master.suffix,
        "duration": f"{seconds:.6f}",
        "video_ts": str(millis * 128 // 10),
        "audio_ts": str(millis * 48),
        "frames": str(millis // 40),
        "size": str(master.header + int(master.bit_rate * seconds) // 8),
        "bit_rate": str(master.bit_rate),
    }
    parts = _TEMPLATES[id(master)]
    text = "".join(part if i % 2 == 0 else values[part] for i, part in enumerate(parts))
    return text.encode()


# -- checksums and QC report -------------------------------------------------------------------


def _md5sum(seed: int, folder: str, code: str) -> bytes:
    """md5sum's text mode: the master (not in the bucket: an MD5 recorded at digitisation) and
    the streaming copy, with the copy's true MD5 so the importer's verification passes."""
    master_md5 = _digest(f"{seed}:{code}:master-bytes", 16).hex()
    streaming = code + STREAMING_EXT[code[0]]
    streaming_md5 = _object(seed, f"{folder}/{streaming}")[1]
    text = f"{master_md5}  {master_filename(seed, code)}\n{streaming_md5}  {streaming}\n"
    return text.encode()


_CODE_SLOT = b"XX-XXX-00000"  # every inventory code has this length, so offsets never move


def _pdf_template() -> bytes:
    """A one-page PDF with a valid xref table, built once around a code-sized slot."""
    content = b"BT /F1 14 Tf 56 780 Td (QC report " + _CODE_SLOT + b": PASSED) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


_PDF_HEAD, _PDF_TAIL = _pdf_template().split(_CODE_SLOT)


def _qc_pdf(code: str) -> bytes:
    return _PDF_HEAD + code.encode() + _PDF_TAIL
