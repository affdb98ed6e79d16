"""One lock per Iceberg table, shared by everything that commits to it: imports, syncs, maintenance, rollback.

Two layers with the same name: the procrastinate job lock (`table_lock`) queues the jobs of one table one
after another, and a PostgreSQL advisory lock (`hold_table`) is held around each commit, because a sync's
job is locked per connection and writes several tables. Maintenance and rollback take the advisory lock
too, so a compaction never runs while a load writes the same table.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

DEFAULT_SCHEMA = "default"
_POLL_SECONDS = 0.2


class TableBusyError(Exception):
    """Another load or maintenance holds the table's lock (after waiting `wait_seconds`)."""


def table_lock(tenant_id: uuid.UUID, schema: str | None, table: str) -> str:
    """The lock name of a tenant's table (procrastinate job lock and advisory lock key)."""
    return f"table:{tenant_id}:{schema or DEFAULT_SCHEMA}.{table}"


@asynccontextmanager
async def hold_table(
    session_maker: async_sessionmaker[AsyncSession],
    tenant_id: uuid.UUID,
    schema: str | None,
    table: str,
    *,
    wait_seconds: float | None = None,
) -> AsyncIterator[None]:
    """Hold the table's advisory lock for the block; wait forever (None) or raise TableBusyError.

    A transaction-level lock on a connection of its own: it is released when the block ends, and by the
    server if this process dies mid-block, so a crash never leaves a table locked.
    """
    key = table_lock(tenant_id, schema, table)
    async with session_maker() as session, session.begin():
        if wait_seconds is None:
            await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})
        else:
            deadline = time.monotonic() + wait_seconds
            while True:
                got = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key}
                )
                if got:
                    break
                if time.monotonic() >= deadline:
                    raise TableBusyError(f"{schema or DEFAULT_SCHEMA}.{table} is being written")
                await asyncio.sleep(_POLL_SECONDS)
        yield
