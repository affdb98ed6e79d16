"""Chunked (tus) vs one-request upload throughput through a real `ingest serve` (`make bench` runs it).

The same CSV is uploaded to one server, interleaving: one request (streamed multipart, httpx), tus in
8 MiB chunks (the default INGEST_UPLOAD_CHUNK_BYTES) and tus in 32 MiB chunks (tuspy, the official tus
Python client), each to the file record (UPLOADED). Each run uses a fresh tenant, so every run starts with
a full rate-limit bucket (the limiter stays on: its cost per chunk is part of what is measured).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from common import OUT, Server, stop_postgres
from files_bench import generate
from tusclient.client import TusClient

MiB = 1024**2


def one_request(server: Server, path: Path) -> float:
    headers = server.headers(str(uuid.uuid4()))
    start = time.perf_counter()
    with path.open("rb") as f, httpx.Client(base_url=server.base, headers=headers, timeout=600) as client:
        response = client.post("/api/v1/files/upload", files={"file": (path.name, f)})
    seconds = time.perf_counter() - start
    response.raise_for_status()
    assert response.json()["fileSize"] == path.stat().st_size
    return seconds


def chunked(chunk: int) -> Callable[[Server, Path], float]:
    def run(server: Server, path: Path) -> float:
        headers = server.headers(str(uuid.uuid4()))
        client = TusClient(f"{server.base}/api/v1/files/uploads", headers=headers)
        start = time.perf_counter()
        uploader = client.uploader(file_path=str(path), chunk_size=chunk, metadata={"filename": path.name})
        uploader.upload()
        seconds = time.perf_counter() - start
        state = httpx.get(f"{uploader.url}", headers=headers).json()
        assert state["status"] == "COMPLETED", state
        return seconds

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the CSV (239 bytes each)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"orders_{args.rows}.csv"
    if not path.exists():
        generate(path, args.rows)
    size_mb = path.stat().st_size / 1e6
    cases: dict[str, Callable[[Server, Path], float]] = {
        "one request": one_request,
        "tus 8 MiB chunks": chunked(8 * MiB),
        "tus 32 MiB chunks": chunked(32 * MiB),
    }
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-uploads-") as tmp:
        server = Server(Path(tmp), env={"INGEST_UPLOAD_CHUNK_BYTES": str(32 * MiB)})
        try:
            server.wait_ready()
            for _ in range(args.runs):  # interleaved: each round runs every case once
                for name, case in cases.items():
                    seconds[name].append(case(server, path))
        finally:
            server.stop()
            stop_postgres(Path(tmp))
    base = statistics.median(seconds["one request"])
    results = []
    print(f"{path.name}: {size_mb:.0f} MB, {args.runs} interleaved runs (medians)")
    print(f"{'upload':20s} {'s':>7s} {'MB/s':>7s} {'time / one request':>19s}")
    for name, values in seconds.items():
        median = statistics.median(values)
        results.append({"case": name, "seconds": values, "median_s": median, "mb_s": size_mb / median})
        print(f"{name:20s} {median:7.2f} {size_mb / median:7.0f} {median / base:19.2f}")
    (OUT / "uploads.json").write_text(json.dumps({"file_mb": size_mb, "results": results}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
