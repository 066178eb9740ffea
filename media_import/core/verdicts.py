"""Phase 1 rules over a whole listing page at once (Arrow), for discovery.

`judge_key` stays the one statement of the rules. This module only takes a shortcut for the
keys that plainly pass them, which in a real archive are nearly all: one RE2 pattern, built
from the same `Rules`, recognises a valid key of the folder and extracts its inventory code and
extension, vectorised. Every other key (ignored, rejected, anything unusual) is judged by
`judge_key` itself, one by one, so the two cannot disagree on a verdict or a message; a parity
test checks that the pattern never accepts a key `judge_key` would not.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from media_import.core.inventory import ROLE_BY_EXTENSION, Outcome, Rules, is_excluded, judge_key

# A folder or type spelled only with these is safe to put into a pattern as it is.
_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")
_TYPE = re.compile(r"^[A-Z0-9]{3}$")

VERDICT_FIELDS = ("considered", "inventory_code", "role", "rule", "message")


def plainly_valid_pattern(folder: str, rules: Rules) -> str | None:
    """An RE2 pattern matching the keys of `folder` that `judge_key` finds valid, with groups
    `code` and `ext`; None when the folder cannot be put in a pattern safely (every key then
    goes through `judge_key`)."""
    if is_excluded(folder, rules) or not _PLAIN.match(folder):
        return None
    types = sorted(t for t in rules.types_allowed_in(folder) if _TYPE.match(t))
    extensions = sorted(_ascii_any_case(e[1:]) for e in rules.allowed_extensions)
    if not types or not extensions:
        return None
    # The file name is what follows the last "/"; it starts with the code and ends with an
    # allowed extension after its last dot (an extension has no dot, so ".mp4$" is the last).
    return (
        rf"^{folder}/(?:[^/]*/)*"
        rf"(?P<code>[VA][OC]-(?:{'|'.join(types)})-[0-9]{{5}})"
        rf"[^/]*\.(?P<ext>{'|'.join(extensions)})$"
    )


def _ascii_any_case(extension: str) -> str:
    # Not RE2's (?i): its Unicode case folding matches U+017F (long s) for "s", which Python's
    # str.lower() in judge_key leaves alone. Only the ASCII cases, spelled out.
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in extension)


@dataclass
class Judged:
    """A page's verdict columns (aligned with its keys) and what the slow path ignored."""

    columns: dict[str, pa.Array]
    ignored: Counter[str]

    @property
    def considered(self) -> pa.BooleanArray:
        return self.columns["considered"]  # type: ignore[return-value]


def judge_page(keys: pa.StringArray, folder: str, rules: Rules) -> Judged:
    """Verdict columns for one page of `folder`'s keys: considered (not ignored),
    inventory_code, role, rule and message (both null when valid)."""
    n = len(keys)
    pattern = plainly_valid_pattern(folder, rules)
    if pattern is None:
        fast = pa.repeat(False, n)
        codes = roles = pa.nulls(n, pa.string())
    else:
        parts = pc.extract_regex(keys, pattern)
        fast = pc.is_valid(parts)
        codes = pc.if_else(fast, pc.struct_field(parts, "code"), None)
        roles = _roles(pc.utf8_lower(pc.struct_field(parts, "ext")), fast)
    columns = {
        "considered": fast,
        "inventory_code": codes,
        "role": roles,
        "rule": pa.nulls(n, pa.string()),
        "message": pa.nulls(n, pa.string()),
    }
    ignored: Counter[str] = Counter()
    slow = pc.invert(fast)
    if pc.any(slow).as_py():
        _judge_slowly(columns, slow, pc.filter(keys, slow).to_pylist(), rules, ignored)
    return Judged(columns, ignored)


def _roles(extensions: pa.StringArray, fast: pa.BooleanArray) -> pa.StringArray:
    known = pa.array([e[1:] for e in ROLE_BY_EXTENSION])
    names = pa.array([role.value for role in ROLE_BY_EXTENSION.values()])
    found = pc.take(names, pc.index_in(extensions, value_set=known))
    return pc.if_else(fast, found, None)


def _judge_slowly(
    columns: dict[str, pa.Array],
    slow: pa.BooleanArray,
    keys: list[str],
    rules: Rules,
    ignored: Counter[str],
) -> None:
    """Judge the keys the pattern did not take with `judge_key`, and put their verdicts in."""
    verdicts = [judge_key(key, rules) for key in keys]
    for v in verdicts:
        if v.outcome is Outcome.IGNORED:
            ignored[v.ignored_because or "ignored"] += 1
    values = {
        "considered": [v.outcome is not Outcome.IGNORED for v in verdicts],
        "inventory_code": [v.inventory_code for v in verdicts],
        "role": [v.role.value if v.role else None for v in verdicts],
        "rule": [v.rule.value if v.rule else None for v in verdicts],
        "message": [v.message for v in verdicts],
    }
    for name, replacement in values.items():
        column = columns[name]
        columns[name] = pc.replace_with_mask(column, slow, pa.array(replacement, column.type))
