"""Builds the configured connector engine."""

from ingest.core.errors import InvalidRequestError
from ingest.core.settings import Settings
from ingest.engines.base import Engine


def create_engine(settings: Settings) -> Engine:
    """`INGEST_ENGINE=embedded` (local connector processes) or `airbyte` (an Airbyte deployment)."""
    if settings.engine == "embedded":
        from ingest.engines.embedded import EmbeddedEngine

        return EmbeddedEngine(settings)
    if settings.engine == "airbyte":
        # imported lazily: the Airbyte adapter pulls in its HTTP client only when configured
        from ingest.engines.airbyte.engine import AirbyteEngine

        engine: Engine = AirbyteEngine(settings)
        return engine
    raise InvalidRequestError(f"unknown engine {settings.engine!r}: expected 'embedded' or 'airbyte'")
