"""Prometheus metrics: `GET /metrics`, the request middleware's series, and the domain hooks' series.

With `PROMETHEUS_MULTIPROC_DIR` set (before the process starts, as prometheus-client requires), every
`ingest serve` and `ingest worker` process on the host writes its series there and `/metrics` answers
their sum; without it, the answering process's own. Queue depth and the oldest waiting job are read from
the database at scrape time. Labels never carry tenant ids or other unbounded values.
"""

import hmac
import os
import re
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.types import Scope
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from ingest.core import observe
from ingest.core.errors import UnauthorizedError
from ingest.core.settings import Settings

METRICS_PATH = "/metrics"
JOB_SECONDS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600)

HTTP_REQUESTS = Counter("ingest_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram("ingest_http_request_duration_seconds", "HTTP request latency", ["method", "route"])
SYNCS = Counter("ingest_syncs", "Syncs ended, by outcome", ["outcome"])
SYNC_DURATION = Histogram("ingest_sync_duration_seconds", "Sync run time", ["outcome"], buckets=JOB_SECONDS)
SYNC_RECORDS = Counter("ingest_sync_records", "Records synced")
SYNC_BYTES = Counter("ingest_sync_bytes", "Bytes synced")
IMPORTS = Counter("ingest_imports", "File imports ended, by outcome", ["outcome"])
IMPORT_DURATION = Histogram(
    "ingest_import_duration_seconds", "File import run time", ["outcome"], buckets=JOB_SECONDS
)
IMPORT_RECORDS = Counter("ingest_import_records", "Rows imported from files")
IMPORT_BYTES = Counter("ingest_import_bytes", "Bytes of files imported")
CONNECTORS_RUNNING = Gauge(
    "ingest_connector_processes_running", "Connector processes running", multiprocess_mode="livesum"
)
AIRBYTE_CALLS = Counter(
    "ingest_airbyte_requests", "Airbyte API calls, by operation and outcome", ["operation", "outcome"]
)
AIRBYTE_RETRIES = Counter("ingest_airbyte_retries", "Airbyte API call retries", ["operation"])

QUEUE_SQL = text(
    """
    SELECT j.queue_name, count(*),
           coalesce(extract(epoch FROM now() - min(coalesce(e.at, j.scheduled_at))), 0)
    FROM procrastinate_jobs j
    LEFT JOIN LATERAL (
        SELECT max(at) AS at FROM procrastinate_events
        WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry')
    ) e ON true
    WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    GROUP BY j.queue_name
    """
)


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_") or "unknown"


class PrometheusObserver:
    """Turns the domain hooks of `ingest.core.observe` into series."""

    def sync_finished(self, outcome: str, seconds: float | None, records: int, nbytes: int) -> None:
        SYNCS.labels(outcome).inc()
        if seconds is not None:
            SYNC_DURATION.labels(outcome).observe(seconds)
        SYNC_RECORDS.inc(records)
        SYNC_BYTES.inc(nbytes)

    def import_finished(self, outcome: str, seconds: float | None, records: int, nbytes: int) -> None:
        IMPORTS.labels(outcome).inc()
        if seconds is not None:
            IMPORT_DURATION.labels(outcome).observe(seconds)
        IMPORT_RECORDS.inc(records)
        IMPORT_BYTES.inc(nbytes)

    def airbyte_call(self, operation: str, outcome: str, retries: int) -> None:
        AIRBYTE_CALLS.labels(_slug(operation), outcome).inc()
        if retries:
            AIRBYTE_RETRIES.labels(_slug(operation)).inc(retries)

    def connector_process(self, delta: int) -> None:
        CONNECTORS_RUNNING.inc(delta)


def install() -> None:
    """Subscribe to the domain hooks (once per process: the API, a worker, the CLI)."""
    observe.subscribe(PrometheusObserver())


def process_exited() -> None:
    """In multiprocess mode, drop this process's live gauges (its counters stay: totals never go back)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _Snapshot(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


async def render(state: State) -> bytes:
    """The exposition text: every process's series (multiprocess mode) plus the queue read now."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    depth = GaugeMetricFamily("ingest_jobs_waiting", "Jobs waiting for a worker", labels=["queue"])
    oldest = GaugeMetricFamily(
        "ingest_jobs_oldest_waiting_seconds", "Age of the oldest job waiting for a worker", labels=["queue"]
    )
    async with state.session_maker() as session:
        for queue, count, age in (await session.execute(QUEUE_SQL)).all():
            depth.add_metric([str(queue)], float(count))
            oldest.add_metric([str(queue)], float(age))
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot([depth, oldest]))
    return body + generate_latest(snapshot)


def metrics_handler(settings: Settings) -> HTTPRouteHandler | None:
    """`GET /metrics` as `INGEST_METRICS_AUTH` says: open, token (a bearer token), or off (no route)."""
    mode = settings.metrics_auth.strip().lower()
    if mode == "off":
        return None
    if mode not in {"open", "token"}:
        raise ValueError("INGEST_METRICS_AUTH must be open, token or off")
    if mode == "token" and not settings.metrics_token:
        raise ValueError("INGEST_METRICS_AUTH=token needs INGEST_METRICS_TOKEN")
    expected = f"Bearer {settings.metrics_token}".encode() if mode == "token" else None

    @get(
        METRICS_PATH,
        operation_id="get_metrics",
        summary="Prometheus metrics",
        tags=["health"],
        exclude_from_auth=True,
        media_type=MediaType.TEXT,
    )
    async def get_metrics(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
        """Prometheus text exposition of the service's metrics (INGEST_METRICS_AUTH guards it)."""
        if expected is not None:
            presented = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(presented, expected):
                raise UnauthorizedError("Metrics need 'Authorization: Bearer <INGEST_METRICS_TOKEN>'")
        return Response(await render(state), media_type=CONTENT_TYPE_LATEST)

    return get_metrics


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count and time one answered request by its route template (never the raw path).

    Called by the request-log middleware, which already captures every answer's status and duration.
    """
    route = scope.get("path_template") or "unmatched"
    method = scope.get("method", "GET")
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
