"""What a job needs besides its ids: settings, a session factory and the adapters, built once per process."""

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


    async def aclose(self) -> None:
        """Close what the adapters opened (HTTP clients, pools)."""
        engine = self.__dict__.get("engine")
        close = getattr(engine, "close", None)
        if close is not None:
            await close()


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the job runtime is not set: start through `ingest serve` or `ingest worker`")
    return _runtime
