"""PostgreSQL and MySQL sources on the embedded engine, end to end through the API, against the machine's real
servers (PostgreSQL 127.0.0.1:5432 trust auth, MariaDB 127.0.0.1:3306 root): a uniquely named database per
test session, dropped afterwards. Values are read back with pyiceberg and through the tables API.
"""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal

import psycopg
import pyarrow as pa
import pymysql
import pytest

from ingest.iceberg.warehouse import Warehouse
from tests.conftest import assert_error_body, headers_for
from tests.syncs.test_api import _remember_database, run_sync, trigger, wait_for  # noqa: F401

pytestmark = pytest.mark.engines("embedded")


@pytest.fixture
def warehouse(settings, database_url):
    return Warehouse.from_settings(settings, database_url)


PG = {"host": "127.0.0.1", "port": 5432, "username": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "username": "root", "password": ""}


def _pg_admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=dbname, autocommit=True)


PG_SCHEMA = """
CREATE TABLE orders (
    id bigint PRIMARY KEY, qty int NOT NULL, small smallint, amount numeric(12,2) NOT NULL,
    wide numeric(50,10), loose numeric, ordered_on date, at_time time, local_ts timestamp,
    updated_at timestamptz NOT NULL, paid boolean, note text, code varchar(8), ref uuid, meta jsonb,
    raw bytea, tags text[], counts int[], ratio double precision, span interval
);
INSERT INTO orders VALUES
 (1, 3, 1, 12345.67, 1234567890123456789012345678901234567890.0123456789, 1.5, '2024-01-02', '12:34:56.789',
  '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+02', true, 'first', 'A1',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}', '\\xdeadbeef', '{a,b}', '{1,2}', 0.25, '1 day 2 hours'),
 (2, 1, NULL, -0.01, NULL, NULL, NULL, NULL, NULL, '2024-01-03 00:00:00+00', NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL),
 (3, 2, 2, 99999999.99, NULL, NULL, '1999-12-31', '00:00:00', '1970-01-01 00:00:00', '2024-01-03 00:00:00+00',
  false, 'tie', 'C', NULL, 'null', '\\x', '{}', '{}', NULL, NULL);
CREATE TABLE empty_one (id int PRIMARY KEY, label text);
CREATE SCHEMA "Mixed";
CREATE TABLE "Mixed"."Order Items" ("ID" int PRIMARY KEY, "Item Name" text, "weird""col" int);
INSERT INTO "Mixed"."Order Items" VALUES (1, 'Widget', 7), (2, 'Gadget', NULL);
CREATE VIEW order_totals AS SELECT id, amount FROM orders;
CREATE SCHEMA locked;
CREATE TABLE locked.secret_stuff (id int);
CREATE VIEW slow AS
  SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 5000000) g, LATERAL (SELECT pg_sleep(0.00001)) s;
CREATE ROLE ingest_reader_{suffix} LOGIN;
GRANT USAGE ON SCHEMA public TO ingest_reader_{suffix};
GRANT SELECT ON orders TO ingest_reader_{suffix};
"""


@pytest.fixture(scope="module")
def pg_database():
    suffix = uuid.uuid4().hex[:10]
    name = f"ingest_test_{suffix}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with _pg_admin(name) as conn:
            conn.execute(PG_SCHEMA.replace("{suffix}", suffix))
        yield {**PG, "database": name, "schemas": ["public", "Mixed"], "_role": f"ingest_reader_{suffix}"}
    finally:
        with _pg_admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f"DROP ROLE IF EXISTS ingest_reader_{suffix}")


def plain(dtype: pa.DataType) -> pa.DataType:
    """pyiceberg reads strings, binaries and lists as their large Arrow variants: compare the logical type."""
    if pa.types.is_large_string(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype):
        return pa.binary()
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(plain(dtype.value_type))
    return dtype


def pg_config(db: dict, **extra) -> dict:
    return {k: v for k, v in {**db, **extra}.items() if not k.startswith("_")}


async def create_source(client, headers, connector: str, config: dict, status: int = 201) -> dict:
    body = {"name": f"db-{uuid.uuid4().hex[:6]}", "connectorType": connector, "connectionConfig": config}
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


async def test_source(client, headers, source_id: str) -> dict:
    response = await client.post(f"/api/v1/sources/{source_id}/test", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


test_source.__test__ = False  # a helper, not a test


async def connect(client, headers, source_id: str, **fields) -> dict:
    body = {"sourceId": source_id, "name": f"c-{uuid.uuid4().hex[:6]}", **fields}
    response = await client.post("/api/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# Run in a separate process: while ConnectorX waits on MySQL it holds the GIL, so nothing in this process
# (the event loop included) runs then. It waits until the sync's slow query runs, commits an INSERT, then
# says whether the query was still running after it ("during"), had ended ("after") or never showed ("never").
_INSERT_DURING = """
import json, sys, time
args = json.loads(sys.argv[1])
if args["kind"] == "mysql":
    import pymysql
    def connect(database=None):
        return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=database,
                               autocommit=True)
else:
    import psycopg
    def connect(database="postgres"):
        return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database, autocommit=True)
def running():
    with connect() as conn:
        cursor = conn.cursor()
        cursor.execute(args["probe"], args["probe_args"])
        return bool(cursor.fetchall())
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not running():
    time.sleep(0.05)
if not running():
    print("never")
    sys.exit()
with connect(args["database"]) as conn:
    conn.cursor().execute(args["insert"])
print("during" if running() else "after")
"""


def insert_during(kind: str, database: str, probe: str, probe_args: list, insert: str) -> subprocess.Popen:
    """Start the watcher (`_INSERT_DURING`) for a query `probe` finds; read its verdict from stdout."""
    args = {"kind": kind, "database": database, "probe": probe, "probe_args": probe_args, "insert": insert}
    return subprocess.Popen(
        [sys.executable, "-c", _INSERT_DURING, json.dumps(args)], stdout=subprocess.PIPE, text=True
    )


# -- PostgreSQL --------------------------------------------------------------------------------------------


async def test_postgres_create_with_the_contract_body_and_each_test_outcome(live_client, tenant, pg_database):
    headers = headers_for(tenant)
    contract = {
        "name": "production-postgres",
        "description": "Production PostgreSQL database for order data",
        "connectorType": "postgres",
        "connectionConfig": {
            "host": "orders-db.example.invalid",
            "port": 5432,
            "database": "orders",
            "username": "readonly_user",
            "password": "********",
            "ssl_mode": "require",
        },
    }
    created = await live_client.post("/api/v1/sources", json=contract, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "INACTIVE"
    source_id = created.json()["id"]
    got = (await live_client.get(f"/api/v1/sources/{source_id}", headers=headers)).json()
    assert got["connectionConfig"]["ssl_mode"] == {"mode": "require"}  # the string shorthand, normalised
    tested = await test_source(live_client, headers, source_id)
    assert tested["status"] == "ERROR"
    assert "Unknown host" in tested["statusMessage"], tested

    secret = "pw-" + uuid.uuid4().hex
    cases = [
        (pg_config(pg_database, password=secret), "ACTIVE", None),
        (pg_config(pg_database, username="nobody_here", password=secret), "ERROR", "Wrong credentials"),
        (pg_config(pg_database, port=1, password=secret), "ERROR", "Connection refused"),
        (pg_config(pg_database, database="no_such_db_x", password=secret), "ERROR", "does not exist"),
        (
            pg_config(pg_database, username=pg_database["_role"], schemas=["locked"], password=secret),
            "ERROR",
            "no privilege on schema(s): locked",
        ),
        (pg_config(pg_database, schemas=["nope"], password=secret), "ERROR", "not found"),
    ]
    for config, status, message in cases:
        source = await create_source(live_client, headers, "postgres", {**config, "ssl_mode": "disable"})
        result = await test_source(live_client, headers, source["id"])
        assert result["status"] == status, (config, result)
        if message:
            assert message in result["statusMessage"], result
            assert secret not in result["statusMessage"]
        assert source["connectionConfig"]["password"] == "********"


async def test_postgres_options_it_cannot_honour_are_400_naming_them(client, headers, pg_database):
    tunnel = pg_config(
        pg_database,
        tunnel_method={
            "tunnel_method": "SSH_KEY_AUTH",
            "tunnel_host": "bastion",
            "tunnel_port": 22,
            "tunnel_user": "u",
            "ssh_key": "k",
        },
    )
    error = assert_error_body(
        await client.post(
            "/api/v1/sources",
            json={"name": "t", "connectorType": "postgres", "connectionConfig": tunnel},
            headers=headers,
        ),
        400,
        "tunnel_method",
    )
    assert "airbyte" in error["message"].lower()
    cdc = pg_config(
        pg_database, replication_method={"method": "CDC", "replication_slot": "s", "publication": "p"}
    )
    assert_error_body(
        await client.post(
            "/api/v1/sources",
            json={"name": "c", "connectorType": "postgres", "connectionConfig": cdc},
            headers=headers,
        ),
        400,
        "replication_method cdc",
    )
    spec = (await client.get("/api/v1/sources/connector-types/postgres/spec", headers=headers)).json()
    properties = spec["connectionSpecification"]["properties"]
    assert properties["password"]["airbyte_secret"] is True
    assert {"host", "port", "database", "schemas", "username", "ssl_mode", "jdbc_url_params"} <= set(
        properties
    )
    assert "embedded" in spec["engines"]


async def test_postgres_discover_types_precision_keys(client, headers, pg_database):
    source = await create_source(client, headers, "postgres", pg_config(pg_database))
    response = await client.post(f"/api/v1/sources/{source['id']}/discover", headers=headers)
    assert response.status_code == 200, response.text
    streams = {s["name"]: s for s in response.json()["streams"]}
    assert set(streams) == {
        "public.orders",
        "public.empty_one",
        "public.order_totals",
        "public.slow",
        "Mixed.Order Items",
    }
    orders = streams["public.orders"]
    columns = {c["name"]: c for c in orders["columns"]}
    assert columns["id"]["type"] == "INTEGER" and columns["id"]["nullable"] is False
    assert columns["amount"] == {
        "name": "amount",
        "type": "DECIMAL",
        "nullable": False,
        "sampleValues": [],
        "precision": 12,
        "scale": 2,
        "dbType": "numeric(12,2)",
    }
    assert columns["wide"]["type"] == "STRING"  # numeric(50,10): wider than Iceberg's 38 digits
    assert columns["updated_at"]["type"] == "TIMESTAMP"
    assert columns["updated_at"]["dbType"] == "timestamp with time zone"
    assert columns["meta"]["type"] == "JSON"
    assert columns["span"]["type"] == "STRING"  # interval: not mapped, kept as PostgreSQL's text
    assert orders["primaryKey"] == [["id"]]
    assert set(orders["supportedSyncModes"]) == {"FULL_REFRESH", "INCREMENTAL"}
    assert {"id", "qty", "amount", "ordered_on", "local_ts", "updated_at"} <= set(orders["cursorCandidates"])
    assert "note" not in orders["cursorCandidates"]
    mixed = streams["Mixed.Order Items"]
    assert [c["name"] for c in mixed["columns"]] == ["ID", "Item Name", 'weird"col']
    assert mixed["primaryKey"] == [["ID"]]

    # a user sees only what it may SELECT
    reader = await create_source(
        client, headers, "postgres", pg_config(pg_database, username=pg_database["_role"], schemas=["public"])
    )
    visible = (await client.post(f"/api/v1/sources/{reader['id']}/discover", headers=headers)).json()
    assert [s["name"] for s in visible["streams"]] == ["public.orders"]


async def test_postgres_full_refresh_twice_exact_types(live_client, tenant, warehouse, pg_database):
    headers = headers_for(tenant)
    source = await create_source(live_client, headers, "postgres", pg_config(pg_database))
    streams = ["public.orders", "public.empty_one", "Mixed.Order Items", "public.order_totals"]
    connection = await connect(live_client, headers, source["id"], selectedStreams=streams)
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    assert first["recordsSynced"] == 3 + 0 + 2 + 3
    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED", second

    orders = warehouse.head(tenant, None, "public_orders")
    assert orders.num_rows == 3  # replaced, not appended
    schema = orders.schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("qty").type == pa.int32()
    assert schema.field("small").type == pa.int32()  # Iceberg's narrowest integer
    assert schema.field("amount").type == pa.decimal128(12, 2)
    assert plain(schema.field("wide").type) == pa.string()
    assert schema.field("ordered_on").type == pa.date32()
    assert schema.field("at_time").type == pa.time64("us")
    assert schema.field("local_ts").type == pa.timestamp("us")
    assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert plain(schema.field("raw").type) == pa.binary()
    assert plain(schema.field("tags").type) == pa.list_(pa.string())
    assert plain(schema.field("counts").type) == pa.list_(pa.int32())
    rows = {r["id"]: r for r in orders.to_pylist()}
    one = rows[1]
    assert one["amount"] == Decimal("12345.67")
    assert rows[2]["amount"] == Decimal("-0.01")
    assert rows[3]["amount"] == Decimal("99999999.99")
    assert one["wide"] == "1234567890123456789012345678901234567890.0123456789"
    assert one["loose"] == "1.5"
    assert one["ordered_on"] == date(2024, 1, 2)
    assert one["at_time"] == dtime(12, 34, 56, 789000)
    assert one["local_ts"] == datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert one["updated_at"] == datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)  # +02 -> UTC
    assert one["paid"] is True and rows[3]["paid"] is False
    assert one["ref"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert one["meta"] == '{"k": [1, 2]}'
    assert one["raw"] == b"\xde\xad\xbe\xef"
    assert one["tags"] == ["a", "b"] and one["counts"] == [1, 2]
    assert one["span"] == "1 day 02:00:00"
    assert rows[2]["small"] is None and rows[2]["note"] is None

    empty = warehouse.head(tenant, None, "public_empty_one")
    assert empty.num_rows == 0 and empty.schema.names == ["id", "label"]
    mixed = warehouse.head(tenant, None, "Mixed_Order_Items")
    assert sorted(mixed.to_pylist(), key=lambda r: r["ID"]) == [
        {"ID": 1, "Item Name": "Widget", 'weird"col': 7},
        {"ID": 2, "Item Name": "Gadget", 'weird"col': None},
    ]
    # the same values through the tables API
    api = await live_client.get("/api/v1/tables/default/public_orders/rows?limit=10", headers=headers)
    assert api.status_code == 200, api.text
    api_rows = {r["id"]: r for r in api.json()["rows"]}
    assert str(api_rows[1]["amount"]) == "12345.67"
    assert api_rows[1]["updated_at"].startswith("2024-01-02T01:04:05.123456")


async def test_postgres_incremental_upserts_new_and_changed_rows_keeping_ties(
    live_client, tenant, warehouse, pg_database
):
    headers = headers_for(tenant)
    name = f"inc_{uuid.uuid4().hex[:8]}"
    with _pg_admin(pg_database["database"]) as conn:
        conn.execute(
            f"CREATE TABLE {name} (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL);"
            f"INSERT INTO {name} VALUES (1, 'a', '2024-01-01Z'), (2, 'b', '2024-01-02Z'), (3, 'c', '2024-01-02Z')"
        )
    source = await create_source(live_client, headers, "postgres", pg_config(pg_database))
    stream = f"public.{name}"
    bad = await live_client.post(
        "/api/v1/connections",
        json={"sourceId": source["id"], "name": "x", "selectedStreams": [stream], "syncMode": "INCREMENTAL"},
        headers=headers,
    )
    assert_error_body(bad, 400, stream.lower())
    connection = await connect(
        live_client,
        headers,
        source["id"],
        streams=[
            {"name": stream, "syncMode": "INCREMENTAL", "cursorField": "updated_at", "primaryKey": ["id"]}
        ],
    )
    assert connection["streams"][0]["cursorField"] == "updated_at"
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    assert first["recordsSynced"] == 3
    with _pg_admin(pg_database["database"]) as conn:
        conn.execute(
            f"INSERT INTO {name} VALUES (4, 'd', '2024-01-02Z'), (5, 'e', '2024-01-05Z');"  # 4 ties the saved cursor
            f"UPDATE {name} SET v = 'A', updated_at = '2024-01-04Z' WHERE id = 1"
        )
    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED", second
    # rows at or past the saved cursor (2024-01-02): 2, 3 again (ties), 4 (tie, new), 5 (new), 1 (changed)
    assert second["recordsSynced"] == 5
    table = table_name = f"public_{name}"
    rows = sorted(warehouse.head(tenant, None, table).to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["v"]) for r in rows] == [(1, "A"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    third = await run_sync(live_client, headers, connection["id"])
    assert third["status"] == "SUCCEEDED"
    assert third["recordsSynced"] == 1  # only the row at the saved cursor value (2024-01-05)
    assert warehouse.head(tenant, None, table_name).num_rows == 5


async def test_postgres_cancel_stops_the_query_on_the_server(live_client, tenant, warehouse, pg_database):
    headers = headers_for(tenant)
    source = await create_source(live_client, headers, "postgres", pg_config(pg_database))
    connection = await connect(live_client, headers, source["id"], selectedStreams=["public.slow"])
    sync = await trigger(live_client, headers, connection["id"])

    def running() -> list:
        with _pg_admin() as admin:
            return admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s",
                [pg_database["database"], "%slow%"],
            ).fetchall()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not running():
        await asyncio.sleep(0.2)
    assert running(), "the read never started"
    response = await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers)
    assert response.status_code == 204
    ended = await wait_for(live_client, headers, sync["id"], timeout=60)
    assert ended["status"] == "CANCELLED", ended
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running():
        await asyncio.sleep(0.2)
    assert running() == []  # no query left running on the server
    assert not warehouse.table_exists(tenant, None, "public_slow")


async def assert_one_snapshot(
    live_client, headers, connection_id, watcher, warehouse, tenant, schema, slow, other
):
    """Sync; the watcher's insert into `other` happened while `slow` was read, and did not land."""
    sync = await trigger(live_client, headers, connection_id)
    ended = await wait_for(live_client, headers, sync["id"], timeout=60)
    assert ended["status"] == "SUCCEEDED", ended
    verdict = watcher.communicate(timeout=90)[0].strip()
    assert verdict == "during", f"the insert was not made while the slow view was read: {verdict}"
    assert warehouse.head(tenant, None, f"{schema}_{slow}").num_rows == 6
    assert warehouse.head(tenant, None, f"{schema}_{other}").to_pylist() == [{"id": 1, "v": "before"}]


async def test_postgres_full_refresh_reads_every_table_in_one_snapshot(
    live_client, tenant, warehouse, pg_database
):
    # the first stream is a slow view; a row committed into the second table while the view is being read
    # must not land: per-table reads (each its own snapshot) would see it
    headers = headers_for(tenant)
    suffix = uuid.uuid4().hex[:6]
    slow, other = f"snap_{suffix}_a_slow", f"snap_{suffix}_b"
    with _pg_admin(pg_database["database"]) as conn:
        conn.execute(
            f"CREATE TABLE {other} (id int PRIMARY KEY, v text); INSERT INTO {other} VALUES (1, 'before');"
            f"CREATE FUNCTION {slow}_id(int) RETURNS int LANGUAGE sql VOLATILE AS "
            "$$ SELECT pg_sleep(0.5); SELECT $1 $$;"
            f"CREATE VIEW {slow} AS SELECT {slow}_id(g) AS id FROM generate_series(1, 6) g"
        )
    source = await create_source(live_client, headers, "postgres", pg_config(pg_database))
    connection = await connect(
        live_client, headers, source["id"], selectedStreams=[f"public.{slow}", f"public.{other}"]
    )
    watcher = insert_during(
        "postgres",
        pg_database["database"],
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' AND query LIKE %s"
        " AND wait_event = 'PgSleep'",
        [pg_database["database"], f"%{slow}%"],
        f"INSERT INTO {other} VALUES (2, 'after')",
    )
    await assert_one_snapshot(
        live_client, headers, connection["id"], watcher, warehouse, tenant, "public", slow, other
    )


async def test_postgres_other_tenant_gets_404(client, headers, pg_database):
    source = await create_source(client, headers, "postgres", pg_config(pg_database))
    other = headers_for(uuid.uuid4())
    for method, path in [
        ("GET", f"/api/v1/sources/{source['id']}"),
        ("POST", f"/api/v1/sources/{source['id']}/test"),
        ("POST", f"/api/v1/sources/{source['id']}/discover"),
    ]:
        assert_error_body(await client.request(method, path, headers=other), 404)
    response = await client.post(
        "/api/v1/connections", json={"sourceId": source["id"], "name": "x"}, headers=other
    )
    assert_error_body(response, 404)


# -- MySQL (MariaDB) -------------------------------------------------------------------------------------


MY_SCHEMA = [
    """CREATE TABLE orders (
        id bigint PRIMARY KEY, qty int NOT NULL, tiny tinyint, big_u bigint unsigned,
        amount decimal(12,2) NOT NULL, wide decimal(60,10), ratio double, ordered_on date,
        local_ts datetime(6), updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
        note text, code varchar(8), raw varbinary(8), meta json, kind enum('a','b'), dur time, place point
    )""",
    """INSERT INTO orders VALUES
      (1, 3, -1, 18446744073709551615, 12345.67, 123456789012345678901234567890123456789012345678.0123456789,
       0.25, '2024-01-02', '2024-01-02 03:04:05.123456', '2024-01-02 01:04:05.123456', 'first', 'A1',
       x'deadbeef', '{"k": 1}', 'b', '838:59:59', POINT(1.5, -2)),
      (2, 1, NULL, NULL, -0.01, NULL, NULL, NULL, NULL, '2024-01-03 00:00:00', NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    "CREATE TABLE empty_one (id int PRIMARY KEY, label text)",
    "CREATE TABLE `Mixed Case` (`ID` int PRIMARY KEY, `Item Name` text)",
    "INSERT INTO `Mixed Case` VALUES (1, 'Widget')",
    "CREATE TABLE inc (id int PRIMARY KEY, v text, updated_at datetime NOT NULL)",
    "INSERT INTO inc VALUES (1, 'a', '2024-01-01'), (2, 'b', '2024-01-02'), (3, 'c', '2024-01-02')",
    "CREATE VIEW slow AS SELECT seq AS id, REPEAT('x', 200) AS pad FROM seq_1_to_5000000 WHERE SLEEP(0.00001) = 0",
]


@pytest.fixture(scope="module")
def my_database():
    name = f"ingest_test_{uuid.uuid4().hex[:10]}"
    user = f"ingest_u_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute(f"CREATE DATABASE `{name}`")
        cursor.execute(f"USE `{name}`")
        for statement in MY_SCHEMA:
            cursor.execute(statement)
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-password'")
        cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'right-password'")
    try:
        yield {**MY, "database": name, "_user": user}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
        admin.close()


def my_exec(db: dict, statement: str) -> None:
    with (
        pymysql.connect(
            host="127.0.0.1", port=3306, user="root", password="", database=db["database"], autocommit=True
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SET time_zone = '+00:00'")
        cursor.execute(statement)


async def test_mysql_create_test_and_discover(client, headers, my_database):
    config = pg_config(my_database)
    source = await create_source(client, headers, "mysql", {**config, "ssl_mode": "preferred"})
    assert (await test_source(client, headers, source["id"]))["status"] == "ACTIVE"
    cases = [
        ({**config, "username": my_database["_user"], "password": "wrong-pw-123"}, "Wrong credentials"),
        ({**config, "port": 1}, "Connection refused"),
        ({**config, "database": "no_such_db_x"}, "does not exist"),
        ({**config, "host": "no-such-host.invalid"}, "Unknown host"),
        ({**config, "username": my_database["_user"], "password": "right-password"}, "no privilege"),
    ]
    for bad, message in cases:
        created = await create_source(client, headers, "mysql", bad)
        result = await test_source(client, headers, created["id"])
        assert result["status"] == "ERROR" and message in result["statusMessage"], (bad, result)
        assert "wrong-pw-123" not in result["statusMessage"]
    assert_error_body(
        await client.post(
            "/api/v1/sources",
            json={
                "name": "cdc",
                "connectorType": "mysql",
                "connectionConfig": {**config, "replication_method": {"method": "CDC"}},
            },
            headers=headers,
        ),
        400,
        "replication_method cdc",
    )

    discovered = (await client.post(f"/api/v1/sources/{source['id']}/discover", headers=headers)).json()
    streams = {s["name"]: s for s in discovered["streams"]}
    db = my_database["database"]
    assert set(streams) == {f"{db}.orders", f"{db}.empty_one", f"{db}.Mixed Case", f"{db}.inc", f"{db}.slow"}
    columns = {c["name"]: c for c in streams[f"{db}.orders"]["columns"]}
    assert (columns["amount"]["type"], columns["amount"]["precision"], columns["amount"]["scale"]) == (
        "DECIMAL",
        12,
        2,
    )
    assert (columns["big_u"]["precision"], columns["big_u"]["scale"]) == (20, 0)
    assert columns["wide"]["type"] == "STRING"
    assert streams[f"{db}.orders"]["primaryKey"] == [["id"]]
    assert "updated_at" in streams[f"{db}.orders"]["cursorCandidates"]


async def test_mysql_full_refresh_twice_and_incremental(live_client, tenant, warehouse, my_database):
    headers = headers_for(tenant)
    db = my_database["database"]
    source = await create_source(live_client, headers, "mysql", pg_config(my_database))
    connection = await connect(
        live_client,
        headers,
        source["id"],
        selectedStreams=[f"{db}.orders", f"{db}.empty_one", f"{db}.Mixed Case"],
    )
    for _ in range(2):
        result = await run_sync(live_client, headers, connection["id"])
        assert result["status"] == "SUCCEEDED", result
    table = f"{db}_orders"
    orders = warehouse.head(tenant, None, table)
    assert orders.num_rows == 2
    assert orders.schema.field("amount").type == pa.decimal128(12, 2)
    assert orders.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert orders.schema.field("local_ts").type == pa.timestamp("us")
    rows = {r["id"]: r for r in orders.to_pylist()}
    assert rows[1]["amount"] == Decimal("12345.67") and rows[2]["amount"] == Decimal("-0.01")
    assert rows[1]["big_u"] == Decimal("18446744073709551615")
    assert rows[1]["wide"] == "123456789012345678901234567890123456789012345678.0123456789"
    assert rows[1]["updated_at"] == datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)
    assert rows[1]["local_ts"] == datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert rows[1]["raw"] == b"\xde\xad\xbe\xef"
    assert rows[1]["dur"] == "838:59:59"
    assert rows[1]["place"] == "POINT(1.5 -2)" and rows[2]["place"] is None  # spatial types as WKT
    assert warehouse.head(tenant, None, f"{db}_empty_one").num_rows == 0
    assert warehouse.head(tenant, None, f"{db}_Mixed_Case").to_pylist() == [{"ID": 1, "Item Name": "Widget"}]

    incremental = await connect(
        live_client,
        headers,
        source["id"],
        namespace="inc",
        streams=[
            {
                "name": f"{db}.inc",
                "syncMode": "INCREMENTAL",
                "cursorField": "updated_at",
                "primaryKey": ["id"],
            }
        ],
    )
    first = await run_sync(live_client, headers, incremental["id"])
    assert first["status"] == "SUCCEEDED" and first["recordsSynced"] == 3, first
    my_exec(my_database, "INSERT INTO inc VALUES (4, 'd', '2024-01-02'), (5, 'e', '2024-01-05')")
    my_exec(my_database, "UPDATE inc SET v = 'A', updated_at = '2024-01-04' WHERE id = 1")
    second = await run_sync(live_client, headers, incremental["id"])
    assert second["status"] == "SUCCEEDED" and second["recordsSynced"] == 5, second
    rows = sorted(warehouse.head(tenant, "inc", f"{db}_inc").to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["v"]) for r in rows] == [(1, "A"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]


async def test_mysql_full_refresh_reads_every_table_in_one_snapshot(
    live_client, tenant, warehouse, my_database
):
    # the first stream is a slow view; a row committed into the second table while the view is being read
    # must not land: per-table statements (each its own consistent read) would see it
    headers = headers_for(tenant)
    db = my_database["database"]
    suffix = uuid.uuid4().hex[:6]
    base, slow, other = f"snap_{suffix}_a", f"snap_{suffix}_a_slow", f"snap_{suffix}_b"
    # InnoDB opens the statement's read view at its first InnoDB read: the slow view reads an InnoDB table
    my_exec(my_database, f"CREATE TABLE {base} (id int PRIMARY KEY) ENGINE=InnoDB")
    my_exec(my_database, f"INSERT INTO {base} SELECT seq FROM seq_1_to_6")
    my_exec(my_database, f"CREATE VIEW {slow} AS SELECT id, SLEEP(0.5) AS s FROM {base}")
    my_exec(my_database, f"CREATE TABLE {other} (id int PRIMARY KEY, v text) ENGINE=InnoDB")
    my_exec(my_database, f"INSERT INTO {other} VALUES (1, 'before')")
    source = await create_source(live_client, headers, "mysql", pg_config(my_database))
    connection = await connect(
        live_client, headers, source["id"], selectedStreams=[f"{db}.{slow}", f"{db}.{other}"]
    )
    watcher = insert_during(
        "mysql",
        db,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND STATE = 'User sleep'",
        [f"%`{db}`.`{slow}`%"],
        f"INSERT INTO {other} VALUES (2, 'after')",
    )
    await assert_one_snapshot(
        live_client, headers, connection["id"], watcher, warehouse, tenant, db, slow, other
    )


@pytest.mark.parametrize("max_columns", [None, 5])
async def test_mysql_incremental_streams_read_in_one_union_or_in_groups(
    live_client, tenant, warehouse, my_database, monkeypatch, max_columns
):
    # several INCREMENTAL tables (each its own saved cursor) and a FULL_REFRESH one in one statement; with a
    # 5-column bound the first table is read alone and the other two share a statement (tag + 4 columns)
    from ingest.engines.embedded.databases import mysql

    if max_columns is not None:
        monkeypatch.setattr(mysql, "MAX_UNION_COLUMNS", max_columns)
    headers = headers_for(tenant)
    db = my_database["database"]
    suffix = uuid.uuid4().hex[:6]
    first, second = f"u_{suffix}_a", f"u_{suffix}_b"
    my_exec(my_database, f"CREATE TABLE {first} (id int PRIMARY KEY, v text, updated_at datetime NOT NULL)")
    my_exec(my_database, f"INSERT INTO {first} VALUES (1, 'a', '2024-01-01'), (2, 'b', '2024-01-02')")
    my_exec(
        my_database,
        f"CREATE TABLE {second} (id int unsigned PRIMARY KEY, n decimal(10,2), seq bigint NOT NULL)",
    )
    my_exec(my_database, f"INSERT INTO {second} VALUES (4294967295, 1.25, 10), (7, NULL, 20)")
    source = await create_source(live_client, headers, "mysql", pg_config(my_database))
    streams = [
        {
            "name": f"{db}.{first}",
            "syncMode": "INCREMENTAL",
            "cursorField": "updated_at",
            "primaryKey": ["id"],
        },
        {"name": f"{db}.{second}", "syncMode": "INCREMENTAL", "cursorField": "seq", "primaryKey": ["id"]},
        {"name": f"{db}.Mixed Case", "syncMode": "FULL_REFRESH"},
    ]
    connection = await connect(live_client, headers, source["id"], namespace=f"u{suffix}", streams=streams)
    one = await run_sync(live_client, headers, connection["id"])
    assert one["status"] == "SUCCEEDED" and one["recordsSynced"] == 2 + 2 + 1, one
    my_exec(my_database, f"INSERT INTO {first} VALUES (3, 'c', '2024-01-03')")
    my_exec(my_database, f"UPDATE {second} SET n = 2.50, seq = 30 WHERE id = 7")
    two = await run_sync(live_client, headers, connection["id"])
    # each table from its own saved cursor: first >= 2024-01-02 (2, 3), second >= 20 (7); Mixed Case again
    assert two["status"] == "SUCCEEDED" and two["recordsSynced"] == 2 + 1 + 1, two
    rows = sorted(warehouse.head(tenant, f"u{suffix}", f"{db}_{first}").to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["v"]) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]
    table = warehouse.head(tenant, f"u{suffix}", f"{db}_{second}")
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("n").type == pa.decimal128(10, 2)
    assert sorted((r["id"], r["n"], r["seq"]) for r in table.to_pylist()) == [
        (7, Decimal("2.50"), 30),
        (4294967295, Decimal("1.25"), 10),
    ]
    mixed = warehouse.head(tenant, f"u{suffix}", f"{db}_Mixed_Case")
    assert mixed.to_pylist() == [{"ID": 1, "Item Name": "Widget"}]


async def test_mysql_cancel_kills_the_query_on_the_server(live_client, tenant, warehouse, my_database):
    headers = headers_for(tenant)
    db = my_database["database"]
    source = await create_source(live_client, headers, "mysql", pg_config(my_database))
    connection = await connect(live_client, headers, source["id"], selectedStreams=[f"{db}.slow"])
    sync = await trigger(live_client, headers, connection["id"])

    def running() -> list:
        with (
            pymysql.connect(host="127.0.0.1", port=3306, user="root", password="") as conn,
            conn.cursor() as cur,
        ):
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                [f"%`{db}`.`slow`%"],
            )
            return list(cur.fetchall())

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not running():
        await asyncio.sleep(0.2)
    assert running(), "the read never started"
    response = await live_client.post(f"/api/v1/syncs/{sync['id']}/cancel", headers=headers)
    assert response.status_code == 204
    ended = await wait_for(live_client, headers, sync["id"], timeout=60)
    assert ended["status"] == "CANCELLED", ended
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and running():
        await asyncio.sleep(0.2)
    assert running() == []  # KILL QUERY ended it on the server
    assert not warehouse.table_exists(tenant, None, f"{db}_slow")
