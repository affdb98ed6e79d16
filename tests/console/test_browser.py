"""The console in a real browser (Debian's Chromium through Playwright) against a real `ingest serve`.

The service runs on its embedded defaults (its own data dir, embedded PostgreSQL, in-process worker, the
built console from `make console`); only the JWT secret and the connector cache are set. Each test signs in
as a fresh tenant. Screenshots of every screen go to a temporary folder, or to docs/screenshots/ (the README
shows them) with INGEST_TEST_SCREENSHOTS=docs/screenshots: a test run leaves the checkout clean.
"""

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ingest.console import DEFAULT_DIST
from tests.conftest import JWT_SECRET, MANAGE, READ, TEST_SECRET_KEY, make_token
from tests.processes import free_port, running, stop_embedded_postgres, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(
    os.environ.get("INGEST_TEST_SCREENSHOTS") or tempfile.mkdtemp(prefix="ingest-screenshots-")
)
if not SCREENSHOTS.is_absolute():
    SCREENSHOTS = ROOT / SCREENSHOTS
CHROMIUM = os.environ.get("INGEST_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SYNC_DEADLINE_MS = 150_000
CSV = "id,name,joined\n1,Ada,2024-01-02\n2,Grace,2024-02-03\n3,Linus,2024-03-04\n"


@pytest.fixture(scope="module")
def service(connectors_home: Path) -> Iterator[str]:
    """`ingest serve` on a free port with its own data dir (embedded PostgreSQL), stopped afterwards."""
    if not (DEFAULT_DIST / "index.html").is_file():
        pytest.fail("console/dist is missing: run `make console` (make test does)")
    # not under pytest's 0700 tmp dirs: as root, pgserver runs PostgreSQL as an unprivileged user
    data_dir = Path(tempfile.mkdtemp(prefix="ingest-console-test-"))
    data_dir.chmod(0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        INGEST_DATA_DIR=str(data_dir),
        INGEST_JWT_SECRET=JWT_SECRET,
        INGEST_SECRET_KEY=TEST_SECRET_KEY,
        INGEST_CONNECTORS_HOME=str(connectors_home),
        INGEST_LOG_LEVEL="WARNING",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with running([["serve", "--host", "127.0.0.1", "--port", str(port)]], env, data_dir) as processes:
            wait_ready([url], processes, data_dir)
            yield url
    finally:
        stop_embedded_postgres(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's Chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def api(service: str, token: str, tenant: uuid.UUID) -> httpx.Client:
    return httpx.Client(
        base_url=f"{service}/api/v1",
        headers={"Authorization": f"Bearer {token}", "X-Tenant-Id": str(tenant)},
        timeout=120,
    )


def sign_in_by_link(page: Page, service: str, token: str) -> None:
    page.goto(f"{service}/console/#token={token}")
    expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    assert "token" not in page.url  # moved out of the address bar (and history) at once
    assert page.evaluate("sessionStorage.getItem('ingest.console.token')") == token


def test_sign_in_source_form_test_discover_connection_and_sync(service: str, page: Page) -> None:
    tenant = uuid.uuid4()
    token = make_token([tenant, uuid.uuid4()], [READ, MANAGE], ttl=900, sub="admin@example.com")

    # sign in with a pasted token, picking the tenant among the token's two
    page.goto(f"{service}/console/")
    expect(page.get_by_role("heading", name="ingest console")).to_be_visible()
    page.get_by_label("Bearer token").fill(token)
    page.get_by_label("Tenant").select_option(str(tenant))
    shot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sources", level=1)).to_be_visible()
    expect(page.get_by_text("No sources yet")).to_be_visible()

    # a faker source from the form generated from its spec (defaults filled in)
    page.get_by_role("link", name="New source").click()
    page.get_by_label("Connector").select_option("faker")
    count = page.get_by_label("Count", exact=True)
    expect(count).to_have_value("1000")  # the spec's default
    page.get_by_label("Name", exact=True).fill("demo faker")
    count.fill("300")
    page.get_by_label("Seed").fill("42")
    page.get_by_label("Parallelism").fill("1")
    shot(page, "source-form")
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_role("heading", name="Source demo faker")).to_be_visible()
    expect(page.get_by_text("INACTIVE")).to_be_visible()

    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status").filter(has_text="Test result")).to_contain_text(
        "ACTIVE", timeout=60_000
    )
    page.get_by_role("button", name="Discover").click()
    streams = page.get_by_role("table", name="Discovered streams")
    expect(streams.get_by_role("rowheader", name="users")).to_be_visible(timeout=60_000)
    expect(streams.get_by_role("row", name="users")).to_contain_text("FULL_REFRESH")
    shot(page, "source")

    # a connection from the source: stream picker from its catalog, cron in words
    page.get_by_role("link", name="New connection").click()
    expect(page.get_by_label("Source")).to_have_value(page.url.split("sourceId=")[1])
    expect(page.get_by_label("Sync stream users")).to_be_checked(timeout=60_000)
    page.get_by_label("Sync stream purchases").uncheck()
    page.get_by_label("Name", exact=True).fill("demo sync")
    page.get_by_label("Schedule (cron)").fill("0 3 * * 1")
    expect(page.locator("#schedule-words")).to_contain_text("At 03:00, only on Monday")
    expect(page.get_by_role("list", name="Next runs").get_by_role("listitem")).to_have_count(3)
    shot(page, "connection-form")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("heading", name="Connections", level=1)).to_be_visible()
    row = page.get_by_role("row", name="demo sync")
    expect(row).to_contain_text("PENDING")
    expect(row).to_contain_text("At 03:00, only on Monday")
    shot(page, "connections")

    # pause and resume (POST /connections/{id}/pause|resume)
    page.get_by_role("button", name="Pause demo sync").click()
    expect(row.get_by_text("PAUSED", exact=True)).to_be_visible()
    page.get_by_role("button", name="Resume demo sync").click()
    expect(page.get_by_role("button", name="Pause demo sync")).to_be_visible()
    expect(row.get_by_text("PAUSED", exact=True)).to_have_count(0)

    # trigger, watch it run to SUCCEEDED
    page.get_by_role("button", name="Sync demo sync now").click()
    expect(page.get_by_role("heading", name="Sync of demo sync")).to_be_visible()
    expect(page.locator(".facts .status")).to_have_text("SUCCEEDED", timeout=SYNC_DEADLINE_MS)
    records = int(page.get_by_test_id("records").inner_text().replace(",", ""))
    assert records >= 300  # 300 users (+ the products stream); purchases were left out
    shot(page, "sync")

    page.get_by_role("link", name="Syncs", exact=True).click()
    history = page.get_by_role("table", name="Sync history")
    expect(history.get_by_role("row").filter(has_text="demo sync")).to_contain_text("SUCCEEDED")
    shot(page, "syncs")
    history.get_by_role("button", name="Records").click()
    expect(history.get_by_role("columnheader", name="Records")).to_have_attribute("aria-sort", "descending")
    assert "sort=recordsSynced%2Cdesc" in page.url
    page.get_by_label("Connection").select_option(label="demo sync")
    expect(history.get_by_role("row")).to_have_count(2)  # header + the one sync
    assert "connectionId=" in page.url
    expect(page.get_by_text("Page 1 of 1 (1 syncs)")).to_be_visible()

    page.get_by_role("link", name="Tables", exact=True).click()
    expect(page.get_by_role("link", name="default.users")).to_be_visible()
    expect(page.get_by_role("link", name="default.purchases")).to_have_count(0)
    page.get_by_role("link", name="default.users").click()
    expect(page.get_by_role("table", name="Snapshots")).to_contain_text("sync ")
    expect(page.get_by_role("table", name="Rows").get_by_role("row")).to_have_count(51)  # header + 50

    # narrow window: the same screens stay usable
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Connections", exact=True).click()
    expect(page.get_by_role("button", name="Sync demo sync now")).to_be_visible()
    shot(page, "narrow")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Bearer token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ingest.console.token')") is None


def test_upload_rename_import_and_open_the_table(service: str, page: Page, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    sign_in_by_link(page, service, make_token([tenant], [READ, MANAGE], ttl=900))
    csv = tmp_path / "people.csv"
    csv.write_text(CSV)

    page.get_by_role("link", name="Files", exact=True).click()

    # upload progress: a 1 MB file on an upload link throttled to 512 KB/s shows the bar moving
    big = tmp_path / "big.csv"
    big.write_text("id,name,joined\n" + "".join(f"{i},name {i},2024-01-02\n" for i in range(45_000)))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    throttle = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 512 * 1024}
    cdp.send("Network.emulateNetworkConditions", throttle)
    page.get_by_label("File to upload").set_input_files(str(big))
    expect(page.get_by_role("progressbar", name="Upload progress")).to_be_visible()
    page.wait_for_function(
        "() => { const bar = document.querySelector('progress[aria-label=\"Upload progress\"]');"
        " return bar !== null && bar.value > 0 && bar.value < bar.max; }"
    )
    shot(page, "upload")
    cdp.send("Network.emulateNetworkConditions", {**throttle, "uploadThroughput": -1})
    expect(page.get_by_role("heading", name="File big.csv")).to_be_visible()
    expect(page.get_by_role("table", name="Preview")).to_contain_text("name 19")

    page.get_by_role("link", name="Files", exact=True).click()
    expect(page.get_by_role("table", name="Uploaded files")).to_contain_text("big.csv")
    page.get_by_label("File to upload").set_input_files(str(csv))
    expect(page.get_by_role("heading", name="File people.csv")).to_be_visible()
    preview = page.get_by_role("table", name="Preview")
    expect(preview).to_contain_text("Grace")
    expect(page.get_by_label("Type of column id")).to_have_value("INTEGER")  # inferred
    expect(page.get_by_label("Type of column joined")).to_have_value("DATE")
    page.get_by_label("Name of column name").fill("full_name")
    page.get_by_label("Type of column id").select_option("STRING")
    expect(page.get_by_label("Table name")).to_have_value("people")
    page.get_by_label("Table name").fill("people_2024")
    shot(page, "file-preview")
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".import-progress")).to_contain_text("COMPLETED", timeout=60_000)
    expect(page.locator(".import-progress")).to_contain_text("3 rows")
    shot(page, "file-imported")

    page.get_by_role("link", name="Open table default.people_2024").click()
    schema = page.get_by_role("table", name="Schema")
    expect(schema.get_by_role("row", name="full_name")).to_be_visible()
    expect(schema.get_by_role("row").filter(has_text="id")).to_contain_text("string")
    rows = page.get_by_role("table", name="Rows")
    expect(rows.get_by_role("columnheader", name="full_name")).to_be_visible()
    expect(rows).to_contain_text("Ada")
    expect(rows.get_by_role("row")).to_have_count(4)
    expect(page.get_by_role("table", name="Snapshots")).to_contain_text("import ")
    shot(page, "table")


def test_read_only_token_sees_no_manage_buttons(service: str, page: Page) -> None:
    tenant = uuid.uuid4()
    with api(service, make_token([tenant], [READ, MANAGE]), tenant) as client:
        source = client.post(
            "/sources", json={"name": "shared", "connectorType": "faker", "connectionConfig": {"count": 10}}
        )
        assert source.status_code == 201, source.text
        connection = client.post("/connections", json={"sourceId": source.json()["id"], "name": "nightly"})
        assert connection.status_code == 201, connection.text

    sign_in_by_link(page, service, make_token([tenant], [READ], ttl=900))
    expect(page.get_by_text("(read-only)")).to_be_visible()
    expect(page.get_by_role("link", name="shared")).to_be_visible()
    expect(page.get_by_role("link", name="New source")).to_have_count(0)
    page.get_by_role("link", name="shared").click()
    expect(page.get_by_role("heading", name="Source shared")).to_be_visible()
    for name in ("Test", "Discover", "Edit", "Delete", "New connection"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    page.get_by_role("link", name="Connections", exact=True).click()
    expect(page.get_by_role("row", name="nightly")).to_be_visible()
    expect(page.get_by_role("button", name="Sync nightly now")).to_have_count(0)
    expect(page.get_by_role("link", name="New connection")).to_have_count(0)
    shot(page, "read-only")
    page.get_by_role("link", name="Files", exact=True).click()
    expect(page.get_by_role("heading", name="Uploaded files")).to_be_visible()
    expect(page.get_by_label("File to upload")).to_have_count(0)


def test_api_errors_show_their_message(service: str, page: Page) -> None:
    tenant = uuid.uuid4()
    manage = make_token([tenant], [READ, MANAGE], ttl=900)
    with api(service, manage, tenant) as client:
        source = client.post(
            "/sources", json={"name": "in use", "connectorType": "faker", "connectionConfig": {"count": 10}}
        ).json()
        client.post("/connections", json={"sourceId": source["id"], "name": "keeps it"}).raise_for_status()
        refused = client.delete(f"/sources/{source['id']}")
        assert refused.status_code == 409
        message = refused.json()["message"]

    # a bad token: the API's 401 message, on the sign-in form; signed in by keyboard only
    page.goto(f"{service}/console/")
    page.get_by_label("Bearer token").focus()
    page.keyboard.type(make_token([tenant], secret="not-the-service-secret-but-long-enough"))
    page.keyboard.press("Tab")  # past the help text to the button
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("Token signature is invalid")

    sign_in_by_link(page, service, manage)
    page.get_by_role("link", name="in use").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("alert")).to_have_text(message)
    expect(page.get_by_role("status")).to_contain_text("delete those connections first")
    shot(page, "error")

    # a validation error from the API, shown as its message
    page.goto(f"{service}/console/files/{uuid.uuid4()}")
    expect(page.get_by_role("alert")).to_contain_text("not found")


def test_generated_form_enums_oneof_choices_and_secrets(service: str, page: Page) -> None:
    """source-file's spec: an enum with a default, a `oneOf` storage provider, `airbyte_secret` fields."""
    sign_in_by_link(page, service, make_token([uuid.uuid4()], [READ, MANAGE], ttl=900))
    page.get_by_role("link", name="New source").click()
    page.get_by_label("Connector").select_option("file")
    expect(page.get_by_label("File Format")).to_have_value("csv")  # enum, its default chosen
    provider = page.get_by_label("Storage Provider: type")
    expect(provider).to_have_value("0")  # the first choice
    page.get_by_label("Name", exact=True).fill("remote file")
    page.get_by_label("Dataset Name").fill("people")
    page.get_by_label(re.compile(r"^URL( \*)?$")).fill("/data/people.csv")
    provider.select_option(label="SSH: Secure Shell")
    expect(page.get_by_label("User-Agent")).to_have_count(0)  # the HTTPS choice's field is gone
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("type", "password")
    page.get_by_label(re.compile(r"^User( \*)?$")).fill("etl")
    page.get_by_label("Host").fill("files.example.com")
    password.fill("s3cret-value")
    page.get_by_role("button", name="Create source").click()
    expect(page.get_by_role("heading", name="Source remote file")).to_be_visible()
    page.get_by_text("Configuration").click()
    expect(page.locator("pre.config-view")).to_contain_text('"password": "********"')
    assert "s3cret-value" not in page.content()

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Storage Provider: type")).to_have_value("4")  # SSH, recognised by its const
    expect(page.get_by_label("Host")).to_have_value("files.example.com")
    expect(page.get_by_label("Password")).to_have_value("********")  # sent back as is: the stored value stays
    expect(page.get_by_label("Password")).to_have_attribute("type", "password")
    page.get_by_label("Name", exact=True).fill("remote file (renamed)")
    shot(page, "source-edit")
    page.get_by_role("button", name="Save source").click()
    expect(page.get_by_role("heading", name="Source remote file (renamed)")).to_be_visible()
