"""The IMAP source on the embedded engine, end to end through the API, against a real Dovecot started for this
module (tests/imap_server.py) and seeded over IMAP APPEND. Tables are read back with pyiceberg.
"""

import asyncio
import dataclasses
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from imapclient import IMAPClient

from ingest.core.errors import ConnectorCancelledError, InvalidRequestError
from ingest.engines.base import ReadRequest, StateCheckpoint, StreamBatch
from ingest.engines.embedded import EmbeddedEngine
from ingest.engines.embedded.mail import imap as imap_reader
from ingest.engines.embedded.mail import imap_read
from ingest.engines.registry import get_connector
from ingest.iceberg.warehouse import Warehouse
from ingest.storage import Storage
from tests.conftest import assert_error_body, headers_for
from tests.imap_server import dovecot, free_port
from tests.syncs.test_api import _remember_database, run_sync, wait_for  # noqa: F401

pytestmark = pytest.mark.engines("embedded")

PASSWORD = "alice-Secret-9x!"
BOB_PASSWORD = "bob-Other-7y?"


@pytest.fixture
def warehouse(settings, database_url):
    return Warehouse.from_settings(settings, database_url)


def message(
    mid: str,
    subject: str = "Hello",
    body: str = "Hello there.\r\n",
    extra: str = "",
    date: str = "Mon, 02 Dec 2024 10:00:00 +0100",
) -> bytes:
    return (
        f"From: Alice Example <alice@example.com>\r\nTo: Bob <bob@example.com>\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <{mid}>\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


UNICODE_SUBJECT = "Grüße aus Köln — 東京 🚀"
UNICODE = (
    "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.com>\r\nTo: alice@example.com\r\n"
    "Subject: =?utf-8?b?" + __import__("base64").b64encode(UNICODE_SUBJECT.encode()).decode() + "?=\r\n"
    "Date: Tue, 03 Dec 2024 08:30:00 -0500\r\nMessage-ID: <unicode@example.com>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "Sch=F6ne Gr=FC=DFe\r\n"
).encode()
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
ATTACHMENT = (
    "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Report attached\r\n"
    "Date: Wed, 04 Dec 2024 12:00:00 +0000\r\nMessage-ID: <report@example.com>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
    "See the report.\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>See the report.</p>\r\n"
    '--b1\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
    'Content-Disposition: attachment; filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    + __import__("base64").encodebytes(PDF).decode().replace("\n", "\r\n")
    + "--b1--\r\n"
).encode()
BROKEN = (
    b"From: broken@example.com\r\nSubject: broken\r\nMessage-ID: <broken@example.com>\r\n"
    b"Date: not a date at all\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!! not base64 ~~~~\r\n"
)
OLD_TIME = datetime(2020, 1, 15, 9, 0, tzinfo=UTC)


def login(server, user: str = "alice", password: str = PASSWORD) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.login(user, password)
    return client


@pytest.fixture(scope="module")
def imap_server():
    """One Dovecot for the module; alice's mailbox is seeded once (tests that change it use own folders)."""
    with dovecot({"alice": PASSWORD, "bob": BOB_PASSWORD}) as server:
        client = login(server)
        client.append("INBOX", UNICODE)
        client.append("INBOX", ATTACHMENT)
        client.append("INBOX", message("t1@example.com", "Plan"))
        client.append(
            "INBOX",
            message(
                "t2@example.com",
                "Re: Plan",
                extra="In-Reply-To: <t1@example.com>\r\nReferences: <t1@example.com>\r\n",
            ),
        )
        client.append(
            "INBOX",
            message(
                "t3@example.com",
                "Re: Re: Plan",
                extra="In-Reply-To: <t2@example.com>\r\nReferences: <t1@example.com> <t2@example.com>\r\n",
            ),
        )
        client.append("INBOX", message("flagged@example.com", "Important"), flags=[b"\\Flagged"])
        client.append("INBOX", BROKEN)
        client.append("INBOX", message("old@example.com", "Ancient"), msg_time=OLD_TIME)
        client.append("INBOX", message("copy@example.com", "In two folders"))
        client.append("Archive", message("copy@example.com", "In two folders"))
        client.append("Trash", message("trash@example.com", "Deleted"))
        client.append("Junk", message("spam@example.com", "Buy now"))
        client.append("Sent", message("sent@example.com", "Sent by me"))
        client.logout()
        yield server


def config(server, **extra) -> dict:
    """STARTTLS on the plain port, trusting the server's self-signed certificate."""
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "tls": "starttls",
        "tls_ca_certificate": server.cert_pem,
        "username": "alice",
        "password": PASSWORD,
        **extra,
    }


async def create_source(client, headers, connection_config: dict, status: int = 201) -> dict:
    body = {
        "name": f"mail-{uuid.uuid4().hex[:6]}",
        "connectorType": "imap",
        "connectionConfig": connection_config,
    }
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()


async def checked(client, headers, connection_config: dict) -> dict:
    source = await create_source(client, headers, connection_config)
    response = await client.post(f"/api/v1/sources/{source['id']}/test", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def connect(client, headers, source_id: str, **fields) -> dict:
    body = {"sourceId": source_id, "name": f"c-{uuid.uuid4().hex[:6]}", **fields}
    response = await client.post("/api/v1/connections", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def flags_on_server(server, folder: str = "INBOX") -> dict[str, set[bytes]]:
    client = login(server)
    try:
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search(), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {
            next(v for k, v in data.items() if k.startswith(b"BODY"))
            .decode()
            .split("<")[1]
            .split(">")[0]: set(data[b"FLAGS"])
            for data in fetched.values()
        }
    finally:
        client.logout()


def rows_by_id(warehouse, tenant, table: str = "messages") -> dict[str, dict]:
    rows = warehouse.read_all(tenant, None, table).to_dicts()
    by_id: dict[str, dict] = {}
    for row in rows:
        assert row["message_id"] not in by_id, f"two rows for {row['message_id']}"
        by_id[row["message_id"]] = row
    return by_id


# -- registry, spec, test connection ------------------------------------------------------------------------


async def test_imap_connector_type_and_spec(client, tenant):
    token_only = {"Authorization": headers_for(tenant)["Authorization"]}
    assert "imap" in (await client.get("/api/v1/sources/connector-types", headers=token_only)).json()
    body = (await client.get("/api/v1/sources/connector-types/imap/spec", headers=token_only)).json()
    properties = body["connectionSpecification"]["properties"]
    assert properties["password"]["airbyte_secret"] is True
    assert properties["access_token"]["airbyte_secret"] is True
    assert properties["tls"]["enum"] == ["implicit", "starttls", "none"]
    assert {"folders", "since_days", "since_date", "max_message_bytes"} <= set(properties)


@pytest.mark.engines("airbyte")
async def test_imap_is_refused_on_the_airbyte_engine(client, headers, engine_name):
    assert engine_name == "airbyte"
    body = {"name": "m", "connectorType": "imap", "connectionConfig": {"host": "x", "username": "u"}}
    response = await client.post("/api/v1/sources", json=body, headers=headers)
    assert_error_body(response, 400, "embedded engine")


async def test_imap_test_connection_outcomes(client, headers, imap_server):
    server = imap_server
    ok = await checked(client, headers, config(server))
    assert ok["status"] == "ACTIVE", ok
    implicit = await checked(client, headers, config(server, port=server.tls_port, tls="implicit"))
    assert implicit["status"] == "ACTIVE", implicit
    oauth = {k: v for k, v in config(server).items() if k != "password"}
    token = await checked(
        client, headers, {**oauth, "access_token": PASSWORD}
    )  # Dovecot checks it as a password
    assert token["status"] == "ACTIVE", token

    outcomes = {
        "bad password": (config(server, password="wrong-" + PASSWORD), "Wrong credentials"),
        "untrusted certificate": (
            {
                k: v
                for k, v in config(server, port=server.tls_port, tls="implicit").items()
                if k != "tls_ca_certificate"
            },
            "certificate is not trusted",
        ),
        "implicit TLS on the plain port": (config(server, tls="implicit"), "did not answer TLS"),
        "unreachable": (config(server, port=free_port()), "Connection refused"),
        "unknown host": (config(server, host="imap.does-not-exist.invalid"), "does not resolve"),
        "missing folder": (config(server, folders=["INBOX", "Nope"]), "No such folder"),
    }
    for what, (connection_config, expected) in outcomes.items():
        body = await checked(client, headers, connection_config)
        assert body["status"] == "ERROR", (what, body)
        assert expected.lower() in body["statusMessage"].lower(), (what, body["statusMessage"])
        assert PASSWORD not in body["statusMessage"]
        assert "wrong-" not in body["statusMessage"]

    refused = {
        "plaintext": config(server, tls="none"),
        "both secrets": {**config(server), "access_token": "t"},
        "no secret": {k: v for k, v in config(server).items() if k != "password"},
        "two windows": config(server, since_days=3, since_date="2024-01-01"),
    }
    for what, connection_config in refused.items():
        body = {"name": "m", "connectorType": "imap", "connectionConfig": connection_config}
        response = await client.post("/api/v1/sources", json=body, headers=headers)
        assert_error_body(response, 400), what
        assert PASSWORD not in response.text


async def test_imap_plaintext_only_when_the_setting_allows_it(settings, imap_server):
    connector = get_connector("imap")
    plain = config(imap_server, tls="none")
    del plain["tls_ca_certificate"]
    with pytest.raises(InvalidRequestError, match="INGEST_IMAP_ALLOW_PLAINTEXT"):
        EmbeddedEngine(settings).check_options(connector, plain)
    allowed = EmbeddedEngine(dataclasses.replace(settings, imap_allow_plaintext=True))
    allowed.check_options(connector, plain)
    result = await allowed.check(connector, plain)
    assert result.succeeded, result.message


async def test_imap_discover_offers_messages_and_folders(client, headers, imap_server):
    source = await create_source(client, headers, config(imap_server))
    response = await client.post(f"/api/v1/sources/{source['id']}/discover", headers=headers)
    assert response.status_code == 200, response.text
    streams = {s["name"]: s for s in response.json()["streams"]}
    assert set(streams) == {"messages", "folders"}
    columns = {c["name"]: c["type"] for c in streams["messages"]["columns"]}
    assert columns["message_id"] == "STRING" and columns["date"] == "TIMESTAMP"
    assert columns["size"] == "INTEGER" and columns["headers"] == "JSON" and columns["attachments"] == "JSON"
    assert {"thread_id", "folders", "from", "to", "cc", "bcc", "reply_to", "subject", "flags"} <= set(columns)
    assert {"text_body", "html_body", "content_hash", "parse_error"} <= set(columns)
    assert set(streams["messages"]["supportedSyncModes"]) == {"FULL_REFRESH", "INCREMENTAL"}
    assert {c["name"] for c in streams["folders"]["columns"]} >= {"name", "special_use", "uidvalidity"}


async def test_imap_other_tenant_gets_404(client, headers, imap_server):
    source = await create_source(client, headers, config(imap_server))
    other = headers_for(uuid.uuid4())
    for method, path in [
        ("GET", f"/api/v1/sources/{source['id']}"),
        ("POST", f"/api/v1/sources/{source['id']}/test"),
        ("POST", f"/api/v1/sources/{source['id']}/discover"),
        ("DELETE", f"/api/v1/sources/{source['id']}"),
    ]:
        assert_error_body(await client.request(method, path, headers=other), 404)
    response = await client.post(
        "/api/v1/connections", json={"sourceId": source["id"], "name": "x"}, headers=other
    )
    assert_error_body(response, 404)
    got = (await client.get(f"/api/v1/sources/{source['id']}", headers=headers)).json()
    assert got["connectionConfig"]["password"] == "********"


# -- syncs ---------------------------------------------------------------------------------------------------


async def test_imap_full_refresh_rows_folders_and_nothing_marked_read(
    live_client, tenant, warehouse, imap_server
):
    headers = headers_for(tenant)
    source = await create_source(live_client, headers, config(imap_server))
    connection = await connect(live_client, headers, source["id"])
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    folders = {r["name"]: r for r in warehouse.read_all(tenant, None, "folders").to_dicts()}
    rows = rows_by_id(warehouse, tenant)
    # INBOX (9, one of them also in Archive), Archive's copy merged, Sent; Trash and Junk left out
    assert set(rows) == {
        "<unicode@example.com>",
        "<report@example.com>",
        "<t1@example.com>",
        "<t2@example.com>",
        "<t3@example.com>",
        "<flagged@example.com>",
        "<broken@example.com>",
        "<old@example.com>",
        "<copy@example.com>",
        "<sent@example.com>",
    }
    assert first["recordsSynced"] == 10 + len(folders)  # messages + one row per folder on the server
    unicode = rows["<unicode@example.com>"]
    assert unicode["subject"] == UNICODE_SUBJECT
    assert unicode["from"] == [{"name": "Jürgen Müller", "address": "juergen@example.com"}]
    assert unicode["text_body"].strip() == "Schöne Grüße"
    assert unicode["date"] == datetime(2024, 12, 3, 13, 30, tzinfo=UTC)
    assert unicode["folders"] == ["INBOX"]
    assert unicode["size"] == len(UNICODE)
    assert unicode["parse_error"] is None
    report = rows["<report@example.com>"]
    assert report["text_body"].strip() == "See the report." and "<p>" in report["html_body"]
    [attachment] = report["attachments"]
    assert attachment["name"] == "report.pdf" and attachment["content_type"] == "application/pdf"
    assert attachment["size"] == len(PDF)
    assert attachment["sha256"] == __import__("hashlib").sha256(PDF).hexdigest()
    assert attachment["storage_key"] is None  # store_attachments is off by default
    assert {rows[f"<t{i}@example.com>"]["thread_id"] for i in (1, 2, 3)} == {"<t1@example.com>"}
    assert sorted(rows["<copy@example.com>"]["folders"]) == ["Archive", "INBOX"]  # one row, both folders
    assert rows["<sent@example.com>"]["folders"] == ["Sent"]
    assert rows["<flagged@example.com>"]["flags"] == ["\\Flagged"]
    assert rows["<broken@example.com>"]["parse_error"]
    assert json.loads(unicode["headers"])["message-id"] == ["<unicode@example.com>"]
    # never marked read: no message on the server has \Seen
    for folder in ("INBOX", "Archive", "Sent"):
        for mid, flags in flags_on_server(imap_server, folder).items():
            assert b"\\Seen" not in flags, (folder, mid)

    assert folders["Trash"]["special_use"] == "\\Trash" and folders["Trash"]["selected"] is False
    assert folders["Junk"]["selected"] is False and folders["INBOX"]["selected"] is True
    assert folders["INBOX"]["messages"] == 9 and folders["INBOX"]["unseen"] == 9

    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED", second
    assert len(rows_by_id(warehouse, tenant)) == 10  # replaced, not appended


async def test_imap_incremental_by_uid_moved_or_copied_message_is_one_row(
    live_client, tenant, warehouse, imap_server
):
    headers = headers_for(tenant)
    folder_a, folder_b = f"Work{uuid.uuid4().hex[:6]}", f"Done{uuid.uuid4().hex[:6]}"
    admin = login(imap_server)
    admin.create_folder(folder_a)
    admin.create_folder(folder_b)
    admin.append(folder_a, message("a1@example.com", "first"))
    admin.append(folder_a, message("move-me@example.com", "to be moved"))
    source = await create_source(live_client, headers, config(imap_server, folders=[folder_a, folder_b]))
    connection = await connect(
        live_client, headers, source["id"], syncMode="INCREMENTAL", selectedStreams=["messages"]
    )
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    assert set(rows_by_id(warehouse, tenant)) == {"<a1@example.com>", "<move-me@example.com>"}

    nothing = await run_sync(live_client, headers, connection["id"])
    assert nothing["status"] == "SUCCEEDED"
    assert nothing["recordsSynced"] == 0  # no message past the saved UIDs

    admin.select_folder(folder_a)
    uid = admin.search(["HEADER", "Message-ID", "move-me@example.com"])
    admin.move(uid, folder_b)
    admin.append(folder_a, message("a2@example.com", "second"))
    third = await run_sync(live_client, headers, connection["id"])
    assert third["status"] == "SUCCEEDED", third
    assert third["recordsSynced"] == 2  # the new message and the moved one
    rows = rows_by_id(warehouse, tenant)
    assert set(rows) == {"<a1@example.com>", "<move-me@example.com>", "<a2@example.com>"}
    assert rows["<move-me@example.com>"]["folders"] == [folder_b]
    assert rows["<a1@example.com>"]["folders"] == [folder_a]

    admin.select_folder(folder_a)
    admin.copy(admin.search(["HEADER", "Message-ID", "a1@example.com"]), folder_b)  # now in both
    fourth = await run_sync(live_client, headers, connection["id"])
    assert fourth["status"] == "SUCCEEDED", fourth
    assert fourth["recordsSynced"] == 1  # the copy, as one row listing both folders
    rows = rows_by_id(warehouse, tenant)
    assert len(rows) == 3
    assert sorted(rows["<a1@example.com>"]["folders"]) == sorted([folder_a, folder_b])
    admin.logout()


async def test_imap_uidvalidity_change_reads_the_folder_again(live_client, tenant, warehouse, imap_server):
    headers = headers_for(tenant)
    name = f"Lists{uuid.uuid4().hex[:6]}"
    admin = login(imap_server)
    admin.create_folder(name)
    for i in range(3):
        admin.append(name, message(f"list{i}@example.com", f"list {i}"))
    source = await create_source(live_client, headers, config(imap_server, folders=[name]))
    connection = await connect(
        live_client, headers, source["id"], syncMode="INCREMENTAL", selectedStreams=["messages"]
    )
    first = await run_sync(live_client, headers, connection["id"])
    assert first["status"] == "SUCCEEDED", first
    assert len(rows_by_id(warehouse, tenant)) == 3
    before = admin.folder_status(name, [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    # re-created: a new UIDVALIDITY, and UIDs start at 1 again (below the saved last UID 3)
    admin.delete_folder(name)
    admin.create_folder(name)
    assert admin.folder_status(name, [b"UIDVALIDITY"])[b"UIDVALIDITY"] != before
    admin.append(name, message("renumbered@example.com", "new after the reset"))
    admin.append(name, message("list0@example.com", "list 0"))
    admin.logout()
    second = await run_sync(live_client, headers, connection["id"])
    assert second["status"] == "SUCCEEDED", second
    assert second["recordsSynced"] == 2  # both messages of the renumbered folder
    rows = rows_by_id(warehouse, tenant)  # list0 again: upserted by its key, not duplicated
    assert set(rows) == {
        "<list0@example.com>",
        "<list1@example.com>",
        "<list2@example.com>",
        "<renumbered@example.com>",
    }


async def test_imap_time_window(live_client, tenant, warehouse, imap_server):
    headers = headers_for(tenant)
    since = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()  # after OLD_TIME (2020)
    for window in ({"since_date": since}, {"since_days": 30}):
        source = await create_source(live_client, headers, config(imap_server, folders=["INBOX"], **window))
        namespace = f"w{uuid.uuid4().hex[:8]}"
        connection = await connect(live_client, headers, source["id"], namespace=namespace)
        done = await run_sync(live_client, headers, connection["id"])
        assert done["status"] == "SUCCEEDED", done
        ids = {r["message_id"] for r in warehouse.read_all(tenant, namespace, "messages").to_dicts()}
        assert "<old@example.com>" not in ids, window  # appended with an internal date in 2020
        assert "<unicode@example.com>" in ids and len(ids) == 8, window


async def test_imap_attachments_stored_under_the_tenant_prefix(
    live_client, tenant, warehouse, settings, imap_server
):
    headers = headers_for(tenant)
    source = await create_source(
        live_client, headers, config(imap_server, folders=["INBOX"], store_attachments=True)
    )
    connection = await connect(live_client, headers, source["id"], selectedStreams=["messages"])
    done = await run_sync(live_client, headers, connection["id"])
    assert done["status"] == "SUCCEEDED", done
    [attachment] = rows_by_id(warehouse, tenant)["<report@example.com>"]["attachments"]
    digest = __import__("hashlib").sha256(PDF).hexdigest()
    assert attachment["storage_key"] == f"tenant-{tenant}/attachments/{digest}"
    assert Storage.from_settings(settings).path(attachment["storage_key"]).read_bytes() == PDF


async def test_imap_message_over_the_size_limit_keeps_headers_and_whole_hash(
    live_client, tenant, warehouse, imap_server, monkeypatch
):
    # partial fetches of 500 bytes: the hash of the 2 KB message is built from several pieces
    monkeypatch.setattr(imap_read, "FETCH_BYTES", 500)
    headers = headers_for(tenant)
    limit = {"folders": ["INBOX"], "max_message_bytes": 1024}
    source = await create_source(live_client, headers, config(imap_server, **limit))
    connection = await connect(live_client, headers, source["id"], selectedStreams=["messages"])
    done = await run_sync(live_client, headers, connection["id"])
    assert done["status"] == "SUCCEEDED", done
    rows = rows_by_id(warehouse, tenant)
    report = rows["<report@example.com>"]
    assert len(ATTACHMENT) > 1024
    assert report["size"] == len(ATTACHMENT)
    assert report["content_hash"] == __import__("hashlib").sha256(ATTACHMENT).hexdigest()
    assert report["subject"] == "Report attached" and report["text_body"] is None
    assert "over max_message_bytes (1024): headers only" in report["parse_error"]
    small = rows["<t1@example.com>"]
    assert small["text_body"] and small["parse_error"] is None  # under the limit: parsed whole


async def test_imap_cancel_stops_the_read_promptly(settings, imap_server):
    name = f"Bulk{uuid.uuid4().hex[:6]}"
    admin = login(imap_server)
    admin.create_folder(name)
    body = "x" * 4_000 + "\r\n"
    admin.multiappend(name, [message(f"bulk{i}@example.com", f"bulk {i}", body=body) for i in range(3000)])
    admin.logout()
    engine = EmbeddedEngine(settings)
    connector = get_connector("imap")
    request = ReadRequest(
        connector=connector,
        config=config(imap_server, folders=[name]),
        streams=imap_reader.streams()[:1],
        incremental=False,
        state=None,
    )
    cancel = asyncio.Event()
    seen: list[float] = []

    async def consume() -> None:
        async with engine.read(request, cancel) as run:
            async for event in run:
                assert not isinstance(event, StateCheckpoint)
                if isinstance(event, StreamBatch) and event.batch.num_rows:
                    seen.append(time.monotonic())
                    cancel.set()  # after the first 500 of 3,000 messages

    log_start = len(imap_server.log())
    with pytest.raises(ConnectorCancelledError):
        await consume()
    assert len(seen) == 1
    # the server saw the session end having sent only part of the folder (its log counts the bodies sent):
    # the reader runs at most the bridge's queue (2 batches) and one batch in the making ahead of the sync
    deadline = time.monotonic() + 10
    ended: list[int] = []
    while time.monotonic() < deadline and not ended:
        tail = imap_server.log()[log_start:]
        ended = [int(n) for n in re.findall(r"imap\(alice\).*Disconnected.*body_count=(\d+)", tail)]
        await asyncio.sleep(0.1)
    assert ended, imap_server.log()[log_start:]
    assert max(ended) < 3000
