"""What a job needs besides its ids: settings, a session factory and the adapters, built once per process."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    session_maker: async_sessionmaker[AsyncSession]
    database_url: str
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def engine(self) -> Any:
        """The configured connector engine (embedded or airbyte)."""
        from ingest.engines.factory import create_engine

        return create_engine(self.settings)

    @cached_property
    def warehouse(self) -> Any:
        """The tenant-scoped Iceberg catalog (`ingest.iceberg.Warehouse`); its calls block: use a thread."""
        from ingest.iceberg.warehouse import Warehouse

        return Warehouse.from_settings(self.settings, self.database_url)

    @cached_property
    def storage(self) -> Any:
        """The object store for uploads (`ingest.storage.Storage`)."""
        from ingest.storage import Storage

        return Storage.from_settings(self.settings)

    @cached_property
    def secret_box(self) -> Any:
        """Encrypts connector secrets at rest (`INGEST_SECRET_KEY`, or a development key in the data dir)."""
        from ingest.core.crypto import SecretBox
        from ingest.core.logging import get_logger

        if self.settings.secret_key:
            return SecretBox.from_setting(self.settings.secret_key)
        get_logger("ingest.secrets").warning(
            "secrets.development_key",
            message="Encrypting connector secrets with a development key from the data dir; "
            "set INGEST_SECRET_KEY in production",
        )
        return SecretBox.development(self.settings.data_dir)

    async def aclose(self) -> None:
        """Close what the adapters opened (HTTP clients, pools)."""
        engine = self.__dict__.get("engine")
        close = getattr(engine, "close", None)
        if close is not None:
            await close()
        outbound = self.extras.pop("outbound", None)
        if outbound is not None:
            await outbound.aclose()


@asynccontextmanager
async def open_runtime(settings: Settings, database_url: str, pool_size: int = 2) -> AsyncIterator[Runtime]:
    """A Runtime on its own engine, for processes other than the API (worker, CLI); closed on exit."""
    from ingest.db.session import create_engine, session_factory

    engine = create_engine(database_url, pool_size=pool_size)
    runtime = Runtime(settings=settings, session_maker=session_factory(engine), database_url=database_url)
    try:
        yield runtime
    finally:
        await runtime.aclose()
        await engine.dispose()


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the job runtime is not set: start through `ingest serve` or `ingest worker`")
    return _runtime
