"""Phase 1 rules: what a bucket key says about itself.

Every decision here is made from the key alone (no I/O), so a whole folder's listing can be
classified in one pass and the same rules serve the assets, the sensors and the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

# ASCII digits only: \d would also accept e.g. Arabic-Indic digits.
INVENTORY_CODE_RE = re.compile(r"^[VA][OC]-[A-Z0-9]{3}-[0-9]{5}$")
CODE_LENGTH = 12

DEFAULT_ALLOWED_EXTENSIONS: tuple[str, ...] = (".mp4", ".mp3", ".json", ".pdf", ".md5")
DEFAULT_EXCLUDED_FOLDERS: tuple[str, ...] = ("TEST-FOLDER-DEV", "DOCUMENTAZIONE_FOTOGRAFICA", "UMT")


class Role(StrEnum):
    """The part a file plays in an asset, decided by its extension."""

    STREAMING_COPY = "streaming_copy"
    METADATA = "metadata"
    CHECKSUM = "checksum"
    QC_REPORT = "qc_report"


ROLE_BY_EXTENSION: Mapping[str, Role] = {
    ".mp4": Role.STREAMING_COPY,
    ".mp3": Role.STREAMING_COPY,
    ".json": Role.METADATA,
    ".md5": Role.CHECKSUM,
    ".pdf": Role.QC_REPORT,
}

MIME_BY_EXTENSION: Mapping[str, str] = {
    ".mp4": "video/mp4",
    ".mp3": "audio/mpeg",
    ".json": "application/json",
    ".md5": "text/plain",
    ".pdf": "application/pdf",
}


class MediaKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


# The streaming copy a code's media kind requires: V codes stream .mp4, A codes stream .mp3.
STREAMING_EXTENSION: Mapping[MediaKind, str] = {MediaKind.VIDEO: ".mp4", MediaKind.AUDIO: ".mp3"}


class Rule(StrEnum):
    """Rule names recorded with every rejection (stable: they are stored in the catalog)."""

    BAD_INVENTORY_CODE = "bad_inventory_code"
    FOLDER_MISMATCH = "folder_mismatch"
    STREAMING_COPY_EXTENSION = "streaming_copy_extension"
    AMBIGUOUS_FILES = "ambiguous_files"
    UNREADABLE_METADATA = "unreadable_metadata"
    CONTAINER_MISMATCH = "container_mismatch"
    UNREADABLE_CHECKSUM = "unreadable_checksum"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    INVALID_PDF = "invalid_pdf"
    DUPLICATE_INVENTORY_CODE = "duplicate_inventory_code"


@dataclass(frozen=True)
class Rules:
    """The configurable part of phase 1."""

    allowed_extensions: frozenset[str] = frozenset(DEFAULT_ALLOWED_EXTENSIONS)
    excluded_folders: frozenset[str] = frozenset(DEFAULT_EXCLUDED_FOLDERS)
    # Folders that hold codes of other types than their own name, e.g. {"FILE": {"FIL", "DIG"}}.
    folder_types: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.allowed_extensions) - ROLE_BY_EXTENSION.keys())
        if unknown:
            raise ValueError(
                f"extensions without a role in an asset: {', '.join(unknown)} "
                f"(supported: {', '.join(ROLE_BY_EXTENSION)})"
            )

    def types_allowed_in(self, folder: str) -> frozenset[str]:
        return self.folder_types.get(folder, frozenset({folder}))


def folder_of(key: str) -> str:
    """The first path segment; "" for a key at the bucket's root."""
    head, sep, _ = key.partition("/")
    return head if sep else ""


def filename_of(key: str) -> str:
    return key[key.rfind("/") + 1 :]


def basename(path: str) -> str:
    """The last segment of a POSIX or Windows path (tools on Windows write "dir\\name")."""
    return path[max(path.rfind("/"), path.rfind("\\")) + 1 :]


def extension_of(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def inventory_code_of(name: str) -> str:
    return name[:CODE_LENGTH]


def media_kind_of(code: str) -> MediaKind:
    return MediaKind.VIDEO if code.startswith("V") else MediaKind.AUDIO


def type_segment_of(code: str) -> str:
    return code[3:6]


class Outcome(StrEnum):
    VALID = "valid"
    IGNORED = "ignored"
    REJECTED = "rejected"


@dataclass(frozen=True)
class KeyVerdict:
    key: str
    outcome: Outcome
    folder: str
    inventory_code: str | None = None
    role: Role | None = None
    rule: Rule | None = None
    message: str | None = None
    ignored_because: str | None = None


def is_excluded(folder: str, rules: Rules) -> bool:
    return folder in rules.excluded_folders


def judge_key(key: str, rules: Rules) -> KeyVerdict:
    """Classify one key: ignored (not ours to judge), rejected (with a rule), or valid."""
    folder = folder_of(key)
    if key.endswith("/"):
        return KeyVerdict(key, Outcome.IGNORED, folder, ignored_because="folder marker")
    if not folder:
        return KeyVerdict(key, Outcome.IGNORED, folder, ignored_because="outside any folder")
    if is_excluded(folder, rules):
        return KeyVerdict(key, Outcome.IGNORED, folder, ignored_because="excluded folder")
    name = filename_of(key)
    ext = extension_of(name)
    if ext not in rules.allowed_extensions:
        return KeyVerdict(
            key, Outcome.IGNORED, folder, ignored_because=f"extension {ext or '(none)'}"
        )
    code = inventory_code_of(name)
    if not INVENTORY_CODE_RE.match(code):
        return KeyVerdict(
            key,
            Outcome.REJECTED,
            folder,
            None,
            ROLE_BY_EXTENSION.get(ext),
            Rule.BAD_INVENTORY_CODE,
            f"file name must start with an inventory code like VO-BRD-00012; got {code!r}",
        )
    allowed = rules.types_allowed_in(folder)
    if type_segment_of(code) not in allowed:
        return KeyVerdict(
            key,
            Outcome.REJECTED,
            folder,
            code,
            ROLE_BY_EXTENSION.get(ext),
            Rule.FOLDER_MISMATCH,
            f"code type {type_segment_of(code)} does not belong in folder {folder}/ "
            f"(allowed there: {', '.join(sorted(allowed))})",
        )
    return KeyVerdict(key, Outcome.VALID, folder, code, ROLE_BY_EXTENSION[ext])


def judge_keys(keys: Iterable[str], rules: Rules) -> list[KeyVerdict]:
    return [judge_key(key, rules) for key in keys]


# The rules judge_key applies before it looks at the inventory code, over a whole Arrow array.
_FOLDER_PATTERN = r"^(?P<folder>[^/]+)/"
# An extension considered here is plain: a dot then ASCII letters or digits (no dot, no "/").
_PLAIN_EXTENSION = re.compile(r"^\.[a-z0-9]+$")


def folders_of(keys: pa.Array) -> pa.StringArray:
    """`folder_of` for every key of an Arrow string array ("" at the bucket's root)."""
    found = pc.struct_field(pc.extract_regex(keys, _FOLDER_PATTERN), "folder")
    return pc.fill_null(found, "")


def considered_mask(keys: pa.Array, rules: Rules) -> pa.BooleanArray:
    """For every key of an Arrow string array, whether `judge_key` does not ignore it (finds
    it valid or rejects it), without a Python object per key.

    The same tests as judge_key's first four, restated over the array: a folder (the key has
    a "/", not at its start), not an excluded one, and a file name ending in an allowed
    extension that is not the whole name (not right after a "/"); a key ending with an
    extension does not end with "/". Keys that are not ASCII, where Arrow's lower-casing
    could differ from Python's (e.g. KELVIN SIGN lower-cases to "k"), are judged by
    judge_key itself, as are all keys if an extension is not plain.
    """
    plain = all(_PLAIN_EXTENSION.match(ext) for ext in rules.allowed_extensions)
    if not plain:
        return _judged_one_by_one(keys, rules)
    lowered = pc.ascii_lower(keys)
    mask = pc.greater(pc.find_substring(keys, "/"), 0)  # folder_of(key) != ""
    extension = pa.repeat(False, len(keys))
    for ext in sorted(rules.allowed_extensions):
        named = pc.and_not(pc.ends_with(lowered, ext), pc.ends_with(lowered, f"/{ext}"))
        extension = pc.or_(extension, named)
    mask = pc.and_(mask, extension)
    for folder in sorted(rules.excluded_folders):
        if "/" not in folder:  # folder_of never returns a name with "/" in it
            mask = pc.and_not(mask, pc.starts_with(keys, f"{folder}/"))
    unusual = pc.invert(pc.string_is_ascii(keys))
    if not pc.any(unusual).as_py():
        return mask
    return pc.replace_with_mask(mask, unusual, _judged_one_by_one(pc.filter(keys, unusual), rules))


def _judged_one_by_one(keys: pa.Array, rules: Rules) -> pa.BooleanArray:
    verdicts = (judge_key(key, rules) for key in keys.to_pylist())
    return pa.array([v.outcome is not Outcome.IGNORED for v in verdicts], pa.bool_())


def parse_folder_types(text: str) -> dict[str, frozenset[str]]:
    """Parse "FILE=FIL,DIG;AUDIO=CAS" into {"FILE": {"FIL", "DIG"}, "AUDIO": {"CAS"}}."""
    mapping: dict[str, frozenset[str]] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        folder, sep, types = entry.partition("=")
        allowed = frozenset(t.strip() for t in types.split(",") if t.strip())
        if not sep or not folder.strip() or not allowed:
            raise ValueError(f"folder type mapping entry {entry!r} is not FOLDER=TYPE[,TYPE...]")
        mapping[folder.strip().strip("/")] = allowed
    return mapping
