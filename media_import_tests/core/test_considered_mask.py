"""The vectorised `considered_mask` and `folders_of` agree with judge_key, key for key."""

import random

import pyarrow as pa
import pytest

from media_import.core.inventory import (
    Outcome,
    Rules,
    considered_mask,
    folder_of,
    folders_of,
    judge_key,
)

TRICKY_KEYS = [
    "BRD/VO-BRD-00012.mp4",
    "BRD/VO-BRD-00012.MP4",
    "BRD/VO-BRD-00012.Json",
    "BRD/not-a-code.pdf",  # rejected, so considered
    "BRD/VO-BRD-00012.mp4.txt",
    "BRD/VO-BRD-00012.txt.mp4",
    "BRD/VO-BRD-00012",
    "BRD/VO-BRD-00012.",
    "BRD/.mp4",
    "BRD/..mp4",
    "BRD/sub/.mp4",
    "BRD/sub/.x.mp4",
    "BRD/a.b/c",
    "BRD/a.b/c.pdf",
    "BRD/VO-BRD-00012.pdf/",
    "BRD/",
    "BRD//VO-BRD-00012.pdf",
    "/BRD/VO-BRD-00012.pdf",
    "VO-BRD-00012.pdf",
    ".pdf",
    "",
    "BRD/VO-BRD-00012.mp4\n",
    "BRD/VO-BRD-00012\n.mp4",
    "BR\nD/VO-BRD-00012.mp4",
    "BR\tD/VO-BRD-00012.mp4",
    "BRD/VO-BRD-00012.m\\p4",
    "èBRD/VO-BRD-00012.mp4",
    "BRD/èVO-BRD-00012.mp4",
    "BRD/VO-BRD-00012.mp4é",
    "BRD/VO-BRD-00012.\u212a",  # KELVIN SIGN: Python lower-cases it to ASCII "k"
    "BRD/VO-BRD-00012.\u0130",  # Python lower-cases it to two characters, Arrow to one
    "BRD/VO-BRD-00012.PDF\u0130",
    "TEST-FOLDER-DEV/VO-BRD-00012.mp4",
    "TEST-FOLDER-DEV2/VO-BRD-00012.mp4",
    "UMT/x.pdf",
    "BRD/UMT/x.pdf",
    "umt/x.pdf",
    "BRD/x.jpg",
    "BRD/x.md5",
    "BRD/x.mp3",
]


def _check(keys: list[str], rules: Rules) -> None:
    array = pa.array(keys, pa.string())
    got = considered_mask(array, rules).to_pylist()
    want = [judge_key(k, rules).outcome is not Outcome.IGNORED for k in keys]
    assert [k for k, g, w in zip(keys, got, want, strict=True) if g != w] == []
    assert folders_of(array).to_pylist() == [folder_of(k) for k in keys]


@pytest.mark.parametrize(
    "rules",
    [
        Rules(),
        Rules(allowed_extensions=frozenset({".pdf"}), excluded_folders=frozenset({"BRD"})),
        Rules(allowed_extensions=frozenset(), excluded_folders=frozenset()),
    ],
)
def test_tricky_keys_are_judged_as_judge_key_does(rules: Rules) -> None:
    _check(TRICKY_KEYS, rules)


def test_random_keys_over_the_delimiters_are_judged_as_judge_key_does() -> None:
    # Keys built from folders, path segments and endings that sit on each rule's edge.
    rng = random.Random(7)
    parts = ["BRD", "UMT", "TEST-FOLDER-DEV", "", ".", "a.b", "é", "\n", "x\t", "\u212a", "\\"]
    endings = [".mp4", ".PDF", ".Json", ".md5", ".mp3", ".jpg", "", ".", ".\u212aey", ".mp4\n"]
    keys = [
        "/".join(rng.choices(parts, k=rng.randint(0, 4))) + rng.choice(endings)
        for _ in range(20_000)
    ]
    considered = considered_mask(pa.array(keys, pa.string()), Rules()).to_pylist()
    assert 2_000 < sum(considered) < 18_000  # both verdicts are well represented
    _check(keys, Rules())


def test_an_empty_array_and_a_sliced_one() -> None:
    assert considered_mask(pa.array([], pa.string()), Rules()).to_pylist() == []
    sliced = pa.array(["x/y.txt", "BRD/a.pdf", "BRD/b.\u0130", "c"], pa.string()).slice(1, 2)
    assert considered_mask(sliced, Rules()).to_pylist() == [True, False]
