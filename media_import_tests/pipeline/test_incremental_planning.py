"""Incremental planning (media_import.db.scope): after an import, a folder's phase 2 and insert
step read only the key ranges restaged since, and decide exactly what a whole-folder pass does.

The phases run against a real PostgreSQL and S3 over HTTP (moto), twice side by side: in one
database as they do, in another with every plan made over the whole folder. Ranges of two
keys make a few assets span many ranges."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from media_import.core.inventory import Rules
from media_import.core.storage import Bucket, S3Config
from media_import.db.migrate import migrate
from media_import.db.scope import merge_ranges
from media_import.phases import Plan, discover_folder, import_folder, plan_folder
from media_import_tests.conftest import PgServer, _drop_database
from media_import_tests.pipeline.conftest import make_asset, qc_pdf

FOLDER = "BRD"
RANGE_KEYS = 2


@pytest.fixture
def storage(s3_server: Any, bucket: str) -> Bucket:
    t = s3_server
    return Bucket(S3Config(bucket, t.endpoint_url, t.region, t.access_key, t.secret_key))


def _connect(url: str) -> psycopg.Connection:
    migrate(url)
    return psycopg.connect(url, autocommit=True)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with _connect(database_url) as connection:
        yield connection


@pytest.fixture
def whole_conn(pg_server: PgServer) -> Iterator[psycopg.Connection]:
    """A second database, where every plan is made over the whole folder."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        with _connect(pg_server.url(name)) as connection:
            yield connection
    finally:
        _drop_database(pg_server.admin_url, name)


def run_folder(storage: Bucket, conn: psycopg.Connection, whole: bool = False) -> Plan:
    """Discovery, phase 2 and the insert step of the folder, as a run does them."""
    discover_folder(storage, conn, FOLDER, Rules(), range_keys=RANGE_KEYS)
    if whole:  # as if the catalog had changed behind the folder's back
        conn.execute("UPDATE ingest.catalog_state SET synced_epoch = NULL")
    plan = plan_folder(storage, conn, FOLDER)
    import_folder(conn, storage.name, FOLDER, f"run-{uuid.uuid4().hex[:8]}", dry_run=False)
    return plan


def state(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """The catalog, the open rejections and the kept plans: all a plan decides."""
    queries = {
        "assets": "SELECT inventory_code, deleted_at IS NULL, deleted_reason, master_md5"
        " FROM asset ORDER BY 1",
        "files": "SELECT key, inventory_code, role, etag, md5, md5_verified,"
        " deleted_at IS NULL, deleted_reason FROM asset_file ORDER BY 1",
        "rejections": "SELECT key, rule FROM rejection WHERE resolved_at IS NULL ORDER BY 1, 2",
        "kept": "SELECT inventory_code, decision, missing FROM ingest.pending_asset ORDER BY 1",
    }
    return {name: conn.execute(q).fetchall() for name, q in queries.items()}


def rejected_asset(code: str) -> list[tuple[str, bytes]]:
    """A complete asset whose .json does not parse: rejected, and planned again every run."""
    asset = make_asset(FOLDER, code)
    return [(k, b"{not json" if k == asset.key(".json") else v) for k, v in asset.items()]


def test_scoped_plans_decide_what_whole_folder_plans_do(
    storage: Bucket,
    conn: psycopg.Connection,
    whole_conn: psycopg.Connection,
    put_many: Any,
    s3: Any,
    bucket: str,
) -> None:
    assets = [make_asset(FOLDER, f"VO-BRD-{n:05d}") for n in range(1, 7)]
    waiting = make_asset(FOLDER, "VO-BRD-00007")  # its streaming copy comes later
    late = make_asset(FOLDER, "VO-BRD-00009")
    put_many([kv for a in assets for kv in a.items()])
    put_many([(k, v) for k, v in waiting.items() if k != waiting.streaming_key])
    put_many(rejected_asset("VO-BRD-00008"))

    def step(expect_scoped: bool) -> Plan:
        plan = run_folder(storage, conn)
        run_folder(storage, whole_conn, whole=True)
        assert (plan.ranges_read is not None) is expect_scoped
        assert state(conn) == state(whole_conn)
        assert conn.execute("SELECT count(*) FROM ingest.restaged_range").fetchone() == (0,)
        return plan

    first = step(expect_scoped=False)  # a first import reads the whole folder
    assert first.new_files == 6 * 4 + 3 + 4

    put_many(late.items())  # a new asset at the folder's end
    plan = step(expect_scoped=True)
    # And, as every run, the kept plans' files: the waiting asset's and the rejected one's.
    assert plan.new_files == 4 + 3 + 4
    assert plan.ranges_read == 1  # of the folder's ~20: the end, where the new keys are

    put_many([(waiting.streaming_key, waiting.objects[waiting.streaming_key])])
    step(expect_scoped=True)  # the waiting asset, in an unchanged range, is imported
    assert [k[:2] for k in state(conn)["kept"]] == [("VO-BRD-00008", "rejected")]

    s3.delete_object(Bucket=bucket, Key=assets[2].streaming_key)  # the asset goes with it
    s3.put_object(Bucket=bucket, Key=assets[4].key(".pdf"), Body=qc_pdf() + b"\n%%v2")
    step(expect_scoped=True)
    files = {r[0]: r for r in state(conn)["files"]}
    assert files[assets[2].key(".json")][6:] == (False, "asset_removed")
    assert files[assets[4].key(".pdf")][6] is True  # replaced: soft-deleted, then restored

    nothing = step(expect_scoped=True)
    # No range to read; the kept plans still are: the rejected asset, and the collaterals of
    # the asset whose streaming copy went, waiting for it again.
    assert (nothing.ranges_read, nothing.new_files) == (0, 4 + 3)


def test_a_write_to_the_catalog_by_hand_has_the_folder_planned_whole(
    storage: Bucket, conn: psycopg.Connection, put_many: Any
) -> None:
    asset = make_asset(FOLDER, "VO-BRD-00001")
    put_many([*asset.items(), *make_asset(FOLDER, "VO-BRD-00002").items()])
    run_folder(storage, conn)
    # Nothing in the bucket changed, so no range was restaged: a scoped plan would not see
    # this file. The epoch moved, so the whole folder is compared again and the file restored.
    conn.execute(
        "UPDATE asset_file SET deleted_at = now(), deleted_reason = 'removed' WHERE key = %s",
        (asset.key(".pdf"),),
    )
    plan = run_folder(storage, conn)
    assert plan.ranges_read is None and plan.new_files == 1
    assert conn.execute(
        "SELECT deleted_at IS NULL FROM asset_file WHERE key = %s", (asset.key(".pdf"),)
    ).fetchone() == (True,)
    assert run_folder(storage, conn).ranges_read == 0  # in step again


def test_a_crash_emptying_the_unlogged_state_has_the_folder_planned_whole(
    storage: Bucket, conn: psycopg.Connection, put_many: Any
) -> None:
    put_many([*make_asset(FOLDER, "VO-BRD-00001").items(), *rejected_asset("VO-BRD-00002")])
    run_folder(storage, conn)
    # Crash recovery empties unlogged tables: the kept plans and the catalog state together.
    conn.execute("TRUNCATE ingest.pending_asset, ingest.pending_file, ingest.catalog_state")
    plan = run_folder(storage, conn)
    assert plan.ranges_read is None
    assert [(p.inventory_code, p.decision.value) for p in plan.plans] == [
        ("VO-BRD-00002", "rejected")
    ]


def test_a_write_between_a_plan_and_its_import_leaves_the_folder_out_of_step(
    storage: Bucket, conn: psycopg.Connection, put_many: Any
) -> None:
    first = make_asset(FOLDER, "VO-BRD-00001")
    put_many(first.items())
    run_folder(storage, conn)
    put_many(make_asset(FOLDER, "VO-BRD-00002").items())
    discover_folder(storage, conn, FOLDER, Rules(), range_keys=RANGE_KEYS)
    assert plan_folder(storage, conn, FOLDER).ranges_read is not None
    # Another writer changes the folder's catalog rows after the plan read the catalog.
    conn.execute("UPDATE asset_file SET md5_verified = true WHERE key = %s", (first.key(".pdf"),))
    import_folder(conn, storage.name, FOLDER, "run-2", dry_run=False)
    in_step = conn.execute("SELECT epoch = synced_epoch FROM ingest.catalog_state").fetchone()
    assert in_step == (None,)
    assert run_folder(storage, conn).ranges_read is None


def test_merged_ranges_are_disjoint_and_in_key_order() -> None:
    assert merge_ranges([]) == []
    assert merge_ranges([("b", "d"), (None, "a"), ("c", "f"), ("f", "g")]) == [
        (None, "a"),
        ("b", "g"),
    ]
    assert merge_ranges([("m", None), (None, "c"), ("x", "z")]) == [(None, "c"), ("m", None)]
    assert merge_ranges([(None, "a"), (None, "c")]) == [(None, "c")]
    assert merge_ranges([("a", "b"), ("a", "b")]) == [("a", "b")]
    # S3's order is the bytes', which Python's code point order agrees with.
    assert merge_ranges([("é", "ü"), ("z", "é")]) == [("z", "ü")]
