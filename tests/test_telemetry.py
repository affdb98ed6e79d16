"""Metrics and traces after a real sync (faker connector -> Iceberg) and a real file import.

`/metrics` is read with prometheus-client's own text parser; spans go to an in-memory exporter installed
in this process (the same SDK path the OTLP exporter uses), and log lines are read as the service wrote them.
"""

import dataclasses
import logging
import uuid

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from ingest import tracing
from tests.conftest import assert_error_body, build_app, headers_for
from tests.files.helpers import configure, start_import, uploaded
from tests.files.helpers import wait_for as wait_for_file
from tests.processes import own_database
from tests.syncs.test_api import run_sync, setup_connection

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """Tracing on for the rest of this process, into memory (a provider can be set once per process)."""
    tracing.install("ingest-test", exporter=EXPORTER)
    return EXPORTER


@pytest.fixture
async def live_client(app_settings, database_url):
    """The API with an in-process worker on a database of its own: the counters are per process, so the
    worker must run this test's jobs only, never one an earlier test queued on the shared database."""
    with own_database(database_url, prefix="ingest_telemetry") as url:
        app = build_app(app_settings, url, run_worker_in_process=True)
        async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as client:
            yield client


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_and_traces_of_a_sync_and_an_import(live_client, spans, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    before_response = await live_client.get("/metrics")
    assert before_response.status_code == 200
    assert before_response.headers["content-type"].startswith("text/plain")
    before = samples(before_response.text)

    connection = await setup_connection(live_client, headers, count=25)
    sync = await run_sync(live_client, headers, connection["id"])
    assert sync["status"] == "SUCCEEDED", sync

    csv = tmp_path / "orders.csv"
    csv.write_text("id,amount\n1,2.5\n2,3.5\n3,4.5\n")
    file = await uploaded(live_client, headers, csv)
    await configure(live_client, headers, file["id"], targetTableName="orders", targetSchema="raw")
    await start_import(live_client, headers, file["id"])
    assert (await wait_for_file(live_client, headers, file["id"]))["status"] == "COMPLETED"

    text = (await live_client.get("/metrics")).text
    after = samples(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ingest_syncs_total", outcome="SUCCEEDED") == 1
    assert delta("ingest_sync_records_total") == sync["recordsSynced"] > 0
    assert delta("ingest_sync_bytes_total") == sync["bytesSynced"] > 0
    assert delta("ingest_sync_duration_seconds_count", outcome="SUCCEEDED") == 1
    assert delta("ingest_imports_total", outcome="COMPLETED") == 1
    assert delta("ingest_import_records_total") == 3
    assert delta("ingest_import_bytes_total") == csv.stat().st_size
    assert delta("ingest_import_duration_seconds_count", outcome="COMPLETED") == 1
    trigger_route = "/api/v1/syncs/connections/{connection_id}/trigger"
    assert delta("ingest_http_requests_total", method="POST", route=trigger_route, status="202") == 1
    assert delta("ingest_http_request_duration_seconds_count", method="POST", route=trigger_route) == 1
    assert any(name == "ingest_connector_processes_running" for name, _ in after)
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "ingest_jobs_waiting",
        "ingest_jobs_oldest_waiting_seconds",
        "ingest_airbyte_requests",
    } <= families
    # no tenant ids, object ids or raw paths in any label
    assert str(tenant) not in text and connection["id"] not in text and file["id"] not in text

    # traces: the trigger's request span is the parent of the sync job, which holds the connector run and
    # the Iceberg commits; the import the same way
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def request_span(method: str, route: str):
        found = [s for s in finished if s.name == f"{method} {route}"]
        assert found, sorted({s.name for s in finished})
        return found[-1]

    def descendants(root) -> list:
        out = []
        for s in finished:
            parent = s.parent
            while parent is not None and parent.span_id in by_id:
                if parent.span_id == root.context.span_id:
                    out.append(s)
                    break
                parent = by_id[parent.span_id].parent
        return out

    trigger = request_span("POST", trigger_route)
    under_trigger = {s.name for s in descendants(trigger)}
    assert {"job syncs.run", "connector.read", "iceberg.commit"} <= under_trigger, under_trigger
    assert all(s.context.trace_id == trigger.context.trace_id for s in descendants(trigger))
    imported = request_span("POST", "/api/v1/files/{file_id}/import")
    assert {"job files.import", "iceberg.commit"} <= {s.name for s in descendants(imported)}
    created = request_span("POST", "/api/v1/connections")
    assert "connector.discover" in {s.name for s in descendants(created)}, sorted({s.name for s in finished})

    # log lines: the request's own line and the job's lines carry the trigger's trace id
    trace_id = format(trigger.context.trace_id, "032x")
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("trace_id") == trace_id]
    names = {e["event"] for e in events}
    assert {"http.request", "syncs.ended"} <= names, names


async def test_airbyte_calls_are_child_spans_and_counted(settings, database_url, fake_airbyte, spans):
    """On the airbyte engine, each HTTP call to Airbyte is a client span under the request's span."""
    from tests.fake_airbyte.plugin import airbyte_overrides

    app = build_app(
        dataclasses.replace(settings, **airbyte_overrides(fake_airbyte)),
        database_url,
        run_worker_in_process=False,
    )
    headers = headers_for(uuid.uuid4())
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        before = samples((await client.get("/metrics")).text)
        spans.clear()
        response = await client.get("/api/v1/sources/connector-types/faker/spec", headers=headers)
        assert response.status_code == 200, response.text
        after = samples((await client.get("/metrics")).text)
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.name == "GET /api/v1/sources/connector-types/{connector_type}/spec"]
    assert server
    children = [
        s
        for s in finished
        if s.parent is not None
        and s.context.trace_id == server[0].context.trace_id
        and s.attributes.get("http.request.method", s.attributes.get("http.method"))
        and s is not server[0]
    ]
    assert children, [(s.name, dict(s.attributes)) for s in finished]
    calls = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "ingest_airbyte_requests_total" and ("outcome", "ok") in k[1]
    )
    assert calls >= 1


async def test_metrics_token_and_off(settings, database_url):
    token_settings = dataclasses.replace(settings, metrics_auth="token", metrics_token="scrape-me")
    async with AsyncTestClient(
        app=build_app(token_settings, database_url, run_worker_in_process=False),
        raise_server_exceptions=False,
    ) as client:
        assert_error_body(await client.get("/metrics"), 401)
        assert_error_body(await client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        response = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert response.status_code == 200 and "ingest_http_requests" in response.text
    off = dataclasses.replace(settings, metrics_auth="off")
    async with AsyncTestClient(
        app=build_app(off, database_url, run_worker_in_process=False), raise_server_exceptions=False
    ) as client:
        assert_error_body(await client.get("/metrics"), 404)
