"""Several real processes on one host and one database: `ingest serve` x 2 and `ingest worker`.

- the rate limit is one limit across both API processes;
- `/metrics` (PROMETHEUS_MULTIPROC_DIR) answers the sum of every process's series, read with
  prometheus-client's own parser, and a stopped process's live gauges leave with it;
- traces go through the real OTLP/HTTP exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`) to a collector in this
  process that decodes the protobuf `ExportTraceServiceRequest`: a trigger's request span (API process) is the
  parent of its sync job's span (worker process), which holds the connector run and the Iceberg commits; the
  trace id is in the queued job and in both processes' log lines.
"""

import gzip
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from ingest.db.session import libpq_url
from tests.conftest import assert_error_body, headers_for
from tests.processes import free_port, own_database, running, serve_command, stop, wait_ready
from tests.syncs.test_api import setup_connection

READ_BURST = 4
TRIGGER_ROUTE = "/api/v1/syncs/connections/{connection_id}/trigger"


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str


class Collector:
    """An OTLP/HTTP trace receiver: decodes each export as the protocol defines it and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                assert self.path == "/v1/traces", self.path
                assert self.headers["Content-Type"] == "application/x-protobuf"
                collector.receive(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=attributes.get("service.name", ""),
                                name=span.name,
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_id=span.parent_span_id.hex(),
                            )
                        )

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


@dataclass
class Stack:
    apis: list[str]
    processes: list[Any]  # Popen: serve A, serve B, worker
    database_url: str
    metrics_dir: Path
    log_dir: Path
    collector: Collector

    def log_lines(self, index: int) -> list[dict[str, Any]]:
        lines = []
        for line in (self.log_dir / f"process-{index}.log").read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines


@pytest.fixture(scope="module")
def stack(env_for_subprocess, database_url, tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("multiprocess")
    metrics_dir, log_dir, data_dir = base / "metrics", base / "logs", base / "data"
    for path in (metrics_dir, log_dir, data_dir):
        path.mkdir()
    collector = Collector()
    collector.thread.start()
    try:
        with own_database(database_url, prefix="ingest_multiprocess") as url:
            env = dict(
                env_for_subprocess,
                INGEST_DATABASE_URL=url,
                INGEST_DATA_DIR=str(data_dir),
                INGEST_LOG_FORMAT="json",
                INGEST_LOG_LEVEL="INFO",
                INGEST_SCHEDULER_ENABLED="false",
                INGEST_WORKER_CONCURRENCY="1",
                INGEST_JOB_STALL_SECONDS="60",
                # a small read bucket that does not refill during the test (one token every 50 s)
                INGEST_RATE_LIMIT_READ_BURST=str(READ_BURST),
                INGEST_RATE_LIMIT_READ_RATE="0.02",
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
                OTEL_BSP_SCHEDULE_DELAY="100",  # ms: spans reach the collector soon after they end
            )
            ports = [free_port(), free_port()]
            commands = [serve_command(ports[0]), serve_command(ports[1]), ["worker"]]
            with running(commands, env, log_dir) as processes:
                apis = [f"http://127.0.0.1:{p}" for p in ports]
                wait_ready(apis, processes, log_dir)
                yield Stack(apis, processes, url, metrics_dir, log_dir, collector)
    finally:
        collector.server.shutdown()
        collector.server.server_close()


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def scrape(api: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{api}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    return metric_samples(response.text)


def sample(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_two_api_processes_share_one_limit(stack):
    headers = headers_for(uuid.uuid4())
    answers = [
        httpx.get(f"{stack.apis[i % 2]}/api/v1/me", headers=headers, timeout=30)
        for i in range(READ_BURST + 1)
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * READ_BURST + [429], statuses
    # one bucket: each answer, from either process, counts down what the other one took
    remaining = [int(a.headers["RateLimit-Remaining"]) for a in answers]
    assert remaining == [*range(READ_BURST - 1, -1, -1), 0], remaining
    assert_error_body(answers[-1], 429, "rate limit")
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # the first process is out of tokens for this tenant too; health, readiness and metrics never are
    assert httpx.get(f"{stack.apis[0]}/api/v1/me", headers=headers, timeout=30).status_code == 429
    for api in stack.apis:
        for path in ("/health", "/ready", "/metrics"):
            response = httpx.get(f"{api}{path}", headers=headers, timeout=30)
            assert response.status_code == 200 and "RateLimit-Limit" not in response.headers


def test_metrics_are_the_sum_of_every_process(stack):
    labels = {"method": "GET", "route": "/health", "status": "200"}
    before = [sample(scrape(api), "ingest_http_requests_total", **labels) for api in stack.apis]
    assert before[0] == before[1]  # either process answers the same, summed, series
    for i in range(5):
        assert httpx.get(f"{stack.apis[i % 2]}/health", timeout=30).status_code == 200  # 3 on A, 2 on B
    after = [scrape(api) for api in stack.apis]
    for found in after:
        assert sample(found, "ingest_http_requests_total", **labels) - before[0] == 5
        duration = sample(found, "ingest_http_request_duration_seconds_count", method="GET", route="/health")
        assert duration >= 5
    files = {p.name.split("_")[0] for p in stack.metrics_dir.glob("*.db")}
    assert {"counter", "histogram"} <= files  # the series are the processes' files, not one process's memory


def wait_for_sync(database_url: str, sync_id: str, timeout: float = 180.0) -> str:
    deadline = time.monotonic() + timeout
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT status FROM syncs WHERE id = %s", (sync_id,)).fetchone()
            assert row is not None
            if row[0] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                return str(row[0])
            assert time.monotonic() < deadline, f"sync {sync_id} still {row[0]}"
            time.sleep(0.5)


async def test_a_sync_is_one_trace_across_processes_and_counted_once(stack):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    async with httpx.AsyncClient(base_url=stack.apis[0], timeout=120) as api_a:
        connection = await setup_connection(api_a, headers, count=12)
    async with httpx.AsyncClient(base_url=stack.apis[1], timeout=120) as api_b:
        triggered = await api_b.post(f"/api/v1/syncs/connections/{connection['id']}/trigger", headers=headers)
    assert triggered.status_code == 202, triggered.text
    sync_id = triggered.json()["id"]
    assert wait_for_sync(stack.database_url, sync_id) == "SUCCEEDED"

    # the job carries the request's trace context (W3C traceparent: 00-<trace id>-<span id>-<flags>)
    with psycopg.connect(libpq_url(stack.database_url)) as conn:
        row = conn.execute(
            "SELECT args->>'traceparent' FROM procrastinate_jobs WHERE args->>'sync_id' = %s", (sync_id,)
        ).fetchone()
    assert row is not None and row[0], row
    _, trace_id, parent_span, _ = row[0].split("-")

    # spans of both processes reach the collector through the OTLP exporter's batch processor
    wanted = {"job syncs.run", "connector.read", "iceberg.commit"}
    deadline = time.monotonic() + 30
    while True:
        spans = [s for s in stack.collector.received() if s.trace_id == trace_id]
        if wanted <= {s.name for s in spans} and any(s.name == f"POST {TRIGGER_ROUTE}" for s in spans):
            break
        assert time.monotonic() < deadline, sorted({(s.service, s.name) for s in spans})
        time.sleep(0.3)
    request = next(s for s in spans if s.name == f"POST {TRIGGER_ROUTE}")
    assert request.service == "ingest-api" and request.span_id == parent_span
    job = next(s for s in spans if s.name == "job syncs.run")
    assert job.service == "ingest-worker" and job.parent_id == request.span_id
    by_id = {s.span_id: s for s in spans}

    def under_job(span: ReceivedSpan) -> bool:
        while span.parent_id in by_id:
            if span.parent_id == job.span_id:
                return True
            span = by_id[span.parent_id]
        return False

    assert {"connector.read", "iceberg.commit"} <= {s.name for s in spans if under_job(s)}
    assert all(s.service == "ingest-worker" for s in spans if under_job(s))

    # the trigger's access line (API process B) and the sync's lines (worker) name the same trace
    api_lines = [e for e in stack.log_lines(1) if e.get("trace_id") == trace_id]
    assert any(e["event"] == "http.request" and e.get("status") == 202 for e in api_lines), api_lines
    worker_events = {e["event"] for e in stack.log_lines(2) if e.get("trace_id") == trace_id}
    assert "syncs.ended" in worker_events, worker_events

    # the worker's counters show through either API process's /metrics
    for api in stack.apis:
        found = scrape(api)
        assert sample(found, "ingest_syncs_total", outcome="SUCCEEDED") == 1
        assert sample(found, "ingest_sync_records_total") > 0
        assert sample(found, "ingest_connector_processes_running") == 0
        assert str(tenant) not in httpx.get(f"{api}/metrics", timeout=30).text


def test_a_stopped_process_takes_its_live_gauges_and_leaves_its_counts(stack):
    api_b, worker = stack.processes[1], stack.processes[2]
    for process in (api_b, worker):
        assert (stack.metrics_dir / f"gauge_livesum_{process.pid}.db").exists()
    before = scrape(stack.apis[0])
    stop([worker, api_b])  # SIGTERM: the worker's exit and the server's lifespan end call mark_process_dead
    # uvicorn re-raises the SIGTERM it handled once its graceful shutdown (lifespan end included) is done
    assert api_b.returncode in (0, -signal.SIGTERM), api_b.returncode
    assert worker.returncode == 0, worker.returncode
    for process in (api_b, worker):
        assert not (stack.metrics_dir / f"gauge_livesum_{process.pid}.db").exists()
    after = scrape(stack.apis[0])
    for name, labels in (
        ("ingest_syncs_total", {"outcome": "SUCCEEDED"}),
        ("ingest_http_requests_total", {"method": "GET", "route": "/health", "status": "200"}),
    ):
        assert sample(after, name, **labels) == sample(before, name, **labels) > 0, name
