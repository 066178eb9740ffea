"""What an operator does to the demo bucket while the demo runs: upload an asset, remove one.

The demo writes where its S3 server listens to `.demo/s3.json` (and removes it when it stops);
these commands read it, so they work from another terminal with no settings. Uploads draw
their codes from a sequence seeded by the folder, so the same steps on a fresh demo upload the
same codes (the README's walkthrough names them).
"""

from __future__ import annotations

import json
import random
import re
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from media_import.core.inventory import INVENTORY_CODE_RE, Outcome, Rules, judge_key
from media_import.devstack.s3server import s3_client
from media_import.samples.archive import sample_asset
from media_import.settings import (
    SettingsError,
    allowed_extensions,
    build_rules,
    excluded_folders,
    folder_types_text,
)

STATE_FILE = Path(".demo") / "s3.json"
TYPE_RE = re.compile(r"^[A-Z0-9]{3}$")  # a code's type segment
START_HINT = "start it with `./dev demo` (in this folder)"


class DemoError(SettingsError):
    """Why a demo command cannot do what was asked; one line, exit status 2."""


@dataclass(frozen=True)
class DemoBucket:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def save(self, root: Path) -> None:
        (root / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @staticmethod
    def forget(root: Path) -> None:
        (root / STATE_FILE).unlink(missing_ok=True)

    @classmethod
    def load(cls, root: Path) -> DemoBucket:
        """The running demo's bucket; a state file left by a demo that died is no demo."""
        path = root / STATE_FILE
        if not path.exists():
            raise DemoError(f"no running demo found ({STATE_FILE} is missing): {START_HINT}")
        demo = cls(**json.loads(path.read_text()))
        if not _answers(demo.endpoint_url):
            raise DemoError(
                f"no running demo found: nothing answers at {demo.endpoint_url}, where "
                f"{STATE_FILE} says its S3 server was: {START_HINT}"
            )
        return demo

    def client(self) -> Any:
        return s3_client(self.endpoint_url, self.region, self.access_key, self.secret_key)


def _answers(endpoint_url: str) -> bool:
    parts = urlsplit(endpoint_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 2):
            return True
    except OSError:
        return False


def demo_rules() -> Rules:
    """The rules the demo's import applies (the environment's, as the demo passes it on)."""
    return build_rules(excluded_folders(), allowed_extensions(), folder_types_text())


def upload_asset(
    root: Path, folder: str, code_type: str | None = None, force: bool = False
) -> list[str]:
    """Upload a new complete asset into `folder` under a code not used yet; returns its keys.
    Refuses (DemoError) a folder whose files the import would reject or ignore, unless
    `force`."""
    rules = demo_rules()
    # A folder holds its own type (BRD/) or the one ACH_FOLDER_TYPES maps it to (FILE/: FIL);
    # elsewhere the name's first three letters make a code its files are rejected under.
    code_type = code_type or _type_for(folder, rules) or folder[:3].upper()
    if not force:
        _refuse_unless_importable(folder, code_type, rules)
    demo = DemoBucket.load(root)
    with _s3_errors(demo):
        client = demo.client()
        code = next_code(folder, code_type, _codes_in(client, demo.bucket, folder))
        rng = random.Random(code)
        objects = sample_asset(folder, code, seed=rng.randrange(1000))
        for o in objects:
            client.put_object(Bucket=demo.bucket, Key=o.key, Body=o.body)
    return [o.key for o in objects]


def remove_objects(root: Path, target: str) -> list[str]:
    """Remove a key, or every object of an inventory code; returns the keys removed."""
    demo = DemoBucket.load(root)
    with _s3_errors(demo):
        client = demo.client()
        if INVENTORY_CODE_RE.match(target):
            keys = _keys_of_code(client, demo.bucket, target)
            if not keys:
                raise DemoError(f"no object of {target} in s3://{demo.bucket}")
        else:
            if not _exists(client, demo.bucket, target):
                raise DemoError(
                    f"no object {target!r} in s3://{demo.bucket} (give a key such as "
                    "BRD/VO-BRD-00001.json, or an inventory code to remove all its files)"
                )
            keys = [target]
        for key in keys:
            client.delete_object(Bucket=demo.bucket, Key=key)
    return keys


def _type_for(folder: str, rules: Rules) -> str | None:
    allowed = [t for t in rules.types_allowed_in(folder) if TYPE_RE.match(t)]
    return allowed[0] if len(allowed) == 1 else None


def _refuse_unless_importable(folder: str, code_type: str, rules: Rules) -> None:
    code = f"VO-{code_type}-00001"
    if not INVENTORY_CODE_RE.match(code):
        raise DemoError(f"{code_type!r} is not a code type (three capital letters or digits)")
    verdict = judge_key(f"{folder}/{code}.mp4", rules)
    if verdict.outcome is Outcome.VALID:
        return
    what = (
        f"ignored ({verdict.ignored_because})"
        if verdict.outcome is Outcome.IGNORED
        else f"rejected ({verdict.rule}: {verdict.message})"
    )
    raise DemoError(
        f"files uploaded to {folder}/ would all be {what}, and {folder} would become a "
        "partition of rejects; add --force to upload them anyway"
    )


def next_code(folder: str, code_type: str, used: set[str]) -> str:
    """The code the next upload into `folder` takes: the first of a seeded sequence unused."""
    rng = random.Random(f"{folder}:{code_type}")  # the same codes, in order, on every demo
    for _ in range(1000):
        code = f"VO-{code_type}-{rng.randrange(1, 100_000):05d}"
        if code not in used:
            return code
    raise DemoError(f"no unused code of type {code_type} found in {folder}/")


@contextmanager
def _s3_errors(demo: DemoBucket) -> Iterator[None]:
    """A failed S3 request as one line (the demo's server stopped meanwhile, say)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise DemoError(f"the demo's S3 server at {demo.endpoint_url} failed: {exc}") from None


def _exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _keys(client: Any, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _keys_of_code(client: Any, bucket: str, code: str) -> list[str]:
    return [k for k in _keys(client, bucket) if k.rsplit("/", 1)[-1].startswith(code)]


def _codes_in(client: Any, bucket: str, folder: str) -> set[str]:
    return codes_of(_keys(client, bucket, f"{folder}/"))


def codes_of(keys: Iterable[str]) -> set[str]:
    """The inventory codes (first 12 characters of the file names) of `keys`."""
    return {k.rsplit("/", 1)[-1][:12] for k in keys}
