"""How fast the S3 stand-in serves (not a test: a measurement to read).

    python -m benchmarks.check_standin --objects 200000 [--get-latency 0.03] [--gets 20000]

Starts the stand-in as a child process and drives it two ways, printing one JSON line:

* with media_import's own obstore `Bucket`: a full listing one folder prefix at a time, as the
  import's runs do (keys/s), and concurrent whole-object GETs of sidecars at the Bucket's
  default concurrency of 64 (GETs/s), each with the share of a core the server used meanwhile
  (well below 1.0: the client, not the stand-in, sets the pace);
* with a lean asyncio client on 64 keep-alive connections, to show the server's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from itertools import islice

import psutil

from benchmarks.archive import ArchiveSpec
from benchmarks.s3_standin import StandIn
from media_import.core.storage import DEFAULT_CONCURRENCY, Bucket, RangeRead, S3Config


def measure(spec: ArchiveSpec, gets: int, list_latency: float, get_latency: float) -> dict:
    with StandIn(spec, list_latency=list_latency, get_latency=get_latency) as server:
        process = psutil.Process(server.pid)
        rss = process.memory_info().rss
        bucket = Bucket(S3Config(server.bucket, server.endpoint_url, "us-east-1", "x", "y"))
        # Distinct keys: read_many answers one body per key.
        sidecars = list(islice((k for k in spec if k.endswith((".json", ".md5", ".pdf"))), gets))
        list_s, list_cpu = _timed(process, lambda: _list_all(bucket, spec))
        get_s, get_cpu = _timed(process, lambda: bucket.read_many([RangeRead(k) for k in sidecars]))
        paths = [f"/{server.bucket}/{key}" for key in sidecars]
        raw_s, raw_cpu = _timed(process, lambda: asyncio.run(_lean_gets(server.port, paths)))
    return {
        "objects": len(spec),
        "list_latency": list_latency,
        "get_latency": get_latency,
        "server_rss_mb": round(rss / 2**20, 1),
        "list_keys_per_s": round(len(spec) / list_s),
        "list_server_cpu": list_cpu,
        "gets": len(sidecars),
        "gets_per_s": round(len(sidecars) / get_s),
        "get_server_cpu": get_cpu,
        "lean_client_gets_per_s": round(len(sidecars) / raw_s),
        "lean_client_server_cpu": raw_cpu,
    }


def _timed(process: psutil.Process, work: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds of `work`, and the server's CPU meanwhile in cores (1.0: one core busy)."""
    before = process.cpu_times()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    after = process.cpu_times()
    busy = (after.user - before.user) + (after.system - before.system)
    return seconds, round(busy / seconds, 2)


def _list_all(bucket: Bucket, spec: ArchiveSpec) -> int:
    return sum(
        len(page) for folder in spec.folder_names() for page in bucket.list_pages(f"{folder}/")
    )


async def _lean_gets(port: int, paths: list[str]) -> None:
    """GET every path over DEFAULT_CONCURRENCY keep-alive connections, one request at a time
    on each (as obstore's pool does), doing nothing with the bodies."""
    share = [paths[i::DEFAULT_CONCURRENCY] for i in range(DEFAULT_CONCURRENCY)]
    await asyncio.gather(*(_get_each(port, part) for part in share if part))


async def _get_each(port: int, paths: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for path in paths:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_standin")
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--list-latency", type=float, default=0.0)
    parser.add_argument("--get-latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    spec = ArchiveSpec(args.objects)
    print(json.dumps(measure(spec, args.gets, args.list_latency, args.get_latency)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
