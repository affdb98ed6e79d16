"""The embedded engine: Airbyte's Python connectors run as local subprocesses."""

from ingest.engines.embedded.engine import ConnectorRun, EmbeddedEngine, ReadRun
from ingest.engines.embedded.process import ConnectorProcessError

__all__ = ["ConnectorProcessError", "ConnectorRun", "EmbeddedEngine", "ReadRun"]
