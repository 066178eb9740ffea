"""The benchmark: synthetic archives, the four scenarios, the baseline, a Markdown table.

    python -m benchmarks.run                      10k, 100k (moto and stand-in), 1M (stand-in,
                                                  with and without AWS-like latency)
    python -m benchmarks.run --sizes 10k --endpoints moto --no-baseline   the CI smoke run
    python -m benchmarks.run --sizes 1m --latency aws

Every measurement runs in a child process (benchmarks.scenario) so its peak memory is its own;
media_import runs through Dagster (the import job over every folder as one run, as a
single-run backfill does). Results: docs/benchmarks.md (and .json beside it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from benchmarks import cpu
from benchmarks.archive import ArchiveSpec

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
AWS_LATENCY = (0.100, 0.030)  # seconds per LIST page, per GET: a plausible AWS round trip
ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


class Endpoint(Protocol):
    endpoint_url: str
    bucket: str
    label: str

    def put(self, key: str, body: bytes) -> None: ...


@dataclass
class MotoEndpoint:
    """moto's server (real S3 semantics), in this process, seeded straight into its backend:
    uploading 100k objects over HTTP would take moto ~12 minutes."""

    spec: ArchiveSpec
    bucket: str = "bench"
    label: str = "moto"
    endpoint_url: str = ""
    _server: Any = None
    _backend: Any = None

    def __enter__(self) -> MotoEndpoint:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.endpoint_url = f"http://127.0.0.1:{self._server.get_host_and_port()[1]}"
        self._backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
        self._backend.create_bucket(self.bucket, "us-east-1")
        for key, body in self.spec.items():
            self.put(key, body)
        return self

    def put(self, key: str, body: bytes) -> None:
        stored = self._backend.put_object(self.bucket, key, body)
        # Computed now: moto computes an object's ETag on first use, reading its body without
        # the lock its GETs take, so a GET racing the first listing can leave it the empty
        # body's MD5 for good (an upload over HTTP computes it at once).
        _ = stored.etag

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._backend.reset()  # moto's backend is per process: free it for the next size


@dataclass
class StandInEndpoint:
    spec: ArchiveSpec
    latency: tuple[float, float] = (0.0, 0.0)
    bucket: str = "bench"
    endpoint_url: str = ""
    _standin: Any = None

    @property
    def label(self) -> str:
        if self.latency == (0.0, 0.0):
            return "stand-in"
        return f"stand-in, {self.latency[0] * 1000:.0f} ms/LIST {self.latency[1] * 1000:.0f} ms/GET"

    def __enter__(self) -> StandInEndpoint:
        from benchmarks.s3_standin import StandIn

        self._standin = StandIn(self.spec, self.bucket, 0, *self.latency).start()
        self.endpoint_url = self._standin.endpoint_url
        return self

    def put(self, key: str, body: bytes) -> None:
        self._standin.add(key, body)

    def server_process(self) -> int:
        return int(self._standin.pid)

    def __exit__(self, *exc: object) -> None:
        self._standin.stop()


@dataclass
class Case:
    size: str
    endpoint: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    measured: str = ""  # when, and at which commit: a merged table mixes runs


# -- PostgreSQL -------------------------------------------------------------------------------


@contextmanager
def postgres(admin_url: str | None) -> Iterator[str]:
    """An admin URL: the given server, or an embedded PostgreSQL in a temporary directory."""
    if admin_url:
        yield admin_url
        return
    from media_import.devstack import EmbeddedPostgres

    tmp = Path(tempfile.mkdtemp(prefix="media-import-bench-pg-"))
    server = EmbeddedPostgres(tmp / "data")
    try:
        server.start()
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def fresh_database(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


# -- scenarios ------------------------------------------------------------------------------


def child(
    args: list[str], env: dict[str, str], others: Mapping[str, cpu.Group] | None = None
) -> dict[str, Any]:
    """Run one scenario in its own process; with `others`, the CPU-seconds of the run (its
    process and workers) and of those groups, in all and by phase."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scenario", *args],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = (
        None
        if others is None
        else cpu.CpuSampler({"run": cpu.tree(process.pid), **others}, cpu.SAMPLE_SECONDS)
    )
    with sampler or contextlib.nullcontext():
        stdout, stderr = process.communicate()
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        sys.stderr.write(stderr[-4000:])
        raise RuntimeError(f"benchmark child {args} failed ({process.returncode})")
    result = json.loads(lines[-1])
    if sampler is not None:
        result["cpu_seconds"] = _cpu_seconds(sampler, result.get("phase_windows", {}))
    return result


def _cpu_seconds(sampler: cpu.CpuSampler, windows: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    phases = {phase: sampler.between(start, end) for phase, (start, end) in windows.items()}
    return {"total": sampler.total(), "phases": phases}


def cpu_groups(endpoint: Endpoint) -> dict[str, cpu.Group]:
    """PostgreSQL (every process named postgres on the machine) and the S3 server: the
    stand-in's process, or this one for moto, which serves from a thread here."""
    server = endpoint.server_process() if isinstance(endpoint, StandInEndpoint) else None
    own = os.getpid()
    return {
        "postgres": cpu.named("postgres"),
        "s3": cpu.tree(server) if server is not None else (lambda table: {own}),
    }


def run_case(spec: ArchiveSpec, endpoint: Endpoint, admin_url: str, baseline: bool) -> Case:
    case = Case(size=_size_label(spec.objects), endpoint=endpoint.label, measured=_measured())
    env = {
        "S3_ENDPOINT_URL": endpoint.endpoint_url,
        "BUCKET_NAME": endpoint.bucket,
        "AWS_REGION": "us-east-1",
        "DATABASE_URL": fresh_database(admin_url),
        **CREDENTIALS,
    }
    say = _progress(case)
    others = cpu_groups(endpoint)
    case.results["first_import"] = say("first import", child(["import"], env, others))
    extra = spec.extra_keys(max(1, spec.assets // 100))
    for key in extra:
        endpoint.put(key, spec.body(key))
    case.results["one_percent_new"] = say("1% new", child(["import"], env, others))
    case.results["nothing_changed"] = say("nothing changed", child(["reconcile"], env, others))
    case.results["reimport_unchanged"] = say("re-import unchanged", child(["import"], env, others))
    case.results["single_upload"] = say("single upload", _single_upload(spec, endpoint, env))
    if baseline:
        base_env = {**env, "DATABASE_URL": fresh_database(admin_url)}
        case.results["baseline_first_import"] = say("baseline", child(["baseline"], base_env))
    return case


def _single_upload(spec: ArchiveSpec, endpoint: Endpoint, env: dict[str, str]) -> dict[str, Any]:
    """An asset whose sidecars are already in (imported as deferred); its streaming copy is the
    single upload, timed from the upload to its catalog row through the sensor path."""
    added = max(1, spec.assets // 100)
    already = set(spec.extra_keys(added))
    keys = [k for k in spec.extra_keys(added + 1) if k not in already]
    streaming = next(k for k in keys if k.endswith((".mp4", ".mp3")))
    for key in keys:
        if key != streaming:
            endpoint.put(key, spec.body(key))
    child(["import"], env)  # the sidecars alone: a deferred asset, and the sensors' view primed
    endpoint.put(streaming, spec.body(streaming))
    return child(["sensor", streaming], env)


def _size_label(objects: int) -> str:
    return f"{objects // 1000}k" if objects < 1_000_000 else f"{objects // 1_000_000}M"


def _progress(case: Case) -> Any:
    def say(what: str, result: dict[str, Any]) -> dict[str, Any]:
        seconds = result.get("total_seconds") or result.get("run_seconds", 0)
        print(
            f"  {case.size} {case.endpoint}: {what}: {seconds:.2f}s, "
            f"peak {result.get('peak_rss_mb', 0):.0f} MB",
            flush=True,
        )
        return result

    return say


# -- report ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    import dagster
    import obstore

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": f"{cpu} x {os.cpu_count()}",
        "memory": f"{int(memory) / 1024 / 1024:.0f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "obstore": getattr(obstore, "__version__", "?"),
        "psycopg": psycopg.__version__,
        "cpu check": f"{cpu_check():.2f} s for a fixed 5M-step Python loop (more: a slower or "
        "busier machine; compare figures of different runs with it)",
    }


def cpu_check() -> float:
    """Seconds of a fixed CPU-bound loop: the same machine kind ran the published figures twice
    as slowly on some days as on others, and this tells such runs apart."""
    started = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i * i
    return time.perf_counter() - started


def render(cases: list[Case], info: dict[str, str], postgres_version: str) -> str:
    from benchmarks.report import render_markdown

    return render_markdown(cases, {**info, "postgresql": postgres_version})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma-separated: 10k,100k,1m")
    parser.add_argument(
        "--latency", choices=("none", "aws", "both"), default="both",
        help="stand-in sizes: without injected latency, with AWS-like latency, or both",
    )  # fmt: skip
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    parser.add_argument(
        "--endpoints", help="only these: moto, standin, standin-aws (comma-separated)"
    )
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL (default: embedded)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the cases of the existing results (the .json beside --out) that this run "
        "does not measure again, each with when it was measured",
    )  # fmt: skip
    parser.add_argument(
        "--render", action="store_true",
        help="measure nothing: write --out again from the .json beside it (after a change to "
        "the report)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        rerender(Path(args.out))
        print(f"results: {args.out}")
        return 0
    sizes = [SIZES[s.strip().lower()] for s in args.sizes.split(",")]
    cases: list[Case] = []
    started = datetime.now(UTC)
    with postgres(args.database_url) as admin_url:
        with psycopg.connect(admin_url) as conn:
            pg_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        info = {**machine(), "run": started.strftime("%Y-%m-%d %H:%M UTC")}
        out = Path(args.out)
        kept = _earlier_cases(out) if args.merge else []
        for objects, endpoint in _plan(sizes, args.latency, args.endpoints):
            spec = endpoint.spec
            began = time.perf_counter()
            with endpoint:
                print(f"{_size_label(objects)} on {endpoint.label} "
                      f"(ready in {time.perf_counter() - began:.0f}s)", flush=True)  # fmt: skip
                # The baseline's sequential GETs would take hours at 1M or with latency.
                baseline = (
                    not args.no_baseline and objects <= 100_000 and _kind(endpoint) != "standin-aws"
                )
                cases.append(run_case(spec, endpoint, admin_url, baseline))
            # Written after every case: a long run interrupted still leaves what it measured.
            write_results(out, _merged(kept, cases), info, pg_version)
    print(f"results: {out}")
    return 0


def write_results(out: Path, cases: list[Case], info: dict[str, str], pg_version: str) -> None:
    from benchmarks.report import render_demo_latency

    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(cases, info, pg_version)
    latency = out.with_name("demo_latency.json")  # benchmarks.demo_latency's results
    if latency.exists():
        text += "\n" + "\n".join(render_demo_latency(json.loads(latency.read_text())))
    out.write_text(text + "\n" if not text.endswith("\n") else text)
    machine_info = {**info, "postgresql": pg_version}
    out.with_suffix(".json").write_text(
        json.dumps({"machine": machine_info, "cases": [c.__dict__ for c in cases]}, indent=2) + "\n"
    )


def rerender(out: Path) -> None:
    """The Markdown written again from the results beside it, as measured."""
    earlier = json.loads(out.with_suffix(".json").read_text())
    info = dict(earlier["machine"])
    pg_version = info.pop("postgresql", "unknown")
    write_results(out, _cases_of(earlier), info, pg_version)


def _measured() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when} at commit {commit}" if commit else when


def _earlier_cases(out: Path) -> list[Case]:
    """The cases of an earlier results file; those from before cases were dated get its run's
    date."""
    path = out.with_suffix(".json")
    return _cases_of(json.loads(path.read_text())) if path.exists() else []


def _cases_of(earlier: dict[str, Any]) -> list[Case]:
    run = earlier.get("machine", {}).get("run", "")
    return [Case(**{**c, "measured": c.get("measured") or run}) for c in earlier.get("cases", [])]


def _merged(kept: list[Case], new: list[Case]) -> list[Case]:
    """The earlier cases with this run's replacing theirs in place; new ones at the end."""
    fresh = {(c.size, c.endpoint): c for c in new}
    merged = [fresh.pop((c.size, c.endpoint), c) for c in kept]
    return merged + [c for c in new if (c.size, c.endpoint) in fresh]


def _plan(sizes: list[int], latency: str, only: str | None) -> list[tuple[int, Any]]:
    """Cheapest and most telling first: the stand-in cases (the targets' reference) before
    moto's, and AWS-like latency (the slowest) last."""
    planned = [(n, e) for n in sizes for e in _endpoints(ArchiveSpec(n), latency, only)]
    order = {"standin": 0, "moto": 1, "standin-aws": 2}
    return sorted(planned, key=lambda p: (order[_kind(p[1])], p[0]))


def _endpoints(spec: ArchiveSpec, latency: str, only: str | None) -> list[Any]:
    """moto for 10k and 100k (real server semantics), the stand-in at every size (the targets
    are set against it), with AWS-like latency too when asked."""
    chosen: list[Any] = []
    if spec.objects <= 100_000:
        chosen.append(MotoEndpoint(spec))
    if latency in ("none", "both"):
        chosen.append(StandInEndpoint(spec))
    # With latency, 100k only when asked for alone (a quicker look at the production shape).
    if latency == "aws" or (latency == "both" and spec.objects > 100_000):
        chosen.append(StandInEndpoint(spec, AWS_LATENCY))
    return [e for e in chosen if only is None or _kind(e) in only.split(",")]


def _kind(endpoint: Any) -> str:
    if isinstance(endpoint, MotoEndpoint):
        return "moto"
    return "standin" if endpoint.latency == (0.0, 0.0) else "standin-aws"


if __name__ == "__main__":
    sys.exit(main())
