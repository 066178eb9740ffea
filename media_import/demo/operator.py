"""What an operator does to the demo bucket while the demo runs: upload an asset, remove a file.

The demo writes where its S3 server listens to `.demo/s3.json`; these commands read it, so
they work from another terminal with no settings.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_import.core.inventory import INVENTORY_CODE_RE
from media_import.devstack.s3server import s3_client
from media_import.samples.archive import sample_asset

STATE_FILE = Path(".demo") / "s3.json"


@dataclass(frozen=True)
class DemoBucket:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def save(self, root: Path) -> None:
        (root / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, root: Path) -> DemoBucket:
        path = root / STATE_FILE
        if not path.exists():
            raise SystemExit(f"no running demo found ({path} is missing): start `./dev demo`")
        return cls(**json.loads(path.read_text()))

    def client(self) -> Any:
        return s3_client(self.endpoint_url, self.region, self.access_key, self.secret_key)


def upload_asset(root: Path, folder: str, code_type: str | None = None) -> list[str]:
    """Upload a new complete asset into `folder` under a code not used yet; returns its keys."""
    demo = DemoBucket.load(root)
    client = demo.client()
    code_type = code_type or folder[:3].upper()
    used = _codes_in(client, demo.bucket, folder)
    rng = random.Random()
    code = next(
        c
        for c in (f"VO-{code_type}-{rng.randrange(1, 100_000):05d}" for _ in range(1000))
        if c not in used
    )
    if not INVENTORY_CODE_RE.match(code):
        raise SystemExit(f"{code_type!r} is not a code type (three letters or digits)")
    objects = sample_asset(folder, code, seed=rng.randrange(1000))
    for o in objects:
        client.put_object(Bucket=demo.bucket, Key=o.key, Body=o.body)
    return [o.key for o in objects]


def remove_object(root: Path, key: str) -> None:
    demo = DemoBucket.load(root)
    client = demo.client()
    client.head_object(Bucket=demo.bucket, Key=key)  # a clear error when there is no such key
    client.delete_object(Bucket=demo.bucket, Key=key)


def _codes_in(client: Any, bucket: str, folder: str) -> set[str]:
    codes = set()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{folder}/"
    ):
        codes.update(o["Key"].split("/", 1)[1][:12] for o in page.get("Contents", []))
    return codes
