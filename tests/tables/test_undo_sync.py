"""Undo of incremental syncs (real airbyte-source-faker): the data and the connector state go back together."""

import uuid

import polars as pl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ingest.db.session import sqlalchemy_url
from tests.conftest import READ, assert_error_body, headers_for
from tests.syncs.test_api import faker, run_sync, setup_connection


async def connection_state(database_url: str, connection_id: str) -> object:
    engine = create_async_engine(sqlalchemy_url(database_url))
    async with engine.connect() as conn:
        state = (
            await conn.execute(
                text("SELECT state FROM connections WHERE id = :id"), {"id": uuid.UUID(connection_id)}
            )
        ).scalar_one()
    await engine.dispose()
    return state


def users_at(warehouse, tenant, snapshot_id: int | None = None) -> list[tuple]:
    table = warehouse.catalog.load_table(warehouse.ref(tenant, None, "users").identifier)
    arrow = table.scan(snapshot_id=snapshot_id).to_arrow() if snapshot_id else table.scan().to_arrow()
    frame = pl.from_arrow(arrow)
    return sorted(frame.select("id", "name", "updated_at").rows()) if frame.height else []


async def test_undo_syncs_rewinds_data_and_state(live_client, tenant, warehouse, database_url):
    headers = headers_for(tenant)
    connection = await setup_connection(
        live_client, headers, count=20, syncMode="INCREMENTAL", selectedStreams=["users"]
    )
    cid, source_id = connection["id"], connection["sourceId"]
    first = await run_sync(live_client, headers, cid)
    assert first["status"] == "SUCCEEDED", first
    state_after_first = await connection_state(database_url, cid)
    assert state_after_first
    table = warehouse.catalog.load_table(warehouse.ref(tenant, None, "users").identifier)
    first_snapshot = table.current_snapshot().snapshot_id

    # the source grows and re-sends everything: the second sync upserts 35 users
    grown = await live_client.put(
        f"/api/v1/sources/{source_id}",
        json={"connectionConfig": faker(35, always_updated=True)},
        headers=headers,
    )
    assert grown.status_code == 200, grown.text
    second = await run_sync(live_client, headers, cid)
    assert second["status"] == "SUCCEEDED", second
    assert len(users_at(warehouse, tenant)) == 35
    assert await connection_state(database_url, cid) != state_after_first

    # from now on faker sends nothing to a connection that has state (only a state-less read gets rows)
    quiet = await live_client.put(
        f"/api/v1/sources/{source_id}", json={"connectionConfig": faker(35)}, headers=headers
    )
    assert quiet.status_code == 200, quiet.text

    # undo the second sync: the users are the first sync's again, and so is the connector state
    undo = await live_client.post(
        "/api/v1/tables/default/users/rollback", json={"toBeforeSync": second["id"]}, headers=headers
    )
    assert undo.status_code == 200, undo.text
    assert undo.json()["connectionStatesRewound"] == [cid]
    assert [u["syncId"] for u in undo.json()["undone"]] == [second["id"]]
    assert users_at(warehouse, tenant) == users_at(warehouse, tenant, first_snapshot)
    assert len(users_at(warehouse, tenant)) == 20
    assert await connection_state(database_url, cid) == state_after_first
    reader = headers_for(tenant, READ)
    assert (await live_client.get(f"/api/v1/syncs/{second['id']}", headers=reader)).json()["rolledBackAt"]
    assert (await live_client.get(f"/api/v1/syncs/{first['id']}", headers=reader)).json()[
        "rolledBackAt"
    ] is None

    # undoing the first sync too empties the table and drops the stream's state: the next incremental
    # sync reads everything again (with the state left as it was, faker would send nothing)
    assert_error_body(
        await live_client.post(
            "/api/v1/tables/default/users/rollback", json={"toBeforeSync": second["id"]}, headers=headers
        ),
        409,
        "already undone",
    )
    emptied = await live_client.post(
        "/api/v1/tables/default/users/rollback", json={"toBeforeSync": first["id"]}, headers=headers
    )
    assert emptied.status_code == 200, emptied.text
    assert emptied.json()["rowCount"] == 0 and emptied.json()["currentSnapshotId"] is None
    assert users_at(warehouse, tenant) == []
    assert not await connection_state(database_url, cid)
    fourth = await run_sync(live_client, headers, cid)
    assert fourth["status"] == "SUCCEEDED", fourth
    assert fourth["recordsSynced"] == 35  # the undone rows are read again, not skipped by a stale cursor
    users = users_at(warehouse, tenant)
    assert len(users) == 35 and len({u[0] for u in users}) == 35
