"""Partitioned tables: a file import and a sync create them with a spec, write files per partition, and a
filtered pyiceberg scan (another reader than the service's) prunes the files of other partitions."""

import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from pyiceberg.expressions import EqualTo

from tests.conftest import READ, assert_error_body, headers_for
from tests.files.helpers import start_import, uploaded, wait_for
from tests.syncs.test_api import run_sync, setup_connection


def write_csv(path: Path, start: int, rows: int) -> Path:
    lines = ["id,day,region,amount"]
    for i in range(start, start + rows):
        lines.append(
            f"{i},{date(2026, 1, 1) + timedelta(days=i % 4)},{'eu' if (i // 4) % 2 else 'us'},{i}.25"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def partitions_of(table) -> list[str]:
    return [repr(task.file.partition) for task in table.scan().plan_files()]


async def test_partitioned_import_then_evolve(live_client, tmp_path, warehouse):
    tenant = uuid.uuid4()
    headers, reader = headers_for(tenant), headers_for(tenant, READ)
    spec = [{"column": "day", "transform": "day"}, {"column": "region", "transform": "identity"}]
    file = await uploaded(live_client, headers, write_csv(tmp_path / "a.csv", 0, 40))
    url = f"/api/v1/files/{file['id']}/schema"
    for bad, text in (
        ([{"column": "day", "transform": "week"}], "transform"),
        ([{"column": "nope", "transform": "identity"}], "not a column"),
        ([{"column": "region", "transform": "day"}], "does not apply"),
        ([{"column": "id", "transform": "bucket[0]"}], "transform"),
    ):
        body = {"targetTableName": "sales", "targetSchema": "part", "partitionSpec": bad}
        assert_error_body(await live_client.put(url, json=body, headers=headers), 400, text)
    body = {"targetTableName": "sales", "targetSchema": "part", "partitionSpec": spec}
    configured = await live_client.put(url, json=body, headers=headers)
    assert configured.status_code == 200, configured.text
    assert configured.json()["partitionSpec"] == spec
    await start_import(live_client, headers, file["id"])
    assert (await wait_for(live_client, headers, file["id"]))["status"] == "COMPLETED"

    table = warehouse.catalog.load_table(warehouse.ref(tenant, "part", "sales").identifier)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [
        ("day_day", "day"),
        ("region", "identity"),
    ]
    assert len(table.snapshots()) == 1  # one commit
    layout = Counter(partitions_of(table))
    assert len(layout) == 8 and set(layout.values()) == {1}  # 4 days x 2 regions, one file each
    detail = (await live_client.get("/api/v1/tables/part/sales", headers=reader)).json()
    assert detail["partitionSpec"] == spec

    # another reader: pyiceberg's own scan with a filter on a partition column plans only those files
    scan = table.scan(row_filter=EqualTo("region", "eu"))
    assert len(list(scan.plan_files())) == 4 < len(layout)
    eu = pl.from_arrow(scan.to_arrow())
    assert eu.height == 20 and set(eu["region"]) == {"eu"}
    assert sorted(eu["id"].to_list()) == [i for i in range(40) if (i // 4) % 2]

    # a second import with another spec: 409 naming the table's spec, unless it asks to evolve
    second = await uploaded(live_client, headers, write_csv(tmp_path / "b.csv", 100, 8))
    url = f"/api/v1/files/{second['id']}/schema"
    other = [{"column": "id", "transform": "bucket[2]"}]
    body = {"targetTableName": "sales", "targetSchema": "part", "partitionSpec": other}
    assert_error_body(
        await live_client.put(url, json=body, headers=headers), 409, "day(day), identity(region)"
    )
    evolved = await live_client.put(url, json={**body, "evolvePartitionSpec": True}, headers=headers)
    assert evolved.status_code == 200, evolved.text
    await start_import(live_client, headers, second["id"])
    assert (await wait_for(live_client, headers, second["id"]))["status"] == "COMPLETED"
    table = table.refresh()
    assert [str(f.transform) for f in table.spec().fields] == ["bucket[2]"]
    detail = (await live_client.get("/api/v1/tables/part/sales", headers=reader)).json()
    assert detail["partitionSpec"] == other and detail["rowCount"] == 48
    new_files = [t.file for t in table.scan().plan_files() if t.file.spec_id == table.spec().spec_id]
    assert 1 <= len(new_files) <= 2 and sum(f.record_count for f in new_files) == 8
    assert pl.from_arrow(table.scan().to_arrow()).height == 48


async def test_partitioned_sync(live_client, tenant, warehouse):
    headers = headers_for(tenant)
    bad = await live_client.post(
        "/api/v1/connections",
        json={
            "sourceId": (await setup_connection(live_client, headers, count=5))["sourceId"],
            "name": f"bad-{uuid.uuid4().hex[:6]}",
            "partitionSpecs": {"nope": [{"column": "id", "transform": "identity"}]},
        },
        headers=headers,
    )
    assert_error_body(bad, 400, "not a selected stream")
    spec = [{"column": "gender", "transform": "identity"}]
    connection = await setup_connection(
        live_client, headers, count=40, selectedStreams=["users"], partitionSpecs={"users": spec}
    )
    assert connection["partitionSpecs"] == {"users": spec}
    sync = await run_sync(live_client, headers, connection["id"])
    assert sync["status"] == "SUCCEEDED", sync
    table = warehouse.catalog.load_table(warehouse.ref(tenant, None, "users").identifier)
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("gender", "identity")]
    users = pl.from_arrow(table.scan().to_arrow())
    assert users.height == 40
    layout = Counter(partitions_of(table))
    assert len(layout) == users["gender"].n_unique() and set(layout.values()) == {1}
    one = users["gender"][0]
    pruned = table.scan(row_filter=EqualTo("gender", one))
    assert len(list(pruned.plan_files())) == 1
    assert pl.from_arrow(pruned.to_arrow()).height == users.filter(pl.col("gender") == one).height
