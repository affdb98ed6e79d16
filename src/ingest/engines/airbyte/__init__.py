"""The Airbyte platform engine: the only package that knows Airbyte URLs and payloads."""

from ingest.engines.airbyte.client import RemoteConflictError, RemoteNotFoundError
from ingest.engines.airbyte.cron import unix_to_quartz
from ingest.engines.airbyte.engine import AirbyteEngine, RemoteObjects

__all__ = ["AirbyteEngine", "RemoteConflictError", "RemoteNotFoundError", "RemoteObjects", "unix_to_quartz"]
