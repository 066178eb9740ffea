"""All SQL of the import: set-based, one statement per step, COPY for bulk loads.

Every write of a folder's state takes a transaction-level advisory lock on (bucket, folder):
two runs of one folder at once then serialise on their writes instead of interleaving, and
unique keys with ON CONFLICT make the second one a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
import psycopg
import pyarrow as pa

from media_import.core.assembly import AssetPlan, Candidate, FilePlan
from media_import.core.inventory import Role
from media_import.db.arrow_csv import read_times_as_utc, to_csv
from media_import.db.scope import Scope, mark_importing, removal_scope

# Tables just bulk-loaded have no statistics until autovacuum gets to them, and the planner
# then takes them for near-empty: its nested loops over two 60k-row folders cost minutes.
# Sampling them after a large load costs tens of milliseconds.
ANALYZE_AFTER_ROWS = 2_000


def analyze_if_large(conn: psycopg.Connection, table: str, rows: int) -> None:
    if rows >= ANALYZE_AFTER_ROWS:
        conn.execute(f"ANALYZE {table}")


def lock_folder(conn: psycopg.Connection, bucket: str, folder: str) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{bucket}/{folder}",))


# -- phase 2: what the catalog does not hold yet ------------------------------------------------

# Live catalog files of the folder that its latest listing no longer backs: gone from the
# bucket, or overwritten with other bytes (another ETag or size). Losing its streaming copy or
# its .json takes the whole asset with it, as the original events handler removed the essence
# with every collateral; here that is a soft delete, undone by a re-upload.
_GONE_FILE_CTE = """
listed AS (
    SELECT key, etag, size_bytes FROM ingest.listing
    WHERE bucket = %(bucket)s AND folder = %(folder)s
), gone_file AS (
    SELECT af.id, af.key, af.inventory_code, af.role,
           CASE WHEN l.key IS NULL THEN 'removed' ELSE 'replaced' END AS reason
    FROM asset_file af LEFT JOIN listed l ON l.key = af.key
    WHERE af.bucket = %(bucket)s AND af.folder = %(folder)s AND af.deleted_at IS NULL
      AND (l.key IS NULL OR l.etag IS DISTINCT FROM af.etag OR l.size_bytes <> af.size_bytes)
)
"""
_GONE_ASSET_CTE = """
gone_asset AS (
    -- 'streaming_copy' sorts after 'metadata': name the streaming copy when both went.
    SELECT DISTINCT ON (inventory_code) inventory_code, role || ' ' || reason AS reason
    FROM gone_file WHERE role IN ('streaming_copy', 'metadata')
    ORDER BY inventory_code, role DESC
)
"""
_GONE_CTES = f"{_GONE_FILE_CTE}, {_GONE_ASSET_CTE}"

# The same, scoped (media_import.db.scope): only the folder's restaged key ranges are read,
# each through the (bucket, key) indexes. %(afters)s and %(uptos)s are the ranges' bounds,
# disjoint; NULL is the folder's start or end, "<folder>/" and "<folder>0" bounding it.
_SCOPE_CTE = """
scope AS (
    SELECT coalesce(after, '') AS after, coalesce(upto, %(folder)s || '0') AS upto
    FROM unnest(%(afters)s::text[], %(uptos)s::text[]) AS s(after, upto)
)
"""
_SCOPED_GONE_FILE_CTE = f"""
{_SCOPE_CTE}, listed AS (
    -- LATERAL: one index range scan per range. Joined plainly, the planner scanned the whole
    -- folder once and filtered it against each range (~85 ms a 63k-key folder at 1M).
    SELECT l.* FROM scope s CROSS JOIN LATERAL (
        SELECT key, etag, size_bytes, considered, rule, inventory_code FROM ingest.listing
        WHERE bucket = %(bucket)s AND key > s.after AND key <= s.upto
          AND key >= %(folder)s || '/' AND key < %(folder)s || '0' AND folder = %(folder)s
        OFFSET 0  -- kept a subquery: flattened, it is planned as the plain join
    ) l
), live AS (
    SELECT af.* FROM scope s CROSS JOIN LATERAL (
        SELECT id, key, inventory_code, role, etag, size_bytes FROM asset_file
        WHERE bucket = %(bucket)s AND key > s.after AND key <= s.upto
          AND key >= %(folder)s || '/' AND key < %(folder)s || '0'
          AND folder = %(folder)s AND deleted_at IS NULL
        OFFSET 0
    ) af
), gone_file AS (
    SELECT af.id, af.key, af.inventory_code, af.role,
           CASE WHEN l.key IS NULL THEN 'removed' ELSE 'replaced' END AS reason
    FROM live af LEFT JOIN listed l ON l.key = af.key
    WHERE l.key IS NULL OR l.etag IS DISTINCT FROM af.etag OR l.size_bytes <> af.size_bytes
)
"""
_SCOPED_GONE_CTES = f"{_SCOPED_GONE_FILE_CTE}, {_GONE_ASSET_CTE}"

# Files still standing after the folder's removals: what the anti-join compares against.
# The candidates, from the folder's valid files (`valid`, defined by the caller).
_CANDIDATES_FROM_VALID = """
fresh AS (
    SELECT v.key, v.inventory_code FROM valid v
    WHERE NOT EXISTS (
        SELECT 1 FROM asset_file af
        -- A key's folder is its first segment. Named as a constant (not v.folder, which the
        -- planner cannot push into the scan), the folder's live rows are taken by index:
        -- joined on v.folder it read the whole catalog, ~0.9 s of every folder at 1M files.
        WHERE af.bucket = %(bucket)s AND af.folder = %(folder)s AND af.key = v.key
          AND af.deleted_at IS NULL
          AND af.id NOT IN (SELECT id FROM gone_file)
          AND af.inventory_code NOT IN (SELECT inventory_code FROM gone_asset))
), codes AS (SELECT DISTINCT inventory_code FROM fresh),
-- The candidates' catalogued assets, looked up by code: joined to the candidates' rows, which
-- the planner expects by the folder's tens of thousands, it hashed every asset of the catalog
-- instead (a seq scan of 250k wide rows, ~0.5 s of each folder with new files at 1M).
catalogued AS (
    SELECT a.inventory_code, a.folder FROM codes c
    JOIN asset a ON a.inventory_code = c.inventory_code AND a.deleted_at IS NULL
    WHERE a.inventory_code NOT IN (SELECT inventory_code FROM gone_asset)
)
SELECT v.key, v.folder, v.inventory_code, v.role, v.size_bytes, v.etag, v.last_modified,
       f.key IS NOT NULL AS is_new, a.folder AS catalogued_folder
FROM valid v
JOIN codes c USING (inventory_code)
LEFT JOIN fresh f ON f.key = v.key
LEFT JOIN catalogued a ON a.inventory_code = v.inventory_code
ORDER BY v.inventory_code, v.key
"""
_CANDIDATES_SQL = f"""
WITH {_GONE_CTES}, valid AS (
    SELECT * FROM ingest.inventory_file
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND rule IS NULL
), {_CANDIDATES_FROM_VALID}"""
# Scoped: of the folder's valid files, those whose code is one that can have changed: listed
# valid in a restaged range, of a kept plan, or of an asset losing a file in those ranges.
_SCOPED_CANDIDATES_SQL = f"""
WITH {_SCOPED_GONE_CTES}, scope_code AS (
    SELECT inventory_code FROM listed WHERE considered AND rule IS NULL
    UNION SELECT inventory_code FROM gone_file
    UNION SELECT inventory_code FROM ingest.pending_asset
          WHERE bucket = %(bucket)s AND folder = %(folder)s
    UNION SELECT inventory_code FROM ingest.pending_file
          WHERE bucket = %(bucket)s AND folder = %(folder)s
), valid AS (
    SELECT * FROM ingest.inventory_file
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND rule IS NULL
      AND inventory_code IN (SELECT inventory_code FROM scope_code)
), {_CANDIDATES_FROM_VALID}"""


@dataclass(frozen=True)
class Candidates:
    files: list[Candidate]
    catalogued_folders: dict[str, str]


def _scope_params(bucket: str, folder: str, scope: Scope | None) -> dict:
    params: dict = {"bucket": bucket, "folder": folder}
    if scope is not None and scope.ranges is not None:
        params["afters"] = [r[0] for r in scope.ranges]
        params["uptos"] = [r[1] for r in scope.ranges]
    return params


# Role(value) costs ~0.7 us, a dict lookup ~25 ns: a first import reads 1M candidates.
_ROLE_OF: dict[str, Role] = {role.value: role for role in Role}


def read_candidates(
    conn: psycopg.Connection, bucket: str, folder: str, scope: Scope | None = None
) -> Candidates:
    """The anti-join: valid files not in the catalog, with their codes' other files; over
    the whole folder, or over what `scope` says can have changed."""
    params = _scope_params(bucket, folder, scope)
    sql = _SCOPED_CANDIDATES_SQL if "afters" in params else _CANDIDATES_SQL
    files, catalogued = [], {}
    for key, fold, code, role, size, etag, modified, is_new, cat_folder in conn.execute(
        sql,
        params,
        prepare=False,  # planned for its scope: a generic plan cannot know it
    ):
        files.append(Candidate(key, fold, code, _ROLE_OF[role], size, etag, modified, is_new))
        if cat_folder is not None:
            catalogued[code] = cat_folder
    return Candidates(files, catalogued)


@dataclass(frozen=True)
class PendingChange:
    """How many rows replacing a folder's plan changed in each pending table (the larger of
    those dropped and those written): what decides whether its statistics are stale."""

    assets: int = 0
    files: int = 0
    # Of which dropped: the dead rows the next statements would wade through.
    assets_dropped: int = 0
    files_dropped: int = 0


def replace_pending(
    conn: psycopg.Connection,
    bucket: str,
    folder: str,
    plans: Sequence[AssetPlan],
    scope: Scope | None = None,
) -> PendingChange:
    """Stage the folder's plans in place of its previous ones, with what they were made from
    (`scope`: the catalog epoch and the restaged ranges covered)."""
    with conn.transaction():
        lock_folder(conn, bucket, folder)
        dropped = {
            table: conn.execute(
                f"DELETE FROM ingest.{table} WHERE bucket = %s AND folder = %s", (bucket, folder)
            ).rowcount
            for table in ("pending_asset", "pending_file")
        }
        with conn.cursor().copy(
            "COPY ingest.pending_asset (bucket, folder, inventory_code, decision, media_kind,"
            " master_filename, master_mime_type, master_container, master_md5, duration_seconds,"
            " metadata_tool, technical_metadata, missing, oldest_file_at, rule, message)"
            " FROM STDIN"
        ) as copy:
            for p in plans:
                copy.write_row(_pending_asset_row(bucket, p))
        file_plans = [f for p in plans for f in p.files]
        if file_plans:
            read_times_as_utc(conn)  # the CSV's times are UTC without a zone
            with conn.cursor().copy(
                f"COPY ingest.pending_file ({', '.join(_PENDING_FILE_COLUMNS)})"
                " FROM STDIN (FORMAT csv)"
            ) as copy:
                # In slices: the whole folder's columns at once held ~50 MB more at its peak.
                for start in range(0, len(file_plans), _CSV_SLICE_ROWS):
                    rows = file_plans[start : start + _CSV_SLICE_ROWS]
                    copy.write(_pending_files_csv(bucket, rows))
        files = len(file_plans)
        conn.execute(
            "INSERT INTO ingest.pending_plan (bucket, folder, assets, files, catalog_epoch,"
            " restaged_upto) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (bucket, folder)"
            " DO UPDATE SET assets = EXCLUDED.assets, files = EXCLUDED.files, planned_at = now(),"
            " catalog_epoch = EXCLUDED.catalog_epoch, restaged_upto = EXCLUDED.restaged_upto",
            (
                bucket,
                folder,
                len(plans),
                files,
                scope.epoch if scope else None,
                scope.restaged_upto if scope else 0,
            ),
        )
    return PendingChange(
        max(len(plans), dropped["pending_asset"]),
        max(files, dropped["pending_file"]),
        dropped["pending_asset"],
        dropped["pending_file"],
    )


# The columns the pending tables are queried by. Sampling the others, the technical metadata
# above all (detoasted for its statistics), made an ANALYZE of pending_asset cost ~1 s at 1M.
_PENDING_STATISTICS = {
    "ingest.pending_asset": "bucket, folder, inventory_code, decision",
    "ingest.pending_file": "bucket, folder, key, inventory_code, decision",
}


def analyze_pending(conn: psycopg.Connection, changes: Sequence[PendingChange]) -> None:
    """After a run's plans are staged: refresh the pending tables' statistics once the plans
    changed a tenth of them, either way (after a first import's 60k rows a folder, a steady
    state's few hundred left the planner expecting 60k, and hashing the whole catalog to check
    them). Once per run, not per folder: at 1M rows the per-folder ANALYZEs of both tables cost
    ~1.7 s a folder of the run after a first import, most of phase 2's time in it."""
    changed = {
        "ingest.pending_asset": (
            sum(c.assets for c in changes),
            sum(c.assets_dropped for c in changes),
        ),
        "ingest.pending_file": (
            sum(c.files for c in changes),
            sum(c.files_dropped for c in changes),
        ),
    }
    for table, (rows, dropped) in changed.items():
        if dropped >= ANALYZE_AFTER_ROWS and dropped >= _planned_rows(conn, table) / 10:
            # The insert step's statements read each folder's plans through bitmap scans,
            # which never mark dead rows, so after a first import's plans were dropped every
            # one of them visited its folder's 60-80k dead rows again: 16 x 3 x ~230 ms at 1M,
            # where vacuuming both (unlogged) tables costs ~1.4 s, once.
            conn.execute(f"VACUUM (ANALYZE) {table} ({_PENDING_STATISTICS[table]})")
        else:
            analyze_if_grown(conn, table, rows, _PENDING_STATISTICS[table])


def _pending_asset_row(bucket: str, p: AssetPlan) -> tuple:
    document = (
        orjson.dumps(p.technical_metadata).decode() if p.technical_metadata is not None else None
    )
    return (
        bucket,
        p.folder,
        p.inventory_code,
        p.decision.value,
        p.media_kind.value,
        p.master_filename,
        p.master_mime_type,
        p.master_container,
        p.master_md5,
        p.duration_seconds,
        p.metadata_tool,
        document,
        list(p.missing) or None,
        p.oldest_file_at,
        p.rule,
        p.message,
    )


_CSV_SLICE_ROWS = 8_192
_PENDING_FILE_COLUMNS = (
    "bucket", "folder", "key", "inventory_code", "role", "decision", "mime_type", "size_bytes",
    "etag", "md5", "md5_source", "md5_verified", "last_modified", "rule", "message",
)  # fmt: skip


def _pending_files_csv(bucket: str, files: Sequence[FilePlan]) -> bytes:
    """The file plans as COPY's CSV, column by column through Arrow: ~2 us a row, where
    psycopg's write_row took 4-6 us (a first import stages a million)."""
    text = pa.string()
    columns = [
        pa.repeat(pa.scalar(bucket, text), len(files)),
        pa.array([f.folder for f in files], text),
        pa.array([f.key for f in files], text),
        pa.array([f.inventory_code for f in files], text),
        pa.array([f.role.value for f in files], text),
        pa.array([f.decision.value for f in files], text),
        pa.array([f.mime_type for f in files], text),
        pa.array([f.size for f in files], pa.int64()),
        pa.array([f.etag for f in files], text),
        pa.array([f.md5 for f in files], text),
        pa.array([f.md5_source for f in files], text),
        pa.array([f.md5_verified for f in files], pa.bool_()),
        pa.array([f.last_modified for f in files], pa.timestamp("us", tz="UTC")),
        pa.array([None if f.rule is None else str(f.rule) for f in files], text),
        pa.array([f.message for f in files], text),
    ]
    return to_csv(pa.table(columns, names=list(_PENDING_FILE_COLUMNS)))


# -- phase 3: into the catalog, all or nothing --------------------------------------------------

# The folder's listing against its live files: one pass over each, normally finding nothing.
_GONE_SQL = f"""
WITH {_GONE_FILE_CTE}
SELECT id, key, inventory_code, role, reason FROM gone_file ORDER BY key
"""
_SCOPED_GONE_SQL = f"""
WITH {_SCOPED_GONE_FILE_CTE}
SELECT id, key, inventory_code, role, reason FROM gone_file ORDER BY key
"""


@dataclass(frozen=True)
class GoneFile:
    id: int
    key: str
    inventory_code: str
    role: str
    reason: str  # 'removed' (not listed) or 'replaced' (listed with another ETag or size)


def gone_files(
    conn: psycopg.Connection, bucket: str, folder: str, scope: Scope | None = None
) -> list[GoneFile]:
    """Live catalog files of the folder that its latest listing no longer backs, by key: of
    the whole folder, or of the restaged ranges of `scope` (see media_import.db.scope)."""
    params = _scope_params(bucket, folder, scope)
    sql = _SCOPED_GONE_SQL if "afters" in params else _GONE_SQL
    rows = conn.execute(sql, params, prepare=False).fetchall()
    return [GoneFile(*row) for row in rows]


# The gone files, passed back in, and what they take with them: the assets that lost their
# streaming copy or .json, and those assets' other live files wherever they are in the bucket,
# found by code through the index rather than by reading the bucket's rows.
_DOOMED_CTES = f"""
gone_file AS (
    SELECT * FROM unnest(%(gone_ids)s::bigint[], %(gone_codes)s::text[],
                         %(gone_roles)s::text[], %(gone_reasons)s::text[])
        AS g(id, inventory_code, role, reason)
), {_GONE_ASSET_CTE}, doomed_file AS (
    SELECT id, reason FROM gone_file
    UNION ALL
    SELECT af.id, 'asset_removed' FROM asset_file af
    WHERE af.inventory_code IN (SELECT inventory_code FROM gone_asset)
      AND af.bucket = %(bucket)s AND af.deleted_at IS NULL
      AND af.id NOT IN (SELECT id FROM gone_file)
)
"""

_SOFT_DELETE_SQL = f"""
WITH {_DOOMED_CTES}, deleted_asset AS (
    UPDATE asset a SET deleted_at = now(), deleted_by_run_id = %(run_id)s, deleted_reason = g.reason
    FROM gone_asset g
    WHERE a.inventory_code = g.inventory_code AND a.deleted_at IS NULL
    RETURNING a.inventory_code
), deleted_file AS (
    UPDATE asset_file af SET deleted_at = now(), deleted_by_run_id = %(run_id)s,
        deleted_reason = d.reason
    FROM doomed_file d WHERE af.id = d.id AND af.deleted_at IS NULL
    RETURNING af.id
)
SELECT (SELECT count(*) FROM deleted_asset), (SELECT count(*) FROM deleted_file)
"""

_WOULD_SOFT_DELETE_SQL = f"""
WITH {_DOOMED_CTES}
SELECT (SELECT count(*) FROM gone_asset), (SELECT count(*) FROM doomed_file)
"""


@dataclass(frozen=True)
class SoftDeletes:
    assets: int
    files: int


def _gone_params(gone: Sequence[GoneFile]) -> dict[str, list]:
    return {
        "gone_ids": [g.id for g in gone],
        "gone_codes": [g.inventory_code for g in gone],
        "gone_roles": [g.role for g in gone],
        "gone_reasons": [g.reason for g in gone],
    }


def _soft_deletes(
    conn: psycopg.Connection, sql: str, params: dict, gone: Sequence[GoneFile]
) -> SoftDeletes:
    if not gone:  # the usual case: nothing to look up
        return SoftDeletes(0, 0)
    row = conn.execute(sql, {**params, **_gone_params(gone)}).fetchone()
    return SoftDeletes(*(int(n) for n in row)) if row else SoftDeletes(0, 0)


def would_soft_delete(
    conn: psycopg.Connection, bucket: str, folder: str, gone: Sequence[GoneFile]
) -> SoftDeletes:
    """What the next import of the folder would soft-delete (for dry runs), given its gone
    files (`gone_files`)."""
    return _soft_deletes(conn, _WOULD_SOFT_DELETE_SQL, {"bucket": bucket}, gone)


_INSERT_ASSETS_SQL = """
INSERT INTO asset AS a (inventory_code, media_kind, bucket, folder, master_filename,
    master_mime_type, master_container, master_md5, duration_seconds, metadata_tool,
    technical_metadata, run_id)
SELECT inventory_code, media_kind, bucket, folder, master_filename, master_mime_type,
       master_container, master_md5, duration_seconds, metadata_tool, technical_metadata,
       %(run_id)s
FROM ingest.pending_asset
WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision = 'import'
{on_conflict}"""
_ON_ASSET_CONFLICT = """ON CONFLICT (inventory_code) DO UPDATE SET
    media_kind = EXCLUDED.media_kind, bucket = EXCLUDED.bucket, folder = EXCLUDED.folder,
    master_filename = EXCLUDED.master_filename, master_mime_type = EXCLUDED.master_mime_type,
    master_container = EXCLUDED.master_container, master_md5 = EXCLUDED.master_md5,
    duration_seconds = EXCLUDED.duration_seconds, metadata_tool = EXCLUDED.metadata_tool,
    technical_metadata = EXCLUDED.technical_metadata, imported_at = now(),
    run_id = EXCLUDED.run_id, deleted_at = NULL, deleted_by_run_id = NULL, deleted_reason = NULL
    -- Only a soft-deleted asset is restored by a re-upload; a live one is never overwritten.
    WHERE a.deleted_at IS NOT NULL
"""

# Returns how many rows were written (inserted, or restored after a soft delete) and which of
# them the folder's listing does not hold. Those are all of the folder's live rows missing
# from its listing (the keys_exist_in_bucket check), without reading the folder again: under
# the folder's lock its listing cannot change, and the soft delete before this took every
# live row the listing no longer backed. A written row is unlisted only when the plan was
# made from an older listing than the one a concurrent run of the folder staged since.
_INSERT_FILES_SQL = """
WITH written AS (
    INSERT INTO asset_file AS af (bucket, key, folder, inventory_code, role, mime_type,
        size_bytes, etag, md5, md5_source, md5_verified, last_modified, run_id)
    SELECT p.bucket, p.key, p.folder, p.inventory_code, p.role, p.mime_type, p.size_bytes,
           p.etag, p.md5, p.md5_source, p.md5_verified, p.last_modified, %(run_id)s
    FROM ingest.pending_file p
    JOIN asset a ON a.inventory_code = p.inventory_code AND a.deleted_at IS NULL
        AND a.folder = p.folder
    WHERE p.bucket = %(bucket)s AND p.folder = %(folder)s AND p.decision IN ('import', 'attach')
    {on_conflict}
    RETURNING af.key
), unlisted AS ({unlisted})
SELECT (SELECT count(*) FROM written),
       coalesce((SELECT array_agg(key ORDER BY key) FROM unlisted), '{{}}')
"""
_ON_FILE_CONFLICT = """ON CONFLICT (bucket, key) DO UPDATE SET
        folder = EXCLUDED.folder, inventory_code = EXCLUDED.inventory_code, role = EXCLUDED.role,
        mime_type = EXCLUDED.mime_type, size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag,
        md5 = EXCLUDED.md5, md5_source = EXCLUDED.md5_source,
        md5_verified = EXCLUDED.md5_verified, last_modified = EXCLUDED.last_modified,
        imported_at = now(), run_id = EXCLUDED.run_id,
        deleted_at = NULL, deleted_by_run_id = NULL, deleted_reason = NULL
        WHERE af.deleted_at IS NOT NULL"""
# Chosen by how many rows the folder's plan made ready, not left to the planner: mid-run the
# catalog's statistics are those of the run's start, and it probed row by row (2 us each, 2 s
# of a 1M first import) where one pass over the folder's listing costs 20 ms, or hashed the
# listing for a few rows.
_UNLISTED_PROBED = """
    SELECT w.key FROM written w
    WHERE NOT EXISTS (SELECT 1 FROM ingest.listing l
                      WHERE l.bucket = %(bucket)s AND l.key = w.key AND l.folder = %(folder)s
                      OFFSET 0)
"""
_UNLISTED_SET = """
    SELECT key FROM written
    EXCEPT
    SELECT key FROM ingest.listing WHERE bucket = %(bucket)s AND folder = %(folder)s
"""
# Up to this many ready rows in a folder, looking them up one by one by unique key beats one
# pass over the folder's rows (2 us a probe; 20-40 ms a pass over a 60k-row folder at 1M).
PROBE_ROWS = 5_000


def _insert_files_sql(ready_files: int, on_conflict: str) -> str:
    unlisted = _UNLISTED_PROBED if ready_files <= PROBE_ROWS else _UNLISTED_SET
    return _INSERT_FILES_SQL.format(unlisted=unlisted, on_conflict=on_conflict)


# A folder's first import: no catalog file of the folder exists, live or soft-deleted (its keys
# all start with "<folder>/", found on the (bucket, key) index). Its rows are then inserted
# plainly, as nothing in the folder can conflict, where ON CONFLICT makes every row a
# speculative insertion (an index probe and a WAL record more): at 1M objects the insert
# step's PostgreSQL CPU went from 35.8-50.0 to 28.5-46.2 CPU-s (three runs, alternated).
# An asset's code may still meet a soft-deleted asset of another folder, and a concurrent
# run of another folder may insert one: then the plain INSERTs fail inside a savepoint and
# the upserts do the work over.
_FOLDER_CATALOGUED_SQL = """
SELECT EXISTS (SELECT 1 FROM asset_file
               WHERE bucket = %(bucket)s AND key >= %(folder)s || '/' AND key < %(folder)s || '0')
"""


def _insert_ready(
    conn: psycopg.Connection, params: dict[str, str], ready: Ready
) -> tuple[int, int, list[str]]:
    """Insert the folder's ready assets and files: (assets, files, unlisted keys)."""
    first = not (conn.execute(_FOLDER_CATALOGUED_SQL, params).fetchone() or (True,))[0]
    if first:
        try:
            with conn.transaction():  # a savepoint: a conflict undoes only these inserts
                return _insert(conn, params, ready, "", "")
        except psycopg.errors.UniqueViolation:
            pass
    return _insert(conn, params, ready, _ON_ASSET_CONFLICT, _ON_FILE_CONFLICT)


def _insert(
    conn: psycopg.Connection, params: dict[str, str], ready: Ready, on_asset: str, on_file: str
) -> tuple[int, int, list[str]]:
    assets = conn.execute(_INSERT_ASSETS_SQL.format(on_conflict=on_asset), params).rowcount
    sql = _insert_files_sql(ready.files, on_file)
    files, unlisted = conn.execute(sql, params).fetchone() or (0, [])
    return assets, int(files), unlisted


_CURRENT_REJECTIONS_SQL = """
SELECT bucket, key, folder, inventory_code, rule, message FROM ingest.inventory_file
WHERE bucket = %(bucket)s AND folder = %(folder)s AND rule IS NOT NULL
UNION ALL
SELECT bucket, key, folder, inventory_code, rule, message FROM ingest.pending_file
WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision = 'rejected'
"""

# Record the folder's current rejections and resolve its open ones no longer current, reading
# the current ones once. Both parts see the table as it was before the statement; the rows
# they change are disjoint (current and not current), as when they ran one after the other.
_REJECTIONS_SQL = f"""
WITH current AS ({_CURRENT_REJECTIONS_SQL}), recorded AS (
    INSERT INTO rejection AS r (bucket, key, folder, inventory_code, rule, message, run_id)
    SELECT bucket, key, folder, inventory_code, rule, message, %(run_id)s FROM current
    ON CONFLICT (bucket, key, rule) DO UPDATE SET
        message = EXCLUDED.message, inventory_code = EXCLUDED.inventory_code,
        last_seen_at = now(), resolved_at = NULL, run_id = EXCLUDED.run_id
    RETURNING 1
), resolved AS (
    UPDATE rejection r SET resolved_at = now()
    WHERE r.bucket = %(bucket)s AND r.folder = %(folder)s AND r.resolved_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM current c WHERE c.key = r.key AND c.rule = r.rule)
    RETURNING 1
)
SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM resolved)
"""


_READY_SQL = """
SELECT (SELECT count(*) FROM ingest.pending_asset
        WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision = 'import'),
       (SELECT count(*) FROM ingest.pending_file
        WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision IN ('import', 'attach'))
"""


@dataclass(frozen=True)
class Ready:
    """What the folder's plan made ready to insert."""

    assets: int
    files: int  # importing and attaching


class PlanLost(RuntimeError):
    """A folder's staged plan is recorded but its rows are gone: PostgreSQL empties unlogged
    tables when it restarts after a crash."""


def check_plan(conn: psycopg.Connection, bucket: str, folder: str) -> None:
    """Raise PlanLost if the folder's recorded plan staged rows that are no longer there.
    Taken for an empty plan, it would insert nothing and mark the folder imported, and the
    sensors would not ask for it again until it changed."""
    row = conn.execute(
        "SELECT p.assets, p.planned_at, EXISTS (SELECT 1 FROM ingest.pending_asset a"
        " WHERE a.bucket = p.bucket AND a.folder = p.folder)"
        " FROM ingest.pending_plan p WHERE p.bucket = %s AND p.folder = %s",
        (bucket, folder),
    ).fetchone()
    if row is not None and row[0] > 0 and not row[2]:
        raise PlanLost(
            f"the staged plan of folder {folder!r} ({row[0]} asset(s), planned at "
            f"{row[1]:%Y-%m-%d %H:%M:%S %Z}) is gone: PostgreSQL restarted after a crash, "
            "which empties its unlogged staging tables. Nothing was written; run the folder "
            "again (it was not marked imported, so its sensors will ask for it)."
        )


def count_ready(conn: psycopg.Connection, bucket: str, folder: str) -> Ready:
    row = conn.execute(_READY_SQL, {"bucket": bucket, "folder": folder}).fetchone()
    return Ready(int(row[0]), int(row[1])) if row else Ready(0, 0)


@dataclass(frozen=True)
class ImportCounts:
    assets_inserted: int
    files_inserted: int
    rejections_recorded: int
    rejections_resolved: int
    assets_soft_deleted: int = 0
    files_soft_deleted: int = 0
    # The folder's live catalog rows whose key its listing does not hold, by key.
    unlisted: list[str] = field(default_factory=list)
    ready: Ready = field(default_factory=lambda: Ready(0, 0))  # what the plan made ready


def import_pending(conn: psycopg.Connection, bucket: str, folder: str, run_id: str) -> ImportCounts:
    """Insert the folder's ready assets and files and record its rejections, in one transaction:
    a crash leaves either all of it or none of it."""
    params = {"bucket": bucket, "folder": folder, "run_id": run_id}
    with conn.transaction():
        lock_folder(conn, bucket, folder)
        check_plan(conn, bucket, folder)
        # Its own writes are not news to the folder's plans; other folders' rows it
        # soft-deletes are (media_import.db.scope).
        mark_importing(conn, bucket, folder)
        # Removals first: a replaced object's row is soft-deleted, then restored with its new
        # ETag, size and checksum by the inserts below (ON CONFLICT ... WHERE deleted).
        # While the catalog is in step with the listing, only restaged ranges can hold them.
        gone = gone_files(conn, bucket, folder, removal_scope(conn, bucket, folder))
        deleted = _soft_deletes(conn, _SOFT_DELETE_SQL, params, gone)
        ready = count_ready(conn, bucket, folder)
        assets, files, unlisted = _insert_ready(conn, params, ready)
        recorded, resolved = conn.execute(_REJECTIONS_SQL, params).fetchone() or (0, 0)
    return ImportCounts(
        assets,
        int(files),
        int(recorded),
        int(resolved),
        deleted.assets,
        deleted.files,
        unlisted,
        ready,
    )


# A folder's carried-out plans, dropped once its insert and the check of it are done, under
# the same lock: only its deferred and rejected plans stay for the next run. Kept, a first
# import's 1.25M plans (their technical metadata included) sat in the tables until the next
# run of each folder, which then deleted them and vacuumed 1.25M dead rows: ~3 s of every
# steady-state run after a first import, at 1M objects. The recorded plan keeps the count of
# what stays, so check_plan still tells a crash's emptied plan from a consumed one.
_DROP_CARRIED_OUT_SQL = """
WITH files AS (
    DELETE FROM ingest.pending_file
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision IN ('import', 'attach')
    RETURNING 1
), assets AS (
    DELETE FROM ingest.pending_asset
    WHERE bucket = %(bucket)s AND folder = %(folder)s AND decision IN ('import', 'attach')
    RETURNING 1
), dropped AS (
    SELECT (SELECT count(*) FROM assets) AS assets, (SELECT count(*) FROM files) AS files
), recorded AS (  -- runs though not read: a data-modifying CTE always does
    UPDATE ingest.pending_plan p
    SET assets = greatest(p.assets - d.assets, 0), files = greatest(p.files - d.files, 0)
    FROM dropped d WHERE p.bucket = %(bucket)s AND p.folder = %(folder)s
)
SELECT assets, files FROM dropped
"""


def drop_carried_out(conn: psycopg.Connection, bucket: str, folder: str) -> PendingChange:
    """Drop the folder's imported and attached plans (in the caller's transaction, under the
    folder's lock); what was dropped, for `analyze_pending`."""
    row = conn.execute(_DROP_CARRIED_OUT_SQL, {"bucket": bucket, "folder": folder}).fetchone()
    assets, files = (int(row[0]), int(row[1])) if row else (0, 0)
    return PendingChange(assets, files, assets, files)


def analyze_after_import(
    conn: psycopg.Connection,
    assets_written: int,
    files_written: int,
    bucket: str | None = None,
    by_folder: Mapping[str, tuple[int, int]] | None = None,
) -> None:
    """Refresh the catalog's statistics once a run has grown a table by a tenth, or put many
    rows into a folder they do not know of (`by_folder`: folder -> assets, files inserted):
    the next run's anti-join and this run's checks are planned from them (taken for
    near-empty after a first import, the planner chose nested loops costing minutes). Once
    per run, not per folder: at 1M rows each ANALYZE costs about half a second."""
    by_folder = by_folder or {}
    assets = {folder: n for folder, (n, _) in by_folder.items()}
    files = {folder: n for folder, (_, n) in by_folder.items()}
    analyze_if_grown(conn, "asset", assets_written, folders=assets, bucket=bucket)
    analyze_if_grown(conn, "asset_file", files_written, folders=files, bucket=bucket)


def analyze_if_grown(
    conn: psycopg.Connection,
    table: str,
    written: int,
    columns: str | None = None,
    folders: Mapping[str, int] | None = None,
    bucket: str | None = None,
) -> bool:
    """ANALYZE `table` (only `columns`, if given) if `written` rows are many and at least a
    tenth of what its statistics say it holds (always when it was never analyzed), or if one
    of `folders` (folder -> rows it now holds in `bucket`) holds many rows its statistics do
    not know of. Returns whether it did."""
    if written < ANALYZE_AFTER_ROWS:
        return False
    stale = written >= _planned_rows(conn, table) / 10 or any(
        rows >= ANALYZE_AFTER_ROWS and _planned_folder_rows(conn, table, bucket, folder) < rows / 2
        for folder, rows in (folders or {}).items()
    )
    if stale:
        conn.execute(f"ANALYZE {table}" + (f" ({columns})" if columns else ""))
    return stale


def _planned_folder_rows(
    conn: psycopg.Connection, table: str, bucket: str | None, folder: str
) -> float:
    """How many rows of the folder the planner expects. A folder staged after the table's
    last ANALYZE is not among its most common values and is taken for a row or two: then a
    6k-key folder's anti-join ran nested loops for 4.8 s instead of 60 ms (100k objects, the
    last 4 of 16 folders of a first import)."""
    (plan,) = conn.execute(
        f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table} WHERE bucket = %s AND folder = %s",
        (bucket, folder),
    ).fetchone()
    return float(plan[0]["Plan"]["Plan Rows"])


def _planned_rows(conn: psycopg.Connection, table: str) -> float:
    """The table's size as its statistics tell the planner (-1: never analyzed)."""
    row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,))
    found = row.fetchone()
    return float(found[0]) if found else -1.0
