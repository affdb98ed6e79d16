"""Rate-limit overhead: `GET /api/v1/sources` with limits off, in PostgreSQL, in Redis; and the limiter alone.

`.venv/bin/python bench/ratelimit_bench.py [--clients 1,4,50] [--seconds 8] [--rounds 3] [--calls 2000]`
(also run by `bench/run.py`; results in `bench/out/ratelimit.json`).

Over HTTP: one `ingest serve --no-worker` per condition (limits off, PostgreSQL buckets, Redis buckets when
127.0.0.1:6379 answers), all started at once on one data dir (embedded PostgreSQL) and loaded in turn, round
by round, so every condition sees the same machine; limits too high to refuse anything (the cost of the
bucket, not of 429s); every client on one tenant (one hot bucket row, the worst case for row locks). Each run
is `--seconds` of closed-loop load at each client count: p50/p99 latency, requests/s, and the server
process's CPU milliseconds per request (from /proc, the least noisy figure on a shared machine). Each figure
is the median over rounds. At 50 clients on 2 cores the latency is queueing; 1 and 4 clients show the cost.

In-process: `--calls` sequential calls of each store's `take` (the PostgreSQL UPSERT, the Redis Lua script)
on one key, timed one by one: the limiter's own round trip, without HTTP or the app around it.
"""

import argparse
import asyncio
import base64
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import LoadServer, load_in_turn, medians, percentile, print_table, save_report, stop_postgres

REDIS_URL = "redis://127.0.0.1:6379/14"


def redis_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


async def time_store(store: Any, calls: int) -> dict[str, float]:
    """p50/p99 of one store's `take` on one key, in milliseconds."""
    from ingest.ratelimit import Limit

    await store.open()
    try:
        key, limit = [f"rl:read:bench:{uuid.uuid4()}"], [Limit(1_000_000.0, 1_000_000)]
        for _ in range(50):
            await store.take(key, limit)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            await store.take(key, limit)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await store.aclose()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 3), "p99_ms": round(percentile(times, 0.99), 3)}


def time_stores(data_dir: Path, calls: int, rounds: int, with_redis: bool) -> dict[str, dict[str, float]]:
    from ingest.db.session import libpq_url, start_embedded_postgres
    from ingest.ratelimit import PostgresBucketStore, RedisBucketStore

    url = libpq_url(start_embedded_postgres(data_dir))
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(rounds):
        runs.setdefault("postgres take", []).append(asyncio.run(time_store(PostgresBucketStore(url), calls)))
        if with_redis:
            runs.setdefault("redis take", []).append(
                asyncio.run(time_store(RedisBucketStore(REDIS_URL), calls))
            )
    return {
        name: {k: statistics.median(r[k] for r in results) for k in ("p50_ms", "p99_ms")}
        for name, results in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="1,4,50", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=8, help="of timed load per client count and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000, help="in-process calls of each store's take")
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    conditions: dict[str, dict[str, str]] = {
        "off": {"INGEST_RATE_LIMIT_ENABLED": "false"},
        "postgres": {"INGEST_RATE_LIMIT_ENABLED": "true"},
    }
    with_redis = redis_up()
    if with_redis:
        conditions["redis"] = {"INGEST_RATE_LIMIT_ENABLED": "true", "INGEST_REDIS_URL": REDIS_URL}
    else:
        print("Redis at 127.0.0.1:6379 does not answer: Redis buckets skipped")
    load_start = os.getloadavg()
    secret = "bench-" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory(prefix="ingest-ratelimit-bench-") as tmp:
        data_dir = Path(tmp)
        servers = {name: LoadServer(data_dir, secret) for name in conditions}
        try:
            first = next(iter(servers.values()))
            first.run("migrate")
            tenant = str(uuid.uuid4())
            token = first.token([tenant])
            for name, server in servers.items():
                server.start(conditions[name], name)
            for server in servers.values():
                server.wait_ready()
            runs = load_in_turn(servers, token, tenant, client_counts, args.seconds, args.rounds)
        finally:
            for server in servers.values():
                server.stop()
        try:
            stores = time_stores(data_dir, args.calls, args.rounds, with_redis)
        finally:
            stop_postgres(data_dir)
    load_end = os.getloadavg()
    figures = ("p50_ms", "p99_ms", "requests_per_s", "server_cpu_ms_per_request")
    summary = medians(runs, figures)
    overhead = {}
    for clients in client_counts:
        off = summary[f"off / {clients} clients"]
        for name in conditions:
            if name != "off":
                row = summary[f"{name} / {clients} clients"]
                overhead[f"{name} / {clients} clients"] = {
                    "p50_ms": round(row["p50_ms"] - off["p50_ms"], 2),
                    "server_cpu_ms_per_request": round(
                        row["server_cpu_ms_per_request"] - off["server_cpu_ms_per_request"], 2
                    ),
                }
    report = {
        "clients": client_counts,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "calls": args.calls,
        "load_average_at_start": load_start,
        "load_average_at_end": load_end,
        "summary": summary,
        "overhead_vs_off": overhead,
        "stores": stores,
        "runs": runs,
    }
    save_report("ratelimit.json", report)
    print_table("condition | p50 ms | p99 ms | requests/s | server CPU ms/request", summary, figures)
    print()
    print_table(
        "limits minus off | p50 ms | server CPU ms/request", overhead, ("p50_ms", "server_cpu_ms_per_request")
    )
    print()
    print_table(f"store call ({args.calls} calls) | p50 ms | p99 ms", stores, ("p50_ms", "p99_ms"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
