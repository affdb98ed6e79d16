"""Webhooks: registration, URL rules (SSRF guard), signed deliveries with retries, events from the code paths."""

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook as Verifier

from tests.conftest import READ, assert_error_body, build_app, headers_for
from tests.webhooks.receiver import receiver

LOCAL = "http://127.0.0.1:9/hook"  # nothing listens there: for tests that deliver nothing


@pytest.fixture
def local_settings(settings):
    """Settings that let webhooks reach a receiver on 127.0.0.1 over http, with short retry waits."""
    return dataclasses.replace(
        settings, webhook_allow_private=True, webhook_allow_http=True, webhook_retry_base_seconds=0.2
    )


@pytest.fixture
async def local_client(
    local_settings, database_url, rollback_session_maker
) -> AsyncIterator[AsyncTestClient]:
    app = build_app(
        local_settings, database_url, session_maker=rollback_session_maker, run_worker_in_process=False
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
async def live(local_settings, database_url) -> AsyncIterator[AsyncTestClient]:
    """Committed data and an in-process worker that delivers (isolate with a fresh tenant)."""
    app = build_app(local_settings, database_url, run_worker_in_process=True)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as client:
        yield client


async def create(client, headers, url=LOCAL, events=("sync.failed",), **extra) -> dict:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": list(events), **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def wait_delivery(
    client, headers, webhook_id: str, status: str, count: int = 1, timeout=60.0
) -> list[dict]:
    deadline = time.monotonic() + timeout
    content: list[dict] = []
    while time.monotonic() < deadline:
        page = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=headers)
        assert page.status_code == 200, page.text
        content = page.json()["content"]
        if len(content) >= count and all(d["status"] == status for d in content):
            return list(content)
        await asyncio.sleep(0.1)
    raise AssertionError(f"deliveries never all {status}: {content}")


async def test_create_returns_the_secret_once_and_crud(local_client, headers):
    created = await create(
        local_client, headers, events=["sync.failed", "import.completed"], description="ops"
    )
    assert created["secret"].startswith("whsec_")
    assert (created["enabled"], created["disabledReason"], created["description"]) == (True, None, "ops")
    url = f"/api/v1/webhooks/{created['id']}"
    got = (await local_client.get(url, headers=headers)).json()
    assert "secret" not in got and got["events"] == ["sync.failed", "import.completed"]
    assert [w["id"] for w in (await local_client.get("/api/v1/webhooks", headers=headers)).json()] == [
        created["id"]
    ]
    assert "secret" not in str((await local_client.get("/api/v1/webhooks", headers=headers)).json())
    put = await local_client.put(
        url, json={"url": LOCAL + "2", "events": ["sync.succeeded"], "enabled": False}, headers=headers
    )
    assert put.status_code == 200, put.text
    assert (put.json()["url"], put.json()["events"], put.json()["enabled"]) == (
        LOCAL + "2",
        ["sync.succeeded"],
        False,
    )
    assert (await local_client.delete(url, headers=headers)).status_code == 204
    assert_error_body(await local_client.get(url, headers=headers), 404)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": LOCAL, "events": ["sync.exploded"]}, "sync.exploded"),
        ({"url": LOCAL, "events": []}, "events"),
        ({"url": "ftp://127.0.0.1/x", "events": ["sync.failed"]}, "https"),
        ({"url": "not a url", "events": ["sync.failed"]}, "https"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["sync.failed"]}, "credentials"),
    ],
)
async def test_invalid_webhooks_are_400(local_client, headers, body, message):
    assert_error_body(await local_client.post("/api/v1/webhooks", json=body, headers=headers), 400, message)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://203.0.113.10/hook", "https"),  # http outside development
        ("https://127.0.0.1/hook", "private, loopback or link-local"),
        ("https://localhost:8443/hook", "private, loopback or link-local"),  # a name resolving to loopback
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://172.16.5.4/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),  # the cloud metadata address
        ("https://[::1]/hook", "private"),
        ("https://[fe80::1]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),  # IPv4-mapped
        ("https://0.0.0.0/hook", "private"),
    ],
)
async def test_private_and_plain_http_targets_are_refused_by_default(client, headers, url, message):
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": ["sync.failed"]}, headers=headers
    )
    assert_error_body(response, 400, message)


async def test_signed_delivery_retried_until_the_receiver_answers(live, tenant):
    """The receiver fails twice (503, 503) then answers 200: one delivery, three attempts, same message id."""
    headers = headers_for(tenant)
    with receiver() as hook:
        hook.script = [503, 503]
        created = await create(live, headers, url=hook.url)
        test = await live.post(f"/api/v1/webhooks/{created['id']}/test", headers=headers)
        assert test.status_code == 202, test.text
        assert (test.json()["eventType"], test.json()["status"]) == ("webhook.test", "PENDING")
        [delivery] = await wait_delivery(live, headers, created["id"], "DELIVERED")
        got = hook.wait_for(3)
    assert [a["statusCode"] for a in delivery["attempts"]] == [503, 503, 200]
    assert [a["error"] for a in delivery["attempts"]] == ["HTTP 503", "HTTP 503", None]
    assert all(a["durationMs"] >= 0 for a in delivery["attempts"])
    assert delivery["deliveredAt"] and delivery["lastStatusCode"] == 200
    assert len(got) == 3
    assert {r.headers["webhook-id"] for r in got} == {delivery["messageId"]}  # the idempotency key
    # the library's own verifier accepts every attempt's signature with the secret given at create time
    verifier = Verifier(created["secret"])
    for request in got:
        payload = verifier.verify(request.body, request.headers)
        assert payload["type"] == "webhook.test"
        assert payload["data"] == {"webhookId": created["id"]}
    # and refuses a tampered body or another secret
    with pytest.raises(Exception, match=r"(?i)signature"):
        verifier.verify(got[-1].body.replace(b"webhook", b"w3bhook"), got[-1].headers)
    with pytest.raises(Exception, match=r"(?i)signature"):
        Verifier("whsec_" + "A" * 43 + "=").verify(got[-1].body, got[-1].headers)


async def test_non_retryable_answers_and_redirects_fail_at_once(live, tenant):
    headers = headers_for(tenant)
    with receiver() as hook, receiver() as elsewhere:
        hook.script = [400]
        created = await create(live, headers, url=hook.url)
        await live.post(f"/api/v1/webhooks/{created['id']}/test", headers=headers)
        [delivery] = await wait_delivery(live, headers, created["id"], "FAILED")
        assert [a["statusCode"] for a in delivery["attempts"]] == [400]

        hook.redirect_to = elsewhere.url
        await live.post(f"/api/v1/webhooks/{created['id']}/test", headers=headers)
        deliveries = await wait_delivery(live, headers, created["id"], "FAILED", count=2)
        assert deliveries[0]["attempts"][0]["statusCode"] == 307
        assert "redirects are not followed" in deliveries[0]["lastError"]
        await asyncio.sleep(0.5)
        assert elsewhere.received == []  # the redirect target was never called


async def test_import_events_are_emitted_with_ids_and_counts_only(live, tenant, tmp_path):
    headers = headers_for(tenant)
    with receiver() as hook:
        created = await create(live, headers, url=hook.url, events=["import.completed", "import.failed"])
        other = await create(live, headers, url=hook.url, events=["sync.failed"])  # not subscribed
        sample = tmp_path / "orders.csv"
        sample.write_text("id,name\n1,a\n2,b\n3,c\n")
        upload = await live.post(
            "/api/v1/files/upload", files={"file": ("orders.csv", sample.read_bytes())}, headers=headers
        )
        file_id = upload.json()["id"]
        await live.put(f"/api/v1/files/{file_id}/schema", json={"targetTableName": "orders"}, headers=headers)
        assert (await live.post(f"/api/v1/files/{file_id}/import", headers=headers)).status_code == 202
        [delivery] = await wait_delivery(live, headers, created["id"], "DELIVERED")
        [request] = hook.wait_for(1)
    payload = Verifier(created["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "import.completed" == delivery["eventType"]
    assert payload["data"]["fileId"] == file_id
    assert (payload["data"]["status"], payload["data"]["recordsImported"]) == ("COMPLETED", 3)
    assert payload["data"]["completedAt"]
    # recordsRejected: null under onError abort (a count under skip)
    assert payload["data"]["recordsRejected"] is None
    assert set(payload["data"]) == {"fileId", "status", "recordsImported", "recordsRejected", "completedAt"}
    page = (await live.get(f"/api/v1/webhooks/{other['id']}/deliveries", headers=headers)).json()
    assert page["totalElements"] == 0


async def test_the_outbox_is_the_change_transaction(local_client, headers, rollback_session_maker):
    """A change that fails (rolled back) leaves no delivery; one that commits leaves exactly one job."""
    from sqlalchemy import text

    created = await create(local_client, headers, events=["sync.cancelled", "connection.paused"])
    src = await local_client.post(
        "/api/v1/sources",
        json={
            "name": "s",
            "connectorType": "faker",
            "connectionConfig": {"count": 5, "seed": 1, "parallelism": 1},
        },
        headers=headers,
    )
    connection = await local_client.post(
        "/api/v1/connections",
        json={"sourceId": src.json()["id"], "name": "c", "selectedStreams": ["products"]},
        headers=headers,
    )
    cid = connection.json()["id"]
    sync = await local_client.post(f"/api/v1/syncs/connections/{cid}/trigger", headers=headers)
    assert (
        await local_client.post(f"/api/v1/syncs/{sync.json()['id']}/cancel", headers=headers)
    ).status_code == 204
    assert (await local_client.post(f"/api/v1/connections/{cid}/pause", headers=headers)).status_code == 200
    assert (
        await local_client.post(f"/api/v1/syncs/connections/{cid}/trigger", headers=headers)
    ).status_code == 409
    page = (await local_client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=headers)).json()
    assert [d["eventType"] for d in page["content"]][::-1] == ["sync.cancelled", "connection.paused"]
    async with rollback_session_maker() as session:
        jobs = (
            await session.execute(
                text(
                    "SELECT args->>'delivery_id', lock FROM procrastinate_jobs WHERE task_name = 'ingest:webhooks.deliver' "
                    "AND args->>'tenant_id' = :tenant"
                ),
                {"tenant": headers["X-Tenant-Id"]},
            )
        ).all()
    assert sorted(j[0] for j in jobs) == sorted(d["id"] for d in page["content"])
    assert {j[1] for j in jobs} == {f"webhook:{created['id']}"}
    paused = json.dumps(page["content"])
    assert "connectionConfig" not in paused and "count" not in paused


async def test_delivery_time_guard_refuses_an_address_no_longer_allowed(live, tenant, settings, database_url):
    """A webhook saved while private targets were allowed is not delivered once they are not."""
    from ingest.db.session import create_engine, session_factory
    from ingest.jobs.runtime import Runtime
    from ingest.webhooks.service import attempt_delivery

    headers = headers_for(tenant)
    with receiver() as hook:
        created = await create(live, headers, url=hook.url)
        strict = dataclasses.replace(settings, webhook_allow_http=True)  # private still refused
        engine = create_engine(database_url)
        runtime = Runtime(settings=strict, session_maker=session_factory(engine), database_url=database_url)
        app = build_app(strict, database_url, run_worker_in_process=False)
        async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
            test = await client.post(f"/api/v1/webhooks/{created['id']}/test", headers=headers)
            await attempt_delivery(runtime, tenant, uuid.UUID(test.json()["id"]))
            [delivery] = (
                await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=headers)
            ).json()["content"]
        await runtime.aclose()
        await engine.dispose()
        assert delivery["status"] == "FAILED"
        assert "private, loopback or link-local" in delivery["lastError"]
        assert hook.received == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/webhooks/{id}"),
        ("put", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
    ],
)
async def test_other_tenants_webhook_is_404(local_client, headers, method, path):
    created = await create(local_client, headers)
    url = path.format(id=created["id"])
    kwargs = {"json": {"url": LOCAL, "events": ["sync.failed"]}} if method == "put" else {}
    assert_error_body(
        await getattr(local_client, method)(url, headers=headers_for(uuid.uuid4()), **kwargs), 404
    )
    assert (await local_client.get(f"/api/v1/webhooks/{created['id']}", headers=headers)).json()[
        "url"
    ] == LOCAL


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/webhooks"),
        ("put", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/test"),
    ],
)
async def test_mutating_routes_need_token_permission_and_tenant(local_client, tenant, method, path):
    url = path.format(id=uuid.uuid4())
    kwargs = {"json": {"url": LOCAL, "events": ["sync.failed"]}} if method in {"post", "put"} else {}
    assert_error_body(await getattr(local_client, method)(url, **kwargs), 401)
    assert_error_body(
        await getattr(local_client, method)(url, headers=headers_for(tenant, READ), **kwargs), 403
    )
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await getattr(local_client, method)(url, headers=no_tenant, **kwargs), 400)


async def test_webhook_changes_are_audited(local_client, headers):
    created = await create(local_client, headers)
    await local_client.post(f"/api/v1/webhooks/{created['id']}/test", headers=headers)
    await local_client.delete(f"/api/v1/webhooks/{created['id']}", headers=headers)
    events = (await local_client.get("/api/v1/audit-events", headers=headers)).json()["content"]
    assert [(e["action"], e["targetId"]) for e in events][::-1] == [
        ("webhook.create", created["id"]),
        ("webhook.test", created["id"]),
        ("webhook.delete", created["id"]),
    ]


async def test_a_webhook_failing_for_too_long_is_disabled_with_a_reason(tenant, local_settings, database_url):
    """With the retry window and the disable threshold at zero, one failed attempt ends it all.

    No worker runs here: the test makes the attempt itself (what the delivery job does).
    """
    from ingest.db.session import create_engine, session_factory
    from ingest.jobs.runtime import Runtime
    from ingest.webhooks.service import attempt_delivery

    headers = headers_for(tenant)
    impatient = dataclasses.replace(
        local_settings, webhook_retry_for_seconds=0, webhook_disable_after_seconds=0
    )
    engine = create_engine(database_url)
    runtime = Runtime(settings=impatient, session_maker=session_factory(engine), database_url=database_url)
    app = build_app(impatient, database_url, run_worker_in_process=False)
    try:
        with receiver() as hook:
            hook.script = [503]
            async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
                created = await create(client, headers, url=hook.url)
                url = f"/api/v1/webhooks/{created['id']}"
                test = await client.post(f"{url}/test", headers=headers)
                await attempt_delivery(runtime, tenant, uuid.UUID(test.json()["id"]))  # no retry left
                webhook = (await client.get(url, headers=headers)).json()
                [delivery] = (await client.get(f"{url}/deliveries", headers=headers)).json()["content"]
                body = {"url": hook.url, "events": ["sync.failed"], "enabled": True}
                put = await client.put(url, json=body, headers=headers)
    finally:
        await runtime.aclose()
        await engine.dispose()
    assert (delivery["status"], delivery["lastStatusCode"]) == ("FAILED", 503)
    assert webhook["enabled"] is False
    assert webhook["disabledReason"].startswith("Disabled after its deliveries failed for")
    assert (put.json()["enabled"], put.json()["disabledReason"]) == (True, None)  # re-enabling clears it
