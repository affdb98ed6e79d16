import dataclasses

import pytest

from ingest.core.settings import Settings
from ingest.iceberg.warehouse import Warehouse


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """Maintenance that shows its effect within a test: no retention, keep 5, orphans older than 60 s."""
    return dataclasses.replace(
        settings,
        maintenance_snapshot_retention_hours=0.0,
        maintenance_keep_snapshots=5,
        maintenance_orphan_min_age_hours=60 / 3600,
        maintenance_lock_wait_seconds=30.0,
    )


@pytest.fixture
def warehouse(settings: Settings, database_url: str) -> Warehouse:
    return Warehouse.from_settings(settings, database_url)
