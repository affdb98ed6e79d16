"""The fake keeps Airbyte's quirks, so the adapter tests mean something."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fake_airbyte import MASK, FakeAirbyte
from tests.fake_airbyte.catalog import FAKER_ID, POSTGRES_ID

PUBLIC = "/api/public/v1"


@pytest.fixture
async def http(fake_airbyte: FakeAirbyte) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_airbyte.url) as client:
        token = await client.post(
            f"{PUBLIC}/applications/token",
            json={"client_id": fake_airbyte.client_id, "client_secret": fake_airbyte.client_secret},
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


async def test_requires_a_valid_token(fake_airbyte: FakeAirbyte, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=fake_airbyte.url) as anonymous:
        assert (await anonymous.get(f"{PUBLIC}/workspaces")).status_code == 401
        bad = await anonymous.post(
            f"{PUBLIC}/applications/token", json={"client_id": "x", "client_secret": "y"}
        )
        assert bad.status_code == 400
    assert (await http.get(f"{PUBLIC}/workspaces")).status_code == 200
    fake_airbyte.expire_tokens()
    assert (await http.get(f"{PUBLIC}/workspaces")).status_code == 401


async def test_short_last_page_still_has_a_next_link(http: httpx.AsyncClient) -> None:
    for i in range(3):
        await http.post(f"{PUBLIC}/workspaces", json={"name": f"w{i}"})

    page = (await http.get(f"{PUBLIC}/workspaces", params={"limit": 2, "offset": 2})).json()
    empty = (await http.get(f"{PUBLIC}/workspaces", params={"limit": 2, "offset": 4})).json()

    assert len(page["data"]) == 1
    assert page["next"]  # quirk: non-empty on a short last page, pointing at an internal host
    assert "127.0.0.1" not in page["next"]
    assert empty == {"data": [], "next": "", "previous": empty["previous"]}


async def test_secrets_are_masked_and_cron_must_be_quartz(http: httpx.AsyncClient) -> None:
    workspace = (await http.post(f"{PUBLIC}/workspaces", json={"name": "w"})).json()["workspaceId"]
    config = {"host": "h", "port": 5432, "database": "d", "username": "u", "password": "s3cret"}
    source = (
        await http.post(
            f"{PUBLIC}/sources",
            json={
                "name": "pg",
                "workspaceId": workspace,
                "definitionId": POSTGRES_ID,
                "configuration": config,
            },
        )
    ).json()
    read = (await http.get(f"{PUBLIC}/sources/{source['sourceId']}")).json()
    assert read["configuration"]["password"] == MASK
    assert read["configuration"]["host"] == "h"

    faker = await http.post(
        f"{PUBLIC}/sources",
        json={
            "name": "f",
            "workspaceId": workspace,
            "definitionId": FAKER_ID,
            "configuration": {"count": 10},
        },
    )
    destination_id = (
        await http.post(
            f"{PUBLIC}/destinations",
            json={
                "name": "lake",
                "workspaceId": workspace,
                "configuration": {
                    "destinationType": "s3-data-lake",
                    "s3_bucket_name": "b",
                    "s3_bucket_region": "",
                    "warehouse_location": "s3://b/w",
                    "main_branch_name": "main",
                    "catalog_type": {"catalog_type": "REST", "server_uri": "http://c"},
                },
            },
        )
    ).json()["destinationId"]
    body = {"sourceId": faker.json()["sourceId"], "destinationId": destination_id}
    unix = await http.post(
        f"{PUBLIC}/connections",
        json={**body, "schedule": {"scheduleType": "cron", "cronExpression": "0 0 * * *"}},
    )
    quartz = await http.post(
        f"{PUBLIC}/connections",
        json={**body, "schedule": {"scheduleType": "cron", "cronExpression": "0 0 0 * * ?"}},
    )
    assert unix.status_code == 400
    assert quartz.json()["schedule"]["cronExpression"] == "0 0 0 * * ? UTC"

    connection_id = quartz.json()["connectionId"]
    first = await http.post(f"{PUBLIC}/jobs", json={"connectionId": connection_id, "jobType": "sync"})
    second = await http.post(f"{PUBLIC}/jobs", json={"connectionId": connection_id, "jobType": "sync"})
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["title"] == "try-again-later"
