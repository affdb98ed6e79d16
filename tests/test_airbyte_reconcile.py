"""`ingest airbyte reconcile [--repair]` against the fake Airbyte: missing copies and orphans, listed and fixed."""

import argparse
import asyncio
import uuid

import pytest

from ingest.cli import build_parser, cmd_airbyte_reconcile
from tests.conftest import headers_for
from tests.platform_helpers import airbyte_ui, row

FAKER = {"connectorType": "faker", "connectionConfig": {"count": 5}}


@pytest.fixture(scope="session")
def engine_name() -> str:
    return "airbyte"


async def reconcile(settings, tenant, capsys, *, repair: bool) -> tuple[int, str]:
    args = argparse.Namespace(repair=repair, tenant=[str(tenant)])
    # the command runs its own event loop, as from a shell
    code = await asyncio.to_thread(cmd_airbyte_reconcile, args, settings)
    return code, capsys.readouterr().out


async def test_reconcile_lists_and_repairs_drift(
    live_client, tenant, fake_airbyte, app_settings, database_url, capsys
):
    headers = headers_for(tenant)
    ids = {}
    for name in ("kept", "lost"):
        response = await live_client.post("/api/v1/sources", json={**FAKER, "name": name}, headers=headers)
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    connection = await live_client.post(
        "/api/v1/connections", json={"sourceId": ids["kept"], "name": "nightly"}, headers=headers
    )
    assert connection.status_code == 201, connection.text

    async def remote_of(table: str, object_id: str) -> str:
        return str(
            await row(
                database_url, f"SELECT external_id FROM {table} WHERE id = :id", id=uuid.UUID(object_id)
            )
        )

    code, out = await reconcile(app_settings, tenant, capsys, repair=False)
    assert (code, out.splitlines()[0].endswith("in sync")) == (0, True), out

    # drift, as made in Airbyte's UI or by a request that failed after its remote create
    async with airbyte_ui(app_settings) as ui:
        await ui.delete_source(str(tenant), await remote_of("sources", ids["lost"]))
        await ui.delete_connection(str(tenant), await remote_of("connections", connection.json()["id"]))
        from ingest.engines.registry import get_connector

        orphan = await ui.create_source(str(tenant), "made-by-hand", get_connector("faker"), {"count": 1})

    code, out = await reconcile(app_settings, tenant, capsys, repair=False)
    assert code == 1
    assert f"missing in Airbyte: source {ids['lost']} (lost)" in out
    assert f"missing in Airbyte: connection {connection.json()['id']} (nightly)" in out
    assert f"orphan in Airbyte: source {orphan}" in out
    assert f"source {ids['kept']}" not in out

    code, out = await reconcile(app_settings, tenant, capsys, repair=True)
    assert code == 0, out
    assert f"deleted orphan source {orphan}" in out
    live_sources = {s["sourceId"] for s in fake_airbyte.live("sources") if s["name"] != "made-by-hand"}
    assert {await remote_of("sources", ids["kept"]), await remote_of("sources", ids["lost"])} == live_sources
    assert orphan not in {s["sourceId"] for s in fake_airbyte.live("sources")}
    [remote_connection] = fake_airbyte.live("connections")
    assert remote_connection["connectionId"] == await remote_of("connections", connection.json()["id"])
    assert remote_connection["sourceId"] == await remote_of("sources", ids["kept"])

    code, out = await reconcile(app_settings, tenant, capsys, repair=False)
    assert (code, "in sync" in out) == (0, True), out


def test_reconcile_is_a_cli_command():
    args = build_parser().parse_args(["airbyte", "reconcile", "--repair", "--tenant", str(uuid.uuid4())])
    assert args.func is cmd_airbyte_reconcile and args.repair


def test_reconcile_needs_the_airbyte_engine(settings, capsys):
    assert cmd_airbyte_reconcile(argparse.Namespace(repair=False, tenant=None), settings) == 2
    assert "INGEST_ENGINE" in capsys.readouterr().err


async def test_reconcile_knows_a_paused_connection_is_inactive(
    live_client, tenant, fake_airbyte, app_settings, database_url, capsys
):
    headers = headers_for(tenant)
    source = await live_client.post("/api/v1/sources", json={**FAKER, "name": "s"}, headers=headers)
    connection = await live_client.post(
        "/api/v1/connections",
        json={"sourceId": source.json()["id"], "name": "paused", "syncSchedule": "0 * * * *"},
        headers=headers,
    )
    connection_id = connection.json()["id"]
    assert (
        await live_client.post(f"/api/v1/connections/{connection_id}/pause", headers=headers)
    ).status_code == 200
    remote_id = str(
        await row(
            database_url, "SELECT external_id FROM connections WHERE id = :id", id=uuid.UUID(connection_id)
        )
    )
    [remote] = fake_airbyte.live("connections")
    assert remote["status"] == "inactive"
    code, out = await reconcile(app_settings, tenant, capsys, repair=False)
    assert (code, "in sync" in out) == (0, True), out

    async with airbyte_ui(app_settings) as ui:  # someone re-enables it in Airbyte's UI
        await ui.set_connection_status(remote_id, active=True)
    code, out = await reconcile(app_settings, tenant, capsys, repair=False)
    assert code == 1
    assert f"connection {connection_id} (paused) is active, should be inactive (paused)" in out
    code, out = await reconcile(app_settings, tenant, capsys, repair=True)
    assert code == 0 and f"set connection {connection_id} inactive" in out, out
    assert fake_airbyte.live("connections")[0]["status"] == "inactive"

    async with airbyte_ui(app_settings) as ui:  # deleted in Airbyte: re-created inactive
        await ui.delete_connection(str(tenant), remote_id)
    code, out = await reconcile(app_settings, tenant, capsys, repair=True)
    assert code == 0, out
    [recreated] = fake_airbyte.live("connections")
    assert recreated["connectionId"] != remote_id and recreated["status"] == "inactive"
