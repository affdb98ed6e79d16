"""Tables API: the tenant's tables only, snapshot history with job ids, first rows."""

import uuid

from tests.conftest import READ, assert_error_body, headers_for
from tests.files.helpers import configure, start_import, uploaded, wait_for
from tests.formats.samples import write_sample


async def test_tables_are_the_tenants_own(live_client, tmp_path):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    ids = []
    for _ in range(2):  # two imports into one table: two snapshots, each with its import id
        file = await uploaded(live_client, headers, write_sample(tmp_path, "csv"))
        await configure(live_client, headers, file["id"], targetTableName="orders", targetSchema="sales")
        await start_import(live_client, headers, file["id"])
        assert (await wait_for(live_client, headers, file["id"]))["status"] == "COMPLETED"
        ids.append(file["id"])

    reader = headers_for(tenant, READ)
    tables = (await live_client.get("/api/v1/tables", headers=reader)).json()
    assert [(t["namespace"], t["name"], t["rowCount"]) for t in tables] == [("sales", "orders", 6)]
    detail = (await live_client.get("/api/v1/tables/sales/orders", headers=reader)).json()
    assert [s["importId"] for s in detail["snapshots"]] == ids
    assert [s["addedRecords"] for s in detail["snapshots"]] == [3, 3]
    assert detail["snapshots"][-1]["totalRecords"] == 6
    assert detail["rowCount"] == 6
    assert {c["name"]: c["type"] for c in detail["columns"]}["id"] == "long"
    rows = (
        await live_client.get("/api/v1/tables/sales/orders/rows", params={"limit": 4}, headers=reader)
    ).json()
    assert len(rows["rows"]) == 4
    assert rows["columns"] == ["id", "name", "amount", "active", "day", "ts"]
    assert rows["rows"][0] == {
        "id": 1,
        "name": "Alice",
        "amount": "150.50",  # a csv's decimals are exact: decimal(18,2), answered as text
        "active": True,
        "day": "2024-03-01",
        "ts": "2024-03-01T10:30:00",
    }
    for limit in (0, 1001):
        response = await live_client.get(
            "/api/v1/tables/sales/orders/rows", params={"limit": limit}, headers=reader
        )
        assert_error_body(response, 400, "limit")

    other = headers_for(uuid.uuid4())
    assert (await live_client.get("/api/v1/tables", headers=other)).json() == []
    for url in ("/api/v1/tables/sales/orders", "/api/v1/tables/sales/orders/rows"):
        assert_error_body(await live_client.get(url, headers=other), 404, "not found")
    assert_error_body(await live_client.get("/api/v1/tables/sales/missing", headers=headers), 404)
    assert_error_body(
        await live_client.get("/api/v1/tables/bad-name/orders", headers=headers),
        400,
        "path field 'namespace'",
    )


async def test_tables_need_a_token_and_a_tenant(client, tenant):
    assert_error_body(await client.get("/api/v1/tables"), 401)
    token_only = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await client.get("/api/v1/tables", headers=token_only), 400, "X-Tenant-Id")
    assert_error_body(await client.get("/api/v1/tables", headers=headers_for(tenant, "other:perm")), 403)
