"""Phase-1 rules: everything decided from a bucket key alone."""

from __future__ import annotations

import pytest

from media_import.core.inventory import (
    CODE_LENGTH,
    DEFAULT_ALLOWED_EXTENSIONS,
    DEFAULT_EXCLUDED_FOLDERS,
    INVENTORY_CODE_RE,
    ROLE_BY_EXTENSION,
    MediaKind,
    Outcome,
    Role,
    Rule,
    Rules,
    extension_of,
    filename_of,
    folder_of,
    inventory_code_of,
    judge_key,
    judge_keys,
    media_kind_of,
    parse_folder_types,
    type_segment_of,
)

RULES = Rules(folder_types={"FILE": frozenset({"FIL"})})


# -- the inventory code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "VO-BRD-00012",
        "VC-DVD-99999",
        "AO-CAS-00000",
        "AC-UMT-14387",
        "VO-FIL-12345",
        "AO-A1B-00001",
    ],
)
def test_valid_inventory_codes(code: str) -> None:
    assert INVENTORY_CODE_RE.match(code)


@pytest.mark.parametrize(
    "code",
    [
        "vo-brd-00012",  # lowercase
        "VO-brd-00012",  # lowercase type
        "VX-BRD-00012",  # second letter must be O or C
        "XO-BRD-00012",  # first letter must be V or A
        "VO-BRD-0012",  # four digits
        "VO-BRD-000123",  # six digits
        "VO-BR-00012",  # two-letter type
        "VO-BRDD-00012",  # four-letter type
        "VO-BRD-0001A",  # letter in the number
        "VO-BRD-O0012",  # letter O for zero
        "VO_BRD_00012",  # wrong separators
        "VOBRD00012",
        "",
        "VO-BRD-\u0660\u0660\u0660\u0661\u0662",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_invalid_inventory_codes(code: str) -> None:
    assert INVENTORY_CODE_RE.match(code) is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("VO-BRD-00012.mp4", "VO-BRD-00012"),
        ("VO-BRD-00012_qc.pdf", "VO-BRD-00012"),
        ("VO-BRD-00012-master.json", "VO-BRD-00012"),
        ("VO-BRD-000123.mp4", "VO-BRD-00012"),  # only the first 12 characters count
        ("VO-BRD.mp4", "VO-BRD.mp4"),
    ],
)
def test_inventory_code_is_first_12_characters(name: str, code: str) -> None:
    assert CODE_LENGTH == 12
    assert inventory_code_of(name) == code


def test_code_with_suffix_in_file_name_is_valid() -> None:
    verdict = judge_key("BRD/VO-BRD-00012_qc.pdf", RULES)
    assert verdict.outcome is Outcome.VALID
    assert verdict.inventory_code == "VO-BRD-00012"
    assert verdict.role is Role.QC_REPORT


@pytest.mark.parametrize(
    "key",
    [
        "BRD/vo-brd-00012.mp4",
        "BRD/VX-BRD-00012.mp4",
        "BRD/VO-BRD-0012.mp4",
        "BRD/VO-BRD-0001A.mp4",
        "BRD/master.json",
    ],
)
def test_bad_code_is_rejected_with_rule_and_role(key: str) -> None:
    verdict = judge_key(key, RULES)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.rule is Rule.BAD_INVENTORY_CODE
    assert verdict.inventory_code is None
    assert verdict.folder == "BRD"
    assert verdict.role is ROLE_BY_EXTENSION[extension_of(key)]
    assert repr(inventory_code_of(filename_of(key))) in (verdict.message or "")


# -- folders --------------------------------------------------------------------------------------


def test_type_segment_is_the_middle_three_characters() -> None:
    assert type_segment_of("VO-BRD-00012") == "BRD"
    assert type_segment_of("AC-A1B-00012") == "A1B"


def test_code_in_its_own_folder_is_valid() -> None:
    verdict = judge_key("DVD/VC-DVD-00001.mp4", RULES)
    assert verdict.outcome is Outcome.VALID
    assert (verdict.folder, verdict.inventory_code, verdict.role) == (
        "DVD",
        "VC-DVD-00001",
        Role.STREAMING_COPY,
    )
    assert verdict.rule is None


def test_code_in_another_types_folder_is_rejected() -> None:
    verdict = judge_key("DVD/VO-BRD-00012.mp4", RULES)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.rule is Rule.FOLDER_MISMATCH
    assert verdict.inventory_code == "VO-BRD-00012"
    assert verdict.role is Role.STREAMING_COPY
    assert "BRD" in (verdict.message or "") and "DVD/" in (verdict.message or "")


def test_subfolders_belong_to_their_top_folder() -> None:
    verdict = judge_key("BRD/2024/batch 3/VO-BRD-00012.json", RULES)
    assert verdict.outcome is Outcome.VALID
    assert verdict.folder == "BRD"
    assert verdict.role is Role.METADATA


def test_folder_types_mapping() -> None:
    rules = Rules(folder_types={"FILE": frozenset({"FIL", "DIG"})})
    assert rules.types_allowed_in("FILE") == {"FIL", "DIG"}
    assert rules.types_allowed_in("BRD") == {"BRD"}
    assert judge_key("FILE/VO-FIL-00001.mp4", rules).outcome is Outcome.VALID
    assert judge_key("FILE/AO-DIG-00001.mp3", rules).outcome is Outcome.VALID
    # A mapped folder no longer accepts its own name unless listed.
    rejected = judge_key("FILE/VO-FIL-00001.mp4", Rules(folder_types={"FILE": frozenset({"DIG"})}))
    assert rejected.rule is Rule.FOLDER_MISMATCH
    assert "DIG" in (rejected.message or "")
    # Without a mapping, FILE only accepts FILE, which is not a three-letter type.
    assert judge_key("FILE/VO-FIL-00001.mp4", Rules()).rule is Rule.FOLDER_MISMATCH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FILE=FIL", {"FILE": {"FIL"}}),
        ("FILE=FIL,DIG;AUDIO=CAS", {"FILE": {"FIL", "DIG"}, "AUDIO": {"CAS"}}),
        (" FILE = FIL , DIG ; AUDIO=CAS ; ", {"FILE": {"FIL", "DIG"}, "AUDIO": {"CAS"}}),
        ("FILE/=FIL", {"FILE": {"FIL"}}),
        ("FILE=FIL,,", {"FILE": {"FIL"}}),
        ("", {}),
        (";;", {}),
    ],
)
def test_parse_folder_types(text: str, expected: dict[str, set[str]]) -> None:
    assert parse_folder_types(text) == expected


@pytest.mark.parametrize("text", ["FILE", "=FIL", " =FIL", "FILE=FIL;AUDIO", "FILE:FIL", "FILE="])
def test_parse_folder_types_rejects_malformed_entries(text: str) -> None:
    with pytest.raises(ValueError, match="FOLDER=TYPE"):
        parse_folder_types(text)


# -- what is ignored ------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", DEFAULT_EXCLUDED_FOLDERS)
def test_excluded_folders_are_ignored_not_rejected(folder: str) -> None:
    # Even a key that would fail every rule is not ours to judge in an excluded folder.
    for key in (f"{folder}/VO-BRD-00012.mp4", f"{folder}/foto.jpg", f"{folder}/bad-name.json"):
        verdict = judge_key(key, Rules())
        assert verdict.outcome is Outcome.IGNORED
        assert verdict.ignored_because == "excluded folder"
        assert verdict.rule is None


def test_excluded_folder_match_is_exact() -> None:
    assert judge_key("UMT2/AO-UMT-00001.mp3", Rules()).outcome is Outcome.REJECTED
    assert judge_key("BRD/UMT/VO-BRD-00001.mp4", Rules()).outcome is Outcome.VALID


@pytest.mark.parametrize(
    ("key", "because"),
    [
        ("BRD/VO-BRD-00012.mov", "extension .mov"),
        ("BRD/photo.jpg", "extension .jpg"),
        ("BRD/README", "extension (none)"),
        ("BRD/.md5", "extension (none)"),
        ("BRD/VO-BRD-00012.mp4.part", "extension .part"),
    ],
)
def test_other_extensions_are_ignored_not_rejected(key: str, because: str) -> None:
    verdict = judge_key(key, RULES)
    assert verdict.outcome is Outcome.IGNORED
    assert verdict.ignored_because == because
    assert verdict.rule is None


@pytest.mark.parametrize("key", ["VO-BRD-00012.mp4", "bad name.json", "notes.txt"])
def test_root_keys_are_ignored(key: str) -> None:
    verdict = judge_key(key, RULES)
    assert verdict.outcome is Outcome.IGNORED
    assert verdict.folder == ""
    assert verdict.ignored_because == "outside any folder"


@pytest.mark.parametrize("key", ["BRD/", "BRD/2024/", "UMT/"])
def test_folder_markers_are_ignored(key: str) -> None:
    verdict = judge_key(key, RULES)
    assert verdict.outcome is Outcome.IGNORED
    assert verdict.ignored_because == "folder marker"


def test_allowed_extensions_are_configurable() -> None:
    rules = Rules(allowed_extensions=frozenset({".mp4"}))
    assert judge_key("BRD/VO-BRD-00012.mp4", rules).outcome is Outcome.VALID
    assert judge_key("BRD/VO-BRD-00012.json", rules).ignored_because == "extension .json"


def test_extensions_without_a_role_are_refused() -> None:
    # They used to pass and then crash judge_key with a KeyError on the first matching key.
    with pytest.raises(ValueError, match=r"\.mov"):
        Rules(allowed_extensions=frozenset({".mp4", ".mov"}))


def test_judge_keys_keeps_order() -> None:
    keys = ["BRD/VO-BRD-00012.mp4", "BRD/", "DVD/VO-BRD-00012.mp4"]
    verdicts = judge_keys(keys, RULES)
    assert [v.key for v in verdicts] == keys
    assert [v.outcome for v in verdicts] == [Outcome.VALID, Outcome.IGNORED, Outcome.REJECTED]


# -- extensions, roles, kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ext"),
    [
        ("a.mp4", ".mp4"),
        ("a.MP4", ".mp4"),
        ("a.Json", ".json"),
        ("a.b.pdf", ".pdf"),
        ("noext", ""),
        (".hidden", ""),
        ("trailing.", "."),
    ],
)
def test_extension_of(name: str, ext: str) -> None:
    assert extension_of(name) == ext


def test_uppercase_extension_is_valid() -> None:
    verdict = judge_key("BRD/VO-BRD-00012.MP4", RULES)
    assert verdict.outcome is Outcome.VALID
    assert verdict.role is Role.STREAMING_COPY


@pytest.mark.parametrize(
    ("ext", "role"),
    [
        (".mp4", Role.STREAMING_COPY),
        (".mp3", Role.STREAMING_COPY),
        (".json", Role.METADATA),
        (".md5", Role.CHECKSUM),
        (".pdf", Role.QC_REPORT),
    ],
)
def test_roles_by_extension(ext: str, role: Role) -> None:
    assert ext in DEFAULT_ALLOWED_EXTENSIONS
    assert judge_key(f"BRD/VO-BRD-00012{ext}", RULES).role is role


def test_every_default_extension_has_a_role() -> None:
    assert set(DEFAULT_ALLOWED_EXTENSIONS) == set(ROLE_BY_EXTENSION)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("VO-BRD-00012", MediaKind.VIDEO),
        ("VC-DVD-00001", MediaKind.VIDEO),
        ("AO-CAS-00001", MediaKind.AUDIO),
        ("AC-UMT-00001", MediaKind.AUDIO),
    ],
)
def test_media_kind_of(code: str, kind: MediaKind) -> None:
    assert media_kind_of(code) is kind


def test_key_helpers() -> None:
    assert folder_of("BRD/x/VO-BRD-00012.mp4") == "BRD"
    assert folder_of("VO-BRD-00012.mp4") == ""
    assert folder_of("BRD/") == "BRD"
    assert filename_of("BRD/x/VO-BRD-00012.mp4") == "VO-BRD-00012.mp4"
    assert filename_of("VO-BRD-00012.mp4") == "VO-BRD-00012.mp4"
