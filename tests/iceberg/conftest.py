import uuid
from pathlib import Path

import pytest

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse


@pytest.fixture
def warehouse(tmp_path: Path, database_url: str) -> Warehouse:
    """A real pyiceberg SQL catalog in the session's PostgreSQL, with a warehouse of its own."""
    settings = Settings.from_env(environ={}, data_dir=tmp_path, database_url=database_url)
    return Warehouse.from_settings(settings)


@pytest.fixture
def tenant() -> uuid.UUID:
    return uuid.uuid4()
