"""A small, realistic sample bucket built from the committed real samples (no S3 calls).

Every object is either part of a valid asset or demonstrates one defect the importer must catch;
its ``description`` says which (``"valid: ..."`` or ``"defect <slug>: ..."``, slugs in
``DEFECTS``). The same seed always yields the same objects, byte for byte.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEFECTS",
    "SampleObject",
    "build_sample_archive",
    "load_manifest",
    "sample_files_dir",
]

# What each defect slug in a description means.
DEFECTS: dict[str, str] = {
    "bad-inventory-code": "file name does not start with a valid 12-character inventory code",
    "folder-type-mismatch": "the code's type segment does not match its top-level folder",
    "video-code-audio-streaming-copy": "a V code whose streaming copy is .mp3 instead of .mp4",
    "audio-code-video-master": "an A code whose master (per its .json) has a video stream",
    "incomplete-asset": "streaming copy without its .json sidecar (nor .md5/.pdf)",
    "checksum-mismatch": "the .md5 lists a wrong hash for the streaming copy in the bucket",
    "unreadable-json": "the .json sidecar is not JSON (truncated upload)",
    "unrecognised-json": "the .json sidecar is JSON but not ffprobe/mediainfo output",
    "unreadable-md5": "the .md5 sidecar is not in md5sum format",
    "not-a-pdf": "the .pdf QC report is not a PDF",
    "ignored-extension": "an extension the importer does not handle",
    "excluded-folder": "a file in a folder the importer must skip",
}

# (folder, code type, number of valid V assets, number of valid A assets)
_FOLDERS: tuple[tuple[str, str, int, int], ...] = (
    ("BRD", "BRD", 6, 0),
    ("DVD", "DVD", 5, 0),
    ("VHS", "VHS", 5, 0),
    ("CAS", "CAS", 0, 5),
    ("DAT", "DAT", 0, 5),
    # FILE/ holds born-digital files whose codes carry type FIL: the importer's folder rules
    # must map FILE -> FIL.
    ("FILE", "FIL", 2, 2),
)
_TOOLS = ("ffprobe", "mediainfo")
_STREAMING_EXT = {"V": "mp4", "A": "mp3"}
_STREAMING_KIND = {"V": "video", "A": "audio"}


@dataclass(frozen=True)
class SampleObject:
    key: str
    body: bytes
    description: str

    @property
    def defect(self) -> str | None:
        """The defect slug this object demonstrates, None for a valid object."""
        if not self.description.startswith("defect "):
            return None
        return self.description.removeprefix("defect ").split(":", 1)[0]


def sample_files_dir() -> Path:
    """The folder holding manifest.json, the streaming copies, the QC PDF and the metadata."""
    return Path(__file__).resolve().parent


@cache
def load_manifest() -> dict[str, Any]:
    return json.loads((sample_files_dir() / "manifest.json").read_text(encoding="utf-8"))


def _read(relative: str) -> bytes:
    return (sample_files_dir() / relative).read_bytes()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass(frozen=True)
class _Asset:
    """One inventory code's intended files, before any defect is applied."""

    folder: str
    code: str
    master: dict[str, Any]  # a manifest "masters" entry
    tool: str
    separator: str  # md5sum's "  " (text mode) or " *" (binary mode)
    list_streaming: bool  # md5 lists the streaming copy too (usual, not mandatory)

    @property
    def kind(self) -> str:
        return self.code[0]

    @property
    def master_name(self) -> str:
        suffix = Path(self.master["filename"]).suffix
        if suffix == "." + _STREAMING_EXT[self.kind]:
            # An MP4 (V) or MP3 (A) master would share the streaming copy's name, and md5sum
            # lines are keyed by name: the master gets a distinguishing suffix.
            return f"{self.code}_master{suffix}"
        return f"{self.code}{suffix}"

    def key(self, suffix: str) -> str:
        return f"{self.folder}/{self.code}{suffix}"

    def streaming_key(self) -> str:
        return self.key("." + _STREAMING_EXT[self.kind])


class _Builder:
    """Draws codes and masters deterministically from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.used_numbers: set[tuple[str, int]] = set()
        self.count = 0
        masters = load_manifest()["masters"]
        self.masters = {
            kind: [m for m in masters if m["media_kind"] == _STREAMING_KIND[kind]]
            for kind in ("V", "A")
        }
        # Start each cycle at a seeded offset so every master is used, in a seed-dependent order.
        self.offsets = {kind: self.rng.randrange(len(ms)) for kind, ms in self.masters.items()}
        self.drawn = {"V": 0, "A": 0}

    def code(self, kind: str, code_type: str, number: int | None = None, origin: str = "") -> str:
        """A fresh code; number and origin are drawn unless given (fixed codes are reserved)."""
        while number is None or (code_type, number) in self.used_numbers:
            number = self.rng.randrange(1, 100_000)
        self.used_numbers.add((code_type, number))
        origin = origin or self.rng.choice("OC")  # original or copy carrier
        return f"{kind}{origin}-{code_type}-{number:05d}"

    def master(self, kind: str) -> dict[str, Any]:
        pool = self.masters[kind]
        chosen = pool[(self.offsets[kind] + self.drawn[kind]) % len(pool)]
        self.drawn[kind] += 1
        return chosen

    def asset(self, folder: str, code: str, master_kind: str | None = None) -> _Asset:
        self.count += 1
        return _Asset(
            folder=folder,
            code=code,
            master=self.master(master_kind or code[0]),
            tool=_TOOLS[self.count % 2],
            separator=" *" if self.count % 3 == 0 else "  ",
            list_streaming=self.count % 7 != 0,
        )


def _sidecar_json(asset: _Asset) -> bytes:
    """The sample's real tool output with the recorded master name set to the asset's."""
    document = json.loads(_read(asset.master[asset.tool]))
    if asset.tool == "ffprobe":
        document["format"]["filename"] = asset.master_name
        return json.dumps(document, indent=4, ensure_ascii=False).encode() + b"\n"
    document["media"]["@ref"] = asset.master_name
    return json.dumps(document, indent=0, ensure_ascii=False).encode() + b"\n"


def _md5_lines(asset: _Asset, streaming_md5: str | None) -> bytes:
    lines = [f"{asset.master['md5']}{asset.separator}{asset.master_name}"]
    if streaming_md5 is not None:
        streaming_name = asset.streaming_key().rsplit("/", 1)[1]
        lines.append(f"{streaming_md5}{asset.separator}{streaming_name}")
    return ("\n".join(lines) + "\n").encode()


def _streaming_body(kind: str) -> bytes:
    return _read(load_manifest()["streaming"][_STREAMING_KIND[kind]]["path"])


def _qc_body() -> bytes:
    return _read(load_manifest()["qc_report"]["path"])


def _complete_asset(
    asset: _Asset, label: str, pdf_key: str | None = None
) -> Iterator[SampleObject]:
    """The four usual files of an asset, all described with the same label."""
    streaming = _streaming_body(asset.kind)
    listed = _md5(streaming) if asset.list_streaming else None
    master = f"{asset.master['name']} master via {asset.tool}"
    yield SampleObject(asset.streaming_key(), streaming, f"{label}: streaming copy")
    yield SampleObject(asset.key(".json"), _sidecar_json(asset), f"{label}: {master}")
    md5_note = "" if listed else " (lists the master only)"
    yield SampleObject(asset.key(".md5"), _md5_lines(asset, listed), f"{label}: md5sum{md5_note}")
    yield SampleObject(pdf_key or asset.key(".pdf"), _qc_body(), f"{label}: QC report")


def _valid_assets(builder: _Builder) -> Iterator[SampleObject]:
    for folder, code_type, n_video, n_audio in _FOLDERS:
        for kind in "V" * n_video + "A" * n_audio:
            asset = builder.asset(folder, builder.code(kind, code_type))
            yield from _complete_asset(asset, f"valid: {asset.code}")
    # Quirky but valid names: the key still starts with the code, the rest is free text.
    spaced = builder.asset("FILE", builder.code("A", "FIL", 3, "O"))
    yield from _complete_asset(
        spaced, f"valid: {spaced.code} (QC report name has a space)", spaced.key(" copia.pdf")
    )
    accented = builder.asset("FILE", builder.code("V", "FIL"))
    yield from _complete_asset(
        accented,
        f"valid: {accented.code} (QC report name has non-ASCII text)",
        accented.key("_verifica qualità (v2).pdf"),
    )


def _replace(objects: list[SampleObject], suffix: str, body: bytes, text: str) -> None:
    """Swap the body of the object whose key ends with suffix, describing the defect."""
    for i, obj in enumerate(objects):
        if obj.key.endswith(suffix):
            objects[i] = SampleObject(obj.key, body, text)
            return
    raise LookupError(suffix)


def _defect(slug: str, asset: _Asset, detail: str) -> list[SampleObject]:
    """A complete asset, every file of it labelled with the defect it belongs to.

    Its .md5 always lists the streaming copy, so the defect is the only thing wrong with it.
    """
    asset = dataclasses.replace(asset, list_streaming=True)
    return list(_complete_asset(asset, f"defect {slug}: {asset.code} {detail}"))


def _defective_assets(builder: _Builder) -> Iterator[SampleObject]:
    streaming_v, streaming_a = _streaming_body("V"), _streaming_body("A")

    # Not a valid code, so it is built by hand rather than drawn.
    yield from _defect(
        "bad-inventory-code", builder.asset("BRD", "VO-BRD-1234"), "number has 4 digits, not 5"
    )

    mismatch = builder.asset("DVD", builder.code("V", "BRD", 77, "O"))
    for obj in _complete_asset(mismatch, "x"):
        if obj.key.endswith((".mp4", ".json")):
            text = f"defect folder-type-mismatch: {mismatch.code} (type BRD) filed under DVD/"
            yield SampleObject(obj.key, obj.body, text)

    wrong_stream = builder.asset("VHS", builder.code("V", "VHS"))
    objects = _defect("video-code-audio-streaming-copy", wrong_stream, "streams as .mp3")
    mp3_key = wrong_stream.key(".mp3")
    objects[0] = SampleObject(mp3_key, streaming_a, objects[0].description)
    _replace(
        objects,
        ".md5",
        _md5_lines(wrong_stream, None) + f"{_md5(streaming_a)}  {mp3_key.split('/')[1]}\n".encode(),
        objects[2].description,
    )
    yield from objects

    yield from _defect(
        "audio-code-video-master",
        builder.asset("DAT", builder.code("A", "DAT"), master_kind="V"),
        "has a video master in its .json",
    )

    incomplete = builder.asset("BRD", builder.code("V", "BRD"))
    text = f"defect incomplete-asset: {incomplete.code} has only its streaming copy"
    yield SampleObject(incomplete.streaming_key(), streaming_v, text)

    yield from _checksum_mismatch(builder)
    yield from _bad_sidecars(builder)
    yield from _stray_files(streaming_v)


def _checksum_mismatch(builder: _Builder) -> Iterator[SampleObject]:
    asset = builder.asset("DVD", builder.code("V", "DVD"))
    objects = _defect("checksum-mismatch", asset, "md5 of the streaming copy is wrong")
    real = _md5(_streaming_body("V"))
    wrong = real[::-1] if real[::-1] != real else "0" * 32  # a plausible but wrong hash
    streaming_name = asset.streaming_key().rsplit("/", 1)[1]
    body = _md5_lines(asset, None) + f"{wrong}{asset.separator}{streaming_name}\n".encode()
    _replace(objects, ".md5", body, objects[2].description)
    yield from objects


def _bad_sidecars(builder: _Builder) -> Iterator[SampleObject]:
    unreadable = builder.asset("CAS", builder.code("A", "CAS"))
    objects = _defect("unreadable-json", unreadable, "json upload was cut short")
    truncated = _sidecar_json(unreadable)
    _replace(objects, ".json", truncated[: len(truncated) // 2], objects[1].description)
    yield from objects

    foreign = builder.asset("DAT", builder.code("A", "DAT"))
    objects = _defect("unrecognised-json", foreign, "json is a cataloguer's note")
    note = {"inventory_code": foreign.code, "operator": "M. Rossi", "notes": "lato B rovinato"}
    _replace(objects, ".json", json.dumps(note).encode(), objects[1].description)
    yield from objects

    bad_md5 = builder.asset("BRD", builder.code("V", "BRD"))
    objects = _defect("unreadable-md5", bad_md5, "md5 is certutil output, not md5sum")
    certutil = (
        f"MD5 hash of {bad_md5.master_name}:\r\n{bad_md5.master['md5']}\r\n"
        "CertUtil: -hashfile command completed successfully.\r\n"
    )
    _replace(objects, ".md5", certutil.encode(), objects[2].description)
    yield from objects

    not_pdf = builder.asset("VHS", builder.code("V", "VHS"))
    objects = _defect("not-a-pdf", not_pdf, "pdf is a saved browser error page")
    page = b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head></html>\n"
    _replace(objects, ".pdf", page, objects[3].description)
    yield from objects


def _stray_files(streaming_v: bytes) -> Iterator[SampleObject]:
    ignored = "defect ignored-extension"
    yield SampleObject("BRD/notes.txt", b"Da ricontrollare: VO-BRD lotto 3\n", f"{ignored}: .txt")
    # An OLE2 compound-file header, as Windows Explorer's thumbnail cache starts.
    thumbs = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)
    yield SampleObject("BRD/Thumbs.db", thumbs, f"{ignored}: Windows thumbnail cache")
    excluded = "defect excluded-folder"
    yield SampleObject("TEST-FOLDER-DEV/VO-TST-00001.mp4", streaming_v, f"{excluded}: test data")
    yield SampleObject("UMT/VO-UMT-14387.mp4", streaming_v, f"{excluded}: UMT/ is skipped")
    photo = _read(load_manifest()["photo"]["path"])
    yield SampleObject(
        "DOCUMENTAZIONE_FOTOGRAFICA/foto.jpg", photo, f"{excluded}: photo documentation"
    )


def build_sample_archive(seed: int = 7) -> list[SampleObject]:
    """Build the sample bucket's objects, sorted by key like an S3 listing.

    About 40 inventory codes in six folders: most are complete valid assets (streaming copy,
    ffprobe or mediainfo .json, .md5, .pdf), the rest each demonstrate one defect from DEFECTS.
    """
    builder = _Builder(seed)
    objects = [*_valid_assets(builder), *_defective_assets(builder)]
    return sorted(objects, key=lambda obj: obj.key)


def sample_asset(folder: str, code: str, seed: int = 11) -> list[SampleObject]:
    """One complete, valid asset under `code` (streaming copy, .json, .md5, .pdf): what an
    operator uploads. The master is drawn from the real samples by `seed`."""
    builder = _Builder(seed)
    for _ in range(seed % 5):  # vary the master and sidecar style with the seed
        builder.asset(folder, code)
    return list(_complete_asset(builder.asset(folder, code), f"uploaded: {code}"))
