"""Per-request cost of the API: `GET /api/v1/sources` on this checkout against a baseline commit's code.

`.venv/bin/python bench/request_bench.py [--baseline REF] [--clients 1,10] [--seconds 8] [--rounds 3]`
(results in `bench/out/requests.json`). Two `ingest serve --no-worker` on one data dir (embedded PostgreSQL):
one runs this checkout, the other the `src/` of REF (`git archive`, put first on PYTHONPATH; same venv and
database schema), limits on (PostgreSQL buckets, too high to refuse anything), INFO request log on. Loaded in
turn, round by round (interleaved, so both see the same machine), by closed-loop clients on one tenant: median
over rounds of requests/s, p50 latency and the server process's CPU milliseconds per request.
"""

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from common import ROOT, LoadServer, load_in_turn, medians, print_table, save_report, stop_postgres


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="d4778ec", help="git ref whose src/ is the baseline")
    parser.add_argument("--clients", default="1,10", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    load_start = os.getloadavg()
    secret = "bench-" + base64.urlsafe_b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory(prefix="ingest-request-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.baseline, "src"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        servers = {
            f"baseline {args.baseline}": LoadServer(data_dir, secret, src=Path(tmp) / "src"),
            "this checkout": LoadServer(data_dir, secret),
        }
        try:
            current = servers["this checkout"]
            current.run("migrate")
            tenant = str(uuid.uuid4())
            token = current.token([tenant])
            for i, server in enumerate(servers.values()):
                server.start({"INGEST_RATE_LIMIT_ENABLED": "true"}, f"requests-{i}")
            for server in servers.values():
                server.wait_ready()
            runs = load_in_turn(servers, token, tenant, client_counts, args.seconds, args.rounds)
        finally:
            for server in servers.values():
                server.stop()
            stop_postgres(data_dir)
    load_end = os.getloadavg()
    figures = ("requests_per_s", "p50_ms", "server_cpu_ms_per_request")
    summary = medians(runs, figures)
    base_name, current_name = list(servers)
    ratios: dict[str, dict[str, Any]] = {}
    for clients in client_counts:
        base, now = (
            summary[f"{base_name} / {clients} clients"],
            summary[f"{current_name} / {clients} clients"],
        )
        ratios[f"{clients} clients"] = {
            "requests_per_s": round(now["requests_per_s"] / base["requests_per_s"], 2),
            "server_cpu_ms_per_request": round(
                now["server_cpu_ms_per_request"] / base["server_cpu_ms_per_request"], 2
            ),
        }
    report = {
        "baseline": args.baseline,
        "clients": client_counts,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "load_average_at_start": load_start,
        "load_average_at_end": load_end,
        "summary": summary,
        "ratios_this_over_baseline": ratios,
        "runs": runs,
    }
    save_report("requests.json", report)
    print_table("code / clients | requests/s | p50 ms | server CPU ms/request", summary, figures)
    print()
    print_table(
        "clients | requests/s ratio | CPU ms/request ratio",
        ratios,
        ("requests_per_s", "server_cpu_ms_per_request"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
