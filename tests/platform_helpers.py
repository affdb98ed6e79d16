"""Helpers for the airbyte-engine API tests: our rows' remote ids, and Airbyte-side changes made "in its UI"."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ingest.core.settings import Settings
from ingest.db.session import sqlalchemy_url
from ingest.engines.airbyte import AirbyteEngine


@asynccontextmanager
async def airbyte_ui(settings: Settings) -> AsyncIterator[AirbyteEngine]:
    """An AirbyteEngine of its own, standing in for someone clicking in Airbyte's UI."""
    engine = AirbyteEngine(settings)
    try:
        yield engine
    finally:
        await engine.close()


async def row(database_url: str, sql: str, **params: Any) -> Any:
    """One value from committed data (for live_client tests)."""
    engine = create_async_engine(sqlalchemy_url(database_url))
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one_or_none()
    finally:
        await engine.dispose()


async def external_id(session_maker: Any, table: str, object_id: str) -> str | None:
    """The Airbyte id stored on one of our rows (for rolled-back `client` tests)."""
    assert table in {"sources", "connections", "syncs"}
    column = "external_job_id" if table == "syncs" else "external_id"
    async with session_maker() as session:
        query = text(f"SELECT {column} FROM {table} WHERE id = :id")
        value: str | None = (await session.execute(query, {"id": uuid.UUID(object_id)})).scalar_one_or_none()
        return value
