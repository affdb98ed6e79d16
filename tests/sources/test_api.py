"""Sources API on both engines: embedded (real airbyte-source-faker/-file processes) and airbyte (the fake).

Engine-specific expectations are explicit: `engine_name` picks the variant, `@pytest.mark.engines` narrows.
"""

import logging
import uuid

import pytest
from sqlalchemy import text

from tests.conftest import READ, assert_error_body, headers_for

SECRET = "Sup3r-Secret-Value-4242"
FAKER = {"name": "sample", "connectorType": "faker", "connectionConfig": {"count": 50, "seed": 7}}


def file_source(name: str = "files", url: str = "s3://demo-bucket/orders.csv", secret: str = SECRET) -> dict:
    return {
        "name": name,
        "description": "orders export",
        "connectorType": "file",
        "connectionConfig": {
            "dataset_name": "orders",
            "format": "csv",
            "url": url,
            "provider": {
                "storage": "S3",
                "aws_access_key_id": "AKIAEXAMPLE",
                "aws_secret_access_key": secret,
            },
        },
    }


async def create(client, headers, body) -> dict:
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_connector_types_list_what_the_engine_runs(client, tenant, engine_name):
    token_only = {"Authorization": headers_for(tenant, READ)["Authorization"]}  # no X-Tenant-Id needed
    response = await client.get("/api/v1/sources/connector-types", headers=token_only)
    assert response.status_code == 200
    types = response.json()
    assert {"faker", "file", "s3", "github", "stripe", "salesforce", "zendesk"} <= set(types)
    if engine_name == "embedded":
        assert "mssql" not in types  # a Java connector: Airbyte engine only
        assert {"postgres", "mysql"} <= set(types)  # read natively (engines/embedded/databases)
    else:
        assert {"postgres", "mysql", "mssql"} <= set(types)
    assert_error_body(await client.get("/api/v1/sources/connector-types"), 401)


async def test_connector_spec_is_the_connectors_own(client, tenant):
    token_only = {"Authorization": headers_for(tenant, READ)["Authorization"]}
    body = (await client.get("/api/v1/sources/connector-types/faker/spec", headers=token_only)).json()
    assert body["connectorType"] == "faker"
    assert "count" in body["connectionSpecification"]["properties"]


async def test_faker_create_test_discover(client, headers):
    created = await create(client, headers, {**FAKER, "description": "fake shop"})
    assert created["status"] == "INACTIVE"
    assert created["lastTestedAt"] is None
    assert created["connectorType"] == "faker"
    assert created["description"] == "fake shop"
    assert created["connectionConfig"] == {"count": 50, "seed": 7}
    uuid.UUID(created["id"])

    tested = await client.post(f"/api/v1/sources/{created['id']}/test", headers=headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "ACTIVE"
    assert tested.json()["lastTestedAt"] is not None

    discovered = await client.post(f"/api/v1/sources/{created['id']}/discover", headers=headers)
    assert discovered.status_code == 200, discovered.text
    streams = {s["name"]: s for s in discovered.json()["streams"]}
    assert set(streams) == {"users", "products", "purchases"}
    users = {c["name"]: c for c in streams["users"]["columns"]}
    assert users["id"]["type"] == "INTEGER"
    assert users["email"]["type"] == "STRING"
    assert users["created_at"]["type"] == "TIMESTAMP"
    assert all(set(c) == {"name", "type", "nullable", "sampleValues"} for c in users.values())
    assert set(streams["purchases"]["supportedSyncModes"]) >= {"FULL_REFRESH", "INCREMENTAL"}
    products = {c["name"]: c["type"] for c in streams["products"]["columns"]}
    assert products["price"] == "DECIMAL"

    listed = (await client.get("/api/v1/sources", headers=headers)).json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert listed[0]["status"] == "ACTIVE"
    assert "connectionConfig" not in listed[0]


async def test_failing_check_sets_error_with_message(client, headers, engine_name):
    # embedded: nothing listens on port 9; the fake Airbyte fails checks of urls starting `unreachable`
    url = "https://127.0.0.1:9/orders.csv" if engine_name == "embedded" else "unreachable.example/orders.csv"
    body = file_source("unreachable", url=url)
    body["connectionConfig"]["provider"] = {"storage": "HTTPS", "user_agent": False}
    created = await create(client, headers, body)
    tested = await client.post(f"/api/v1/sources/{created['id']}/test", headers=headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "ERROR"
    assert tested.json()["statusMessage"]
    assert tested.json()["lastTestedAt"] is not None


async def test_config_change_makes_source_inactive_again(client, headers):
    created = await create(client, headers, FAKER)
    assert (await client.post(f"/api/v1/sources/{created['id']}/test", headers=headers)).json()[
        "status"
    ] == "ACTIVE"
    renamed = await client.put(f"/api/v1/sources/{created['id']}", json={"name": "renamed"}, headers=headers)
    assert renamed.json()["status"] == "ACTIVE"  # a rename does not need a new test
    changed = await client.put(
        f"/api/v1/sources/{created['id']}",
        json={"connectionConfig": {"count": 60, "seed": 7}},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "INACTIVE"
    assert changed.json()["name"] == "renamed"
    assert changed.json()["connectionConfig"]["count"] == 60


@pytest.mark.engines("embedded")
async def test_mssql_needs_the_airbyte_engine(client, headers):
    body = {"name": "ms", "connectorType": "mssql", "connectionConfig": {"host": "db", "password": SECRET}}
    error = assert_error_body(
        await client.post("/api/v1/sources", json=body, headers=headers), 400, "airbyte engine"
    )
    assert SECRET not in error["message"]


async def test_unknown_connector_type_is_400(client, headers):
    body = {"name": "x", "connectorType": "nope", "connectionConfig": {}}
    assert_error_body(
        await client.post("/api/v1/sources", json=body, headers=headers), 400, "unknown connectortype"
    )


async def test_missing_name_is_400(client, headers):
    body = {"connectorType": "faker", "connectionConfig": {}}
    assert_error_body(await client.post("/api/v1/sources", json=body, headers=headers), 400, "name")


async def test_invalid_config_names_each_field_without_echoing_secrets(client, headers, engine_name):
    body = file_source("bad")
    body["connectionConfig"]["format"] = "docx"
    body["connectionConfig"]["provider"]["aws_secret_access_key"] = 987654321987
    del body["connectionConfig"]["dataset_name"]
    error = assert_error_body(await client.post("/api/v1/sources", json=body, headers=headers), 400)
    if engine_name == "embedded":  # the fake Airbyte's source-file spec has no `format` enum
        assert "connectionConfig.format" in error["message"]
    assert "dataset_name" in error["message"]
    assert "987654321987" not in error["message"]

    faker = {**FAKER, "connectionConfig": {"count": "many"}}
    error = assert_error_body(await client.post("/api/v1/sources", json=faker, headers=headers), 400)
    assert "connectionConfig.count must be of type integer" in error["message"]


async def test_duplicate_name_is_409(client, headers):
    await create(client, headers, FAKER)
    assert_error_body(
        await client.post("/api/v1/sources", json=FAKER, headers=headers), 409, "already exists"
    )


def postgres_source(name: str = "pg", host: str = "db.internal", secret: str = SECRET) -> dict:
    return {
        "name": name,
        "connectorType": "postgres",
        "connectionConfig": {
            "host": host,
            "port": 5432,
            "database": "shop",
            "username": "u",
            "password": secret,
        },
    }


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def captured_logs():
    """Every log message (without pytest's logging plugin, so `-p no:logging` runs work too)."""
    handler, root = _Capture(), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.messages
    root.removeHandler(handler)
    root.setLevel(previous)


async def test_secret_never_leaves_in_clear(
    client, headers, rollback_session_maker, captured_logs, engine_name
):
    seen: list[str] = []
    # a connector whose spec marks a secret: file's provider key on embedded, postgres' password on airbyte
    on_airbyte = engine_name == "airbyte"
    created = await create(client, headers, postgres_source() if on_airbyte else file_source())
    seen.append(str(created))
    source_url = f"/api/v1/sources/{created['id']}"
    if on_airbyte:
        assert created["connectionConfig"]["password"] == "********"
        assert created["connectionConfig"]["username"] == "u"
    else:
        assert created["connectionConfig"]["provider"]["aws_secret_access_key"] == "********"
        assert created["connectionConfig"]["provider"]["aws_access_key_id"] == "AKIAEXAMPLE"

    for response in [
        await client.get(source_url, headers=headers),
        await client.get("/api/v1/sources", headers=headers),
        await client.post(f"{source_url}/test", headers=headers),  # fails: no network, message scrubbed
        await client.post(f"{source_url}/discover", headers=headers),
    ]:
        seen.append(response.text)

    # a masked PUT keeps the stored secret
    masked = (await client.get(source_url, headers=headers)).json()["connectionConfig"]
    masked["username" if on_airbyte else "dataset_name"] = "orders_v2"  # not where it connects
    updated = await client.put(source_url, json={"connectionConfig": masked}, headers=headers)
    assert updated.status_code == 200, updated.text
    seen.append(updated.text)
    async with rollback_session_maker() as session:
        # this source only: live tests of the same session leave other tenants' rows committed
        mine = {"id": uuid.UUID(created["id"])}
        stored = (
            (await session.execute(text("SELECT config::text FROM sources WHERE id = :id"), mine))
            .scalars()
            .all()
        )
        everything = (
            (await session.execute(text("SELECT row_to_json(s)::text FROM sources s"))).scalars().all()
        )
    assert stored and SECRET not in " ".join(everything)
    assert "orders_v2" in " ".join(stored)
    import json

    from ingest.core.crypto import SecretBox
    from ingest.sources.service import decrypted_config
    from tests.conftest import TEST_SECRET_KEY

    plain = decrypted_config(json.loads(stored[0]), SecretBox.from_setting(TEST_SECRET_KEY))
    assert (plain["password"] if on_airbyte else plain["provider"]["aws_secret_access_key"]) == SECRET

    # moving the source elsewhere while keeping the masked secret is refused
    endpoint = "host" if on_airbyte else "url"
    moved = dict(
        masked, **{endpoint: "attacker.example" if on_airbyte else "s3://attacker-bucket/orders.csv"}
    )
    refused = await client.put(source_url, json={"connectionConfig": moved}, headers=headers)
    error = assert_error_body(refused, 400, "secret")
    assert endpoint in error["message"]
    seen.append(refused.text)
    # sending the secret again makes the move fine
    if on_airbyte:
        moved["password"] = "another-" + SECRET
    else:
        moved["provider"] = dict(moved["provider"], aws_secret_access_key="another-" + SECRET)
    assert (
        await client.put(source_url, json={"connectionConfig": moved}, headers=headers)
    ).status_code == 200

    seen.extend(captured_logs)
    assert captured_logs, "the capture saw the service's logs"
    assert all(SECRET not in item for item in seen)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/sources/{id}"),
        ("put", "/api/v1/sources/{id}"),
        ("delete", "/api/v1/sources/{id}"),
        ("post", "/api/v1/sources/{id}/test"),
        ("post", "/api/v1/sources/{id}/discover"),
    ],
)
async def test_other_tenants_source_is_404(client, headers, method, path):
    created = await create(client, headers, FAKER)
    other = headers_for(uuid.uuid4())
    kwargs = {"json": {"name": "stolen"}} if method == "put" else {}
    response = await getattr(client, method)(path.format(id=created["id"]), headers=other, **kwargs)
    assert_error_body(response, 404, "not found")
    # and the owner still sees it unchanged
    assert (await client.get(f"/api/v1/sources/{created['id']}", headers=headers)).json()["name"] == "sample"


async def test_missing_source_is_404(client, headers):
    assert_error_body(await client.get(f"/api/v1/sources/{uuid.uuid4()}", headers=headers), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/sources"),
        ("put", "/api/v1/sources/{id}"),
        ("delete", "/api/v1/sources/{id}"),
        ("post", "/api/v1/sources/{id}/test"),
        ("post", "/api/v1/sources/{id}/discover"),
    ],
)
async def test_mutating_routes_need_token_permission_and_tenant(client, tenant, method, path):
    url = path.format(id=uuid.uuid4())
    kwargs = {"json": FAKER} if method in {"post", "put"} else {}
    assert_error_body(await getattr(client, method)(url, **kwargs), 401)
    assert_error_body(await getattr(client, method)(url, headers=headers_for(tenant, READ), **kwargs), 403)
    no_tenant = {"Authorization": headers_for(tenant)["Authorization"]}
    assert_error_body(await getattr(client, method)(url, headers=no_tenant, **kwargs), 400, "X-Tenant-Id")


async def test_delete_source(client, headers):
    created = await create(client, headers, FAKER)
    response = await client.delete(f"/api/v1/sources/{created['id']}", headers=headers)
    assert response.status_code == 204
    assert_error_body(await client.get(f"/api/v1/sources/{created['id']}", headers=headers), 404)


async def test_delete_source_with_connections_is_409(client, headers, tenant, rollback_session_maker):
    created = await create(client, headers, FAKER)
    async with rollback_session_maker() as session:
        await session.execute(
            text(
                "INSERT INTO connections (id, tenant_id, source_id, name, destination_type, sync_mode, status) "
                "VALUES (:id, :tenant, :source, 'c', 'iceberg', 'FULL_REFRESH', 'PENDING')"
            ),
            {"id": uuid.uuid4(), "tenant": tenant, "source": uuid.UUID(created["id"])},
        )
        await session.commit()
    response = await client.delete(f"/api/v1/sources/{created['id']}", headers=headers)
    assert_error_body(response, 409, "connection")
