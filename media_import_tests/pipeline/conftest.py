"""Pipeline fixtures: the real Dagster job against the test's PostgreSQL database and S3 bucket.

`pipeline` builds the definitions after the environment points at this test's bucket and
database (`s3_env`), runs the `import_folder` job in process on an ephemeral Dagster instance,
and offers small readers for the run's events and the catalog's tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from media_import.core.partition_keys import folder_to_partition_key
from media_import.samples.archive import load_manifest, sample_files_dir

IMPORT_JOB = "import_folder"
SAMPLES = sample_files_dir()


# -- building a valid asset's objects from the real samples ------------------------------------


def sample_bytes(relative: str) -> bytes:
    return (SAMPLES / relative).read_bytes()


def master(name: str) -> dict[str, Any]:
    """A manifest "masters" entry by name (quicktime_mov, mp4_video, wav, flac, ...)."""
    return next(m for m in load_manifest()["masters"] if m["name"] == name)


def streaming_body(kind: str) -> bytes:
    """The real streaming copy: kind "V" (.mp4) or "A" (.mp3)."""
    media = "video" if kind == "V" else "audio"
    return sample_bytes(load_manifest()["streaming"][media]["path"])


def qc_pdf() -> bytes:
    return sample_bytes(load_manifest()["qc_report"]["path"])


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def master_name(code: str, entry: dict[str, Any]) -> str:
    suffix = Path(entry["filename"]).suffix
    streaming_ext = ".mp4" if code[0] == "V" else ".mp3"
    return f"{code}_master{suffix}" if suffix == streaming_ext else f"{code}{suffix}"


def sidecar_json(code: str, entry: dict[str, Any], tool: str = "ffprobe") -> bytes:
    """The master's real ffprobe/mediainfo output, only the recorded file name rewritten."""
    document = json.loads(sample_bytes(entry[tool]))
    if tool == "ffprobe":
        document["format"]["filename"] = master_name(code, entry)
    else:
        document["media"]["@ref"] = master_name(code, entry)
    return json.dumps(document, indent=2).encode()


def md5_lines(pairs: Iterable[tuple[str, str]]) -> bytes:
    """md5sum text mode: `<hex>  <name>` lines."""
    return "".join(f"{digest}  {name}\n" for digest, name in pairs).encode()


@dataclass(frozen=True)
class AssetFiles:
    """One inventory code's objects, as uploaded to the bucket."""

    folder: str
    code: str
    master: dict[str, Any]
    objects: dict[str, bytes]  # key -> body

    @property
    def master_filename(self) -> str:
        return master_name(self.code, self.master)

    def key(self, suffix: str) -> str:
        return f"{self.folder}/{self.code}{suffix}"

    @property
    def streaming_key(self) -> str:
        return self.key(".mp4" if self.code[0] == "V" else ".mp3")

    def items(self, *suffixes: str) -> list[tuple[str, bytes]]:
        """The (key, body) pairs, all of them or only those whose key ends with a suffix."""
        return [(k, b) for k, b in self.objects.items() if not suffixes or k.endswith(suffixes)]


def make_asset(
    folder: str,
    code: str,
    master_sample: str | None = None,
    *,
    tool: str = "ffprobe",
    pdf: bool = True,
    list_streaming: bool = True,
) -> AssetFiles:
    """A complete valid asset: streaming copy, .json of the master, .md5 (master + streaming
    copy), and a QC .pdf."""
    entry = master(master_sample or ("quicktime_mov" if code[0] == "V" else "wav"))
    streaming = streaming_body(code[0])
    ext = ".mp4" if code[0] == "V" else ".mp3"
    listed = [(entry["md5"], master_name(code, entry))]
    if list_streaming:
        listed.append((md5_hex(streaming), f"{code}{ext}"))
    objects = {
        f"{folder}/{code}{ext}": streaming,
        f"{folder}/{code}.json": sidecar_json(code, entry, tool),
        f"{folder}/{code}.md5": md5_lines(listed),
    }
    if pdf:
        objects[f"{folder}/{code}.pdf"] = qc_pdf()
    return AssetFiles(folder, code, entry, objects)


# -- running the job -------------------------------------------------------------------------


class Run:
    """One run's result, with readers for what the tests assert on."""

    def __init__(self, result: dg.ExecuteInProcessResult) -> None:
        self.result = result

    @property
    def success(self) -> bool:
        return self.result.success

    @property
    def run_id(self) -> str:
        return self.result.run_id

    def metadata(self, asset: str) -> dict[str, Any]:
        """The asset's materialization metadata, as plain values (one partition per run)."""
        mats = [
            e.event_specific_data.materialization  # type: ignore[union-attr]
            for e in self.result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.event_specific_data.materialization.asset_key  # type: ignore[union-attr]
            == dg.AssetKey(asset)
        ]
        assert len(mats) == 1, f"{asset}: {len(mats)} materializations"
        return {k: v.value for k, v in mats[0].metadata.items()}

    def materialized(self) -> set[str]:
        return {
            e.event_specific_data.materialization.asset_key.to_user_string()  # type: ignore[union-attr]
            for e in self.result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
        }

    def checks(self) -> dict[str, dg.AssetCheckEvaluation]:
        evaluations = self.result.get_asset_check_evaluations()
        by_name = {e.check_name: e for e in evaluations}
        assert len(by_name) == len(evaluations), "a check was evaluated twice"
        return by_name

    def check_metadata(self, name: str) -> dict[str, Any]:
        return {k: v.value for k, v in self.checks()[name].metadata.items()}

    def step_succeeded(self, asset: str) -> bool:
        return any(
            e.event_type_value == "STEP_SUCCESS" and e.step_key == asset
            for e in self.result.all_events
        )

    def step_failures(self) -> dict[str, str]:
        """step key -> the failure's description (or message)."""
        out = {}
        for e in self.result.all_events:
            if e.event_type_value == "STEP_FAILURE":
                error = e.step_failure_data.error  # type: ignore[union-attr]
                user = e.step_failure_data.user_failure_data  # type: ignore[union-attr]
                out[e.step_key or ""] = (user.description if user else None) or (
                    error.message if error else ""
                )
        return out

    def step_started(self, asset: str) -> bool:
        return any(
            e.event_type_value == "STEP_START" and e.step_key == asset
            for e in self.result.all_events
        )


class Pipeline:
    """The project's definitions and job, run against this test's bucket and database."""

    def __init__(self, instance: dg.DagsterInstance, database_url: str) -> None:
        self.instance = instance
        self.database_url = database_url
        self._defs: dg.Definitions | None = None

    @property
    def defs(self) -> dg.Definitions:
        if self._defs is None:
            from media_import.definitions import build_definitions

            self._defs = build_definitions()
        return self._defs

    def rebuild(self) -> None:
        """Build the definitions again (after changing the environment)."""
        self._defs = None

    def run(self, folder: str, **settings: Any) -> Run:
        """Run the import job for one folder; `settings` override ImportSettings fields."""
        from media_import.defs.importing.partitions import register_folders

        register_folders(self.instance, [folder])
        run_config = {"resources": {"import_settings": {"config": settings}}} if settings else None
        job = self.defs.resolve_job_def(IMPORT_JOB)
        result = job.execute_in_process(
            instance=self.instance,
            partition_key=folder_to_partition_key(folder),
            raise_on_error=False,
            run_config=run_config,
        )
        return Run(result)

    # -- the catalog -------------------------------------------------------------------------

    def query(self, sql: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def count(self, table: str) -> int:
        return self.query(f"SELECT count(*) FROM {table}")[0][0]

    def dump(self, table: str) -> list[tuple]:
        """Every row and column of a table, in id order (for before/after comparisons)."""
        return self.query(f"SELECT * FROM {table} ORDER BY id")

    def assets(self) -> dict[str, dict[str, Any]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute("SELECT * FROM asset ORDER BY inventory_code")
            names = [c.name for c in cur.description or []]
            return {row[1]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}

    def files(self) -> dict[str, dict[str, Any]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cur = conn.execute("SELECT * FROM asset_file ORDER BY key")
            names = [c.name for c in cur.description or []]
            return {row[2]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}

    def rejections(self, open_only: bool = True) -> dict[str, set[str]]:
        """key -> rules of its (open) rejections."""
        where = " WHERE resolved_at IS NULL" if open_only else ""
        out: dict[str, set[str]] = {}
        for key, rule in self.query(f"SELECT key, rule FROM rejection{where}"):
            out.setdefault(key, set()).add(rule)
        return out


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def pipeline(s3_env: dict[str, str], database_url: str, instance: dg.DagsterInstance) -> Pipeline:
    return Pipeline(instance, database_url)
