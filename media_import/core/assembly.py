"""Phase 3 rules: assemble each inventory code's files into one importable unit.

Pure functions over what was listed and what was read, so the whole decision table can be
tested without a bucket: the asset fetches bytes, this module decides.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from media_import.core.checksums import (
    ChecksumEntry,
    ChecksumFileError,
    decode_md5sum,
    plain_md5_etag,
)
from media_import.core.inventory import (
    MIME_BY_EXTENSION,
    STREAMING_EXTENSION,
    MediaKind,
    Role,
    Rule,
    extension_of,
    filename_of,
    media_kind_of,
)
from media_import.core.pdf import PDF_HEAD_BYTES, looks_like_pdf
from media_import.core.storage import RangeRead
from media_import.core.technical_metadata import (
    TechnicalMetadata,
    TechnicalMetadataError,
    parse_technical_metadata,
)

# A JSON escape of NUL (an odd number of backslashes before u0000), which jsonb rejects.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class Decision(StrEnum):
    IMPORT = "import"  # a new, complete, valid asset
    ATTACH = "attach"  # new files of an asset already in the catalog
    DEFERRED = "deferred"  # incomplete: waits for its missing pieces
    REJECTED = "rejected"


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, about
# five times the cost, and phase 2 builds millions of these at 1M objects. Nothing mutates them.
@dataclass(slots=True)
class Candidate:
    """A valid file of an inventory code that has at least one file not yet catalogued."""

    key: str
    folder: str
    inventory_code: str
    role: Role
    size: int
    etag: str | None
    last_modified: datetime
    is_new: bool


@dataclass(slots=True)
class CodeGroup:
    inventory_code: str
    folder: str
    files: tuple[Candidate, ...]
    catalogued_folder: str | None  # folder of the live catalogued asset, None if not catalogued

    @property
    def new_files(self) -> tuple[Candidate, ...]:
        return tuple(f for f in self.files if f.is_new)

    def of_role(self, role: Role, *, new_only: bool = False) -> list[Candidate]:
        pool = self.new_files if new_only else self.files
        return [f for f in pool if f.role is role]


@dataclass(slots=True)
class FilePlan:
    key: str
    folder: str
    inventory_code: str
    role: Role
    decision: Decision
    mime_type: str
    size: int
    etag: str | None
    last_modified: datetime
    md5: str | None = None
    md5_source: str | None = None
    md5_verified: bool = False
    rule: Rule | None = None
    message: str | None = None


@dataclass(slots=True)
class AssetPlan:
    inventory_code: str
    folder: str
    decision: Decision
    media_kind: MediaKind
    files: tuple[FilePlan, ...]
    master_filename: str | None = None
    master_mime_type: str | None = None
    master_container: str | None = None
    master_md5: str | None = None
    duration_seconds: float | None = None
    metadata_tool: str | None = None
    technical_metadata: Mapping[str, Any] | None = None
    missing: tuple[str, ...] = ()
    oldest_file_at: datetime | None = None
    rule: Rule | None = None
    message: str | None = None


@dataclass(frozen=True)
class Reads:
    """What phase 3 read from the bucket: sidecar bodies (or the error reading them) and the
    MD5 of objects that had to be hashed because their ETag is not a plain MD5."""

    bodies: Mapping[str, bytes | Exception] = field(default_factory=dict)
    md5s: Mapping[str, str | Exception] = field(default_factory=dict)


class _Reject(Exception):
    def __init__(self, rule: Rule, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.rule, self.message, self.key = rule, message, key


def group_candidates(
    rows: Iterable[Candidate], catalogued_folders: Mapping[str, str]
) -> list[CodeGroup]:
    by_code: dict[str, list[Candidate]] = defaultdict(list)
    for row in rows:
        by_code[row.inventory_code].append(row)
    return [
        CodeGroup(
            code,
            files[0].folder,
            tuple(sorted(files, key=lambda f: f.key)),
            catalogued_folders.get(code),
        )
        for code, files in sorted(by_code.items())
    ]


def sidecar_reads(groups: Iterable[CodeGroup]) -> list[RangeRead]:
    """The sidecars phase 3 must read: new ones, plus the .md5 files of assets being imported
    (to verify new files). QC reports only need their first bytes."""
    reads: dict[str, RangeRead] = {}
    for group in groups:
        for f in group.new_files:
            if f.role in (Role.METADATA, Role.CHECKSUM):
                reads[f.key] = RangeRead(f.key, None, f.size, f.etag)
            elif f.role is Role.QC_REPORT:
                # S3 answers any range of an empty object with 416: read those whole (0 bytes).
                reads[f.key] = RangeRead(f.key, PDF_HEAD_BYTES if f.size else None, f.size, f.etag)
        for f in group.of_role(Role.CHECKSUM):
            reads.setdefault(f.key, RangeRead(f.key, None, f.size, f.etag))
    return list(reads.values())


def checksum_entries(
    group: CodeGroup, bodies: Mapping[str, bytes | Exception]
) -> list[ChecksumEntry]:
    entries: list[ChecksumEntry] = []
    for f in group.of_role(Role.CHECKSUM):
        body = bodies.get(f.key)
        if body is None:
            continue
        if isinstance(body, Exception):
            raise _Reject(Rule.UNREADABLE_CHECKSUM, f"cannot read {f.key}: {body}", f.key)
        try:
            entries.extend(decode_md5sum(body))
        except ChecksumFileError as exc:
            raise _Reject(Rule.UNREADABLE_CHECKSUM, f"{filename_of(f.key)}: {exc}", f.key) from exc
    return entries


def files_to_hash(
    groups: Iterable[CodeGroup], bodies: Mapping[str, bytes | Exception]
) -> list[RangeRead]:
    """Files whose MD5 must be computed from their bytes: new files listed in any .md5
    sidecar, and any file listed in a new .md5 sidecar, unless the ETag equals the listed MD5.
    An ETag that differs is no evidence: a multipart upload's, or an SSE-KMS or SSE-C
    object's 32-hex ETag, is not the object's MD5, and the listing does not say which an
    object is; its bytes decide."""
    reads: list[RangeRead] = []
    for group in groups:
        checksums = group.of_role(Role.CHECKSUM)
        if not checksums:
            continue
        listed = {e.filename: e.md5 for e in _readable_entries(checksums, bodies)}
        listed_by_new = {
            e.filename
            for e in _readable_entries(group.of_role(Role.CHECKSUM, new_only=True), bodies)
        }
        for f in group.files:
            name = filename_of(f.key)
            if name not in listed or plain_md5_etag(f.etag) == listed[name]:
                continue
            if name in listed_by_new or f.is_new:
                reads.append(RangeRead(f.key, None, f.size, f.etag))
    return reads


def _readable_entries(
    files: Iterable[Candidate], bodies: Mapping[str, bytes | Exception]
) -> list[ChecksumEntry]:
    """Entries of the checksum files that can be read; an unreadable one is judged on its own."""
    entries: list[ChecksumEntry] = []
    for f in files:
        body = bodies.get(f.key)
        if isinstance(body, bytes):
            try:
                entries.extend(decode_md5sum(body))
            except ChecksumFileError:
                continue
    return entries


def plan_group(group: CodeGroup, reads: Reads, now: datetime) -> AssetPlan:
    kind = media_kind_of(group.inventory_code)
    if group.catalogued_folder is not None:
        return _plan_attach(group, kind, reads)
    try:
        return _plan_import(group, kind, reads, now)
    except _Reject as rejection:
        return _rejected(group, kind, rejection)


def _plan_import(group: CodeGroup, kind: MediaKind, reads: Reads, now: datetime) -> AssetPlan:
    streaming, metadata = group.of_role(Role.STREAMING_COPY), group.of_role(Role.METADATA)
    expected = STREAMING_EXTENSION[kind]
    for f in streaming:
        if extension_of(f.key) != expected:
            raise _Reject(
                Rule.STREAMING_COPY_EXTENSION,
                f"a {kind.value} code's streaming copy must be {expected}, "
                f"found {filename_of(f.key)}",
                f.key,
            )
    for role, found in ((Role.STREAMING_COPY, streaming), (Role.METADATA, metadata)):
        if len(found) > 1:
            names = ", ".join(filename_of(f.key) for f in found)
            raise _Reject(Rule.AMBIGUOUS_FILES, f"more than one {role.value}: {names}")
    missing = tuple(
        label
        for label, found in (
            (f"streaming copy ({expected})", streaming),
            ("technical metadata (.json)", metadata),
        )
        if not found
    )
    if missing:
        return _deferred(group, kind, missing)
    technical, document = _technical_metadata(metadata[0], reads.bodies)
    _check_container(kind, technical, metadata[0].key)
    entries = checksum_entries(group, reads.bodies)
    files = _verified_files(group, group.files, entries, reads, Decision.IMPORT)
    _check_pdfs(group.files, reads.bodies)
    master_name = technical.filename or _unlisted_name(group, entries)
    return AssetPlan(
        group.inventory_code,
        group.folder,
        Decision.IMPORT,
        kind,
        files,
        master_filename=master_name,
        master_mime_type=technical.mime_type,
        master_container=technical.container,
        master_md5=_master_md5(group, entries, master_name),
        duration_seconds=technical.duration_seconds,
        metadata_tool=technical.tool,
        technical_metadata=document,
    )


def _plan_attach(group: CodeGroup, kind: MediaKind, reads: Reads) -> AssetPlan:
    """New files of a catalogued asset: each is judged alone, the asset stays as it is."""
    if group.catalogued_folder != group.folder:
        rejection = _Reject(
            Rule.DUPLICATE_INVENTORY_CODE,
            f"{group.inventory_code} is already catalogued from folder {group.catalogued_folder}/",
        )
        return _rejected(group, kind, rejection)
    entries = _readable_entries(group.of_role(Role.CHECKSUM), reads.bodies)
    plans: list[FilePlan] = []
    for f in group.new_files:
        try:
            if f.role in (Role.STREAMING_COPY, Role.METADATA):
                raise _Reject(
                    Rule.AMBIGUOUS_FILES,
                    f"{group.inventory_code} already has a catalogued {f.role.value}",
                )
            if f.role is Role.CHECKSUM:
                _verify_late_checksum_file(group, f, reads)
            _check_pdfs([f], reads.bodies)
            plans.extend(_verified_files(group, [f], entries, reads, Decision.ATTACH))
        except _Reject as rejection:
            plans.extend(_reject_files([f], rejection))
    decision = (
        Decision.ATTACH if any(p.decision is Decision.ATTACH for p in plans) else Decision.REJECTED
    )
    return AssetPlan(group.inventory_code, group.folder, decision, kind, tuple(plans))


def _verify_late_checksum_file(group: CodeGroup, sidecar: Candidate, reads: Reads) -> None:
    """A .md5 arriving after its asset was catalogued must agree with the files it lists,
    catalogued ones included: a contradicting checksum is a rejection, not an attachment."""
    only = CodeGroup(group.inventory_code, group.folder, (sidecar,), group.catalogued_folder)
    by_name = {filename_of(f.key): f for f in group.files}
    for entry in checksum_entries(only, reads.bodies):
        listed = by_name.get(entry.filename)
        if listed is None or listed.key == sidecar.key:
            continue
        actual = _actual_md5(listed, reads.md5s)
        if actual != entry.md5:
            raise _Reject(
                Rule.CHECKSUM_MISMATCH,
                f"{filename_of(sidecar.key)} says {entry.filename} is {entry.md5}, "
                f"its bytes are {actual}",
                sidecar.key,
            )


def _technical_metadata(
    sidecar: Candidate, bodies: Mapping[str, bytes | Exception]
) -> tuple[TechnicalMetadata, Mapping[str, Any]]:
    body = bodies.get(sidecar.key)
    name = filename_of(sidecar.key)
    if body is None or isinstance(body, Exception):
        raise _Reject(Rule.UNREADABLE_METADATA, f"cannot read {name}: {body}", sidecar.key)
    try:
        # orjson: a quarter of json's time on ffprobe documents, the planning's biggest cost.
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Reject(Rule.UNREADABLE_METADATA, f"{name} is not JSON: {exc}", sidecar.key) from exc
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        # Valid JSON, but jsonb cannot hold it: staged, it would fail the folder's whole COPY.
        raise _Reject(
            Rule.UNREADABLE_METADATA,
            f"{name} holds a \\u0000 (NUL) character, which the catalog's jsonb cannot store",
            sidecar.key,
        )
    try:
        return parse_technical_metadata(document), document
    except TechnicalMetadataError as exc:
        raise _Reject(Rule.UNREADABLE_METADATA, f"{name}: {exc}", sidecar.key) from exc


def _check_container(kind: MediaKind, technical: TechnicalMetadata, key: str) -> None:
    if kind is MediaKind.VIDEO and not technical.has_video:
        raise _Reject(
            Rule.CONTAINER_MISMATCH,
            f"video code but the master ({technical.container}) has no video stream",
            key,
        )
    if kind is MediaKind.AUDIO and (technical.has_video or not technical.has_audio):
        what = "has a video stream" if technical.has_video else "has no audio stream"
        raise _Reject(
            Rule.CONTAINER_MISMATCH,
            f"audio code but the master ({technical.container}) {what}",
            key,
        )


def _check_pdfs(files: Iterable[Candidate], bodies: Mapping[str, bytes | Exception]) -> None:
    for f in files:
        if f.role is not Role.QC_REPORT:
            continue
        head = bodies.get(f.key)
        if isinstance(head, Exception):
            raise _Reject(Rule.INVALID_PDF, f"cannot read {filename_of(f.key)}: {head}", f.key)
        if head is None or not looks_like_pdf(head):
            raise _Reject(Rule.INVALID_PDF, f"{filename_of(f.key)} is not a PDF", f.key)


def _verified_files(
    group: CodeGroup,
    files: Iterable[Candidate],
    entries: list[ChecksumEntry],
    reads: Reads,
    decision: Decision,
) -> tuple[FilePlan, ...]:
    listed = {e.filename: e.md5 for e in entries}
    plans = []
    for f in files:
        name = filename_of(f.key)
        md5, source, verified = plain_md5_etag(f.etag), "etag", False
        if name in listed:
            actual = _actual_md5(f, reads.md5s)
            if actual != listed[name]:
                raise _Reject(
                    Rule.CHECKSUM_MISMATCH,
                    f"{name}: .md5 sidecar says {listed[name]}, the object's bytes are {actual}",
                    f.key,
                )
            md5, source, verified = actual, "md5sum", True
        plans.append(
            FilePlan(
                f.key,
                f.folder,
                f.inventory_code,
                f.role,
                decision,
                MIME_BY_EXTENSION[extension_of(name)],
                f.size,
                f.etag,
                f.last_modified,
                md5,
                source if md5 else None,
                verified,
            )
        )
    return tuple(plans)


def _actual_md5(f: Candidate, md5s: Mapping[str, str | Exception]) -> str:
    computed = md5s.get(f.key)
    if isinstance(computed, str):  # hashed: its bytes, whatever its ETag says
        return computed
    etag_md5 = plain_md5_etag(f.etag)
    if etag_md5 and computed is None:  # not hashed: its ETag equals the MD5 it is checked against
        return etag_md5
    raise _Reject(
        Rule.CHECKSUM_MISMATCH,
        f"cannot read {filename_of(f.key)} to verify its checksum: {computed}",
        f.key,
    )


def _unlisted_name(group: CodeGroup, entries: list[ChecksumEntry]) -> str | None:
    in_bucket = {filename_of(f.key) for f in group.files}
    outside = [e.filename for e in entries if e.filename not in in_bucket]
    return outside[0] if len(outside) == 1 else None


def _master_md5(group: CodeGroup, entries: list[ChecksumEntry], master: str | None) -> str | None:
    """The conservatory master is not in the bucket: its checksum is recorded, not verified."""
    by_name = {e.filename: e.md5 for e in entries}
    if master and master in by_name:
        return by_name[master]
    unlisted = _unlisted_name(group, entries)
    return by_name.get(unlisted) if unlisted else None


def _file_plan(
    f: Candidate, decision: Decision, rule: Rule | None = None, message: str | None = None
) -> FilePlan:
    return FilePlan(
        f.key,
        f.folder,
        f.inventory_code,
        f.role,
        decision,
        MIME_BY_EXTENSION[extension_of(f.key)],
        f.size,
        f.etag,
        f.last_modified,
        plain_md5_etag(f.etag),
        "etag" if plain_md5_etag(f.etag) else None,
        False,
        rule,
        message,
    )


def _reject_files(files: Iterable[Candidate], rejection: _Reject) -> list[FilePlan]:
    return [_file_plan(f, Decision.REJECTED, rejection.rule, rejection.message) for f in files]


def _rejected(group: CodeGroup, kind: MediaKind, rejection: _Reject) -> AssetPlan:
    files = tuple(_reject_files(group.new_files, rejection))
    return AssetPlan(
        group.inventory_code,
        group.folder,
        Decision.REJECTED,
        kind,
        files,
        rule=rejection.rule,
        message=rejection.message,
    )


def _deferred(group: CodeGroup, kind: MediaKind, missing: tuple[str, ...]) -> AssetPlan:
    files = tuple(_file_plan(f, Decision.DEFERRED) for f in group.new_files)
    oldest = min(f.last_modified for f in group.files)
    message = "waiting for " + " and ".join(missing)
    return AssetPlan(
        group.inventory_code,
        group.folder,
        Decision.DEFERRED,
        kind,
        files,
        missing=missing,
        oldest_file_at=oldest,
        message=message,
    )
