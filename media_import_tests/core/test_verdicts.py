"""The vectorised verdicts of a listing page agree with judge_key, key for key."""

import random

import pyarrow as pa
import pytest

from media_import.core.inventory import Outcome, Rules, judge_key
from media_import.core.verdicts import judge_page, plainly_valid_pattern

TRICKY_NAMES = [
    "VO-BRD-00012.mp4",
    "VO-BRD-00012.MP4",
    "VO-BRD-00012.Json",
    "VO-BRD-00012_qc.pdf",
    "VO-BRD-000123.md5",
    "VO-BRD-00012.mp4.txt",
    "VO-BRD-00012.txt.mp4",
    "VO-BRD-00012",
    "VO-BRD-00012.",
    ".mp4",
    "VO-BRD-0001.mp4",
    "VX-BRD-00012.mp4",
    "vo-brd-00012.mp4",
    "VO-brd-00012.mp4",
    "VO-DVD-00012.mp4",
    "AO-BRD-00012.mp3",
    "VO-BRD-0001٣.mp4",
    "VO-BRD-00012 copy.mp4",
    "VO-BRD-00012\n.mp4",
    "VO-BRD-00012.mp4\n",
    "VO-BRD-00012.mov",
    "VO-BRD-00012.pdf/",
    "èVO-BRD-00012.mp4",
    "VO-BRD-00012.mp3",
    "VC-FIL-00001.mp4",
    "AO-DIG-00002.json",
    "VO-BRD-00012.j\u017fon",  # long s: RE2's case folding would take it for "s"
    "VO-BRD-00012.\u212aey.mp4",  # Kelvin sign
    "VO-BRD-00012.PdF",
]
TRICKY_KEYS = [f"{folder}/{name}" for folder in ("BRD", "FILE") for name in TRICKY_NAMES] + [
    "BRD/",
    "BRD/sub/",
    "BRD/2024/batch 3/VO-BRD-00012.json",
    "BRD/a/b/c/VO-BRD-00099.pdf",
    "BRD/VO-BRD-00012/.mp4",
]
RULES = Rules(folder_types={"FILE": frozenset({"FIL", "DIG"})})


def _compare(keys: list[str], folder: str, rules: Rules) -> None:
    judged = judge_page(pa.array(keys, pa.string()), folder, rules)
    columns = {name: column.to_pylist() for name, column in judged.columns.items()}
    for i, key in enumerate(keys):
        v = judge_key(key, rules)
        got = {name: values[i] for name, values in columns.items()}
        want = {
            "considered": v.outcome is not Outcome.IGNORED,
            "inventory_code": v.inventory_code,
            "role": v.role.value if v.role else None,
            "rule": v.rule.value if v.rule else None,
            "message": v.message,
        }
        assert got == want, key


@pytest.mark.parametrize("folder", ["BRD", "FILE"])
def test_tricky_keys_get_judge_keys_verdicts(folder: str) -> None:
    keys = [k for k in TRICKY_KEYS if k.startswith(f"{folder}/")]
    _compare(keys, folder, RULES)


def test_random_keys_get_judge_keys_verdicts() -> None:
    rng = random.Random(7)
    pieces = ["VO-", "AC-", "BRD", "FIL", "-", "0", "1", "9", "/", ".", "mp4", "JSON", "pdf", " "]
    keys = [
        "BRD/" + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) for _ in range(5000)
    ]
    keys += [
        f"BRD/VO-BRD-{rng.randint(0, 99999):05d}{rng.choice(['.mp4', '.md5', '.x'])}"
        for _ in range(2000)
    ]
    _compare(keys, "BRD", RULES)


def test_the_pattern_takes_plainly_valid_keys_and_counts_the_rest_as_ignored() -> None:
    keys = ["BRD/VO-BRD-00001.mp4", "BRD/VO-BRD-00001.json", "BRD/notes.txt", "BRD/x.mov", "BRD/"]
    judged = judge_page(pa.array(keys), "BRD", Rules())
    assert judged.considered.to_pylist() == [True, True, False, False, False]
    assert dict(judged.ignored) == {"extension .txt": 1, "extension .mov": 1, "folder marker": 1}


def test_excluded_and_unusual_folders_go_through_judge_key() -> None:
    assert plainly_valid_pattern("UMT", Rules()) is None
    assert plainly_valid_pattern("BR D", Rules()) is None
    _compare(["UMT/AO-UMT-00001.mp3"], "UMT", Rules())
    _compare(["BR D/VO-BR D-00001.mp4", "BR D/VO-BRD-00001.mp4"], "BR D", Rules())


def test_configured_extensions_and_folder_types_shape_the_pattern() -> None:
    rules = Rules(allowed_extensions=frozenset({".mp4", ".md5"}), folder_types=RULES.folder_types)
    keys = [k for k in TRICKY_KEYS if k.startswith("FILE/")]
    _compare(keys, "FILE", rules)
