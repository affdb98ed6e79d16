"""A worker killed in the middle of a delivery: the delivery is sent again by the next worker, not lost."""

import asyncio
import dataclasses
import signal
import time
import uuid

from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook as Verifier

from tests.conftest import build_app, headers_for
from tests.files.test_worker_kill import start_worker, stop
from tests.webhooks.receiver import receiver


async def test_killed_worker_mid_delivery_loses_nothing(settings, database_url, env_for_subprocess):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    local = dataclasses.replace(settings, webhook_allow_private=True, webhook_allow_http=True)
    env = {
        **env_for_subprocess,
        "INGEST_WEBHOOK_ALLOW_PRIVATE": "true",
        "INGEST_WEBHOOK_ALLOW_HTTP": "true",
        "INGEST_WEBHOOK_TIMEOUT_SECONDS": "120",  # the first attempt would wait for the hanging receiver
    }
    app = build_app(local, database_url, run_worker_in_process=False)
    with receiver() as hook:
        hook.hang_seconds = [90]  # the first request hangs: its worker is killed while waiting for it
        async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as client:
            created = await client.post(
                "/api/v1/webhooks", json={"url": hook.url, "events": ["sync.failed"]}, headers=headers
            )
            assert created.status_code == 201, created.text
            webhook = created.json()
            test = await client.post(f"/api/v1/webhooks/{webhook['id']}/test", headers=headers)
            assert test.status_code == 202, test.text
            first = start_worker(env)
            second = None
            try:
                await asyncio.to_thread(hook.wait_for, 1, 120)  # the worker is inside the HTTP request now
                await asyncio.sleep(0.3)
                stop(first, signal.SIGKILL)
                page = (
                    await client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries", headers=headers)
                ).json()
                assert page["content"][0]["status"] == "PENDING"

                second = start_worker(env)  # finds the dead worker's job (no heartbeat) and runs it again
                deadline = time.monotonic() + 120
                while True:
                    page = (
                        await client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries", headers=headers)
                    ).json()
                    delivery = page["content"][0]
                    if delivery["status"] != "PENDING":
                        break
                    assert time.monotonic() < deadline, delivery
                    await asyncio.sleep(0.2)
            finally:
                stop(first, signal.SIGKILL)
                if second is not None:
                    stop(second, signal.SIGTERM)
        got = hook.wait_for(2)
    assert delivery["status"] == "DELIVERED", delivery
    assert page["totalElements"] == 1  # one delivery, sent twice
    assert [(a["attempt"], a["statusCode"]) for a in delivery["attempts"]] == [(1, None), (2, 200)]
    assert "worker stopped" in delivery["attempts"][0]["error"]
    assert [r.headers["webhook-id"] for r in got] == [delivery["messageId"]] * 2  # receivers can deduplicate
    for request in got:
        assert Verifier(webhook["secret"]).verify(request.body, request.headers)["type"] == "webhook.test"
