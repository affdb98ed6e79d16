"""Pytest fixtures for the fake Airbyte: `pytest_plugins = ["tests.fake_airbyte.plugin"]` or import them.

- `fake_airbyte_server` (session): one server for the whole run.
- `fake_airbyte` (function): that server with fresh state; tweak it and inject faults per test.
- `airbyte_settings` (function): Settings pointing the AirbyteEngine at it, with short timeouts and waits.
"""

import json
from collections.abc import Iterator

import pytest

from ingest.core.settings import Settings
from tests.fake_airbyte.app import FakeAirbyte
from tests.fake_airbyte.server import serve

DESTINATION_CONFIG = {
    "s3_bucket_name": "ingest-lake",
    "s3_bucket_region": "us-east-1",
    "s3_endpoint": "http://minio:9000",
    "access_key_id": "AKIAFAKE",
    "secret_access_key": "fake-secret-access-key",
    "warehouse_location": "s3://ingest-lake/warehouse",
    "main_branch_name": "main",
    "catalog_type": {"catalog_type": "REST", "server_uri": "http://catalog:8181", "namespace": "default"},
}


@pytest.fixture(scope="session")
def fake_airbyte_server() -> Iterator[FakeAirbyte]:
    fake = FakeAirbyte()
    with serve(fake):
        yield fake


@pytest.fixture
def fake_airbyte(fake_airbyte_server: FakeAirbyte) -> Iterator[FakeAirbyte]:
    fake_airbyte_server.reset()
    yield fake_airbyte_server
    fake_airbyte_server.reset()


def airbyte_overrides(fake: FakeAirbyte) -> dict[str, object]:
    """Settings fields pointing the AirbyteEngine at `fake`: `dataclasses.replace(settings, **these)`."""
    return {
        "engine": "airbyte",
        "airbyte_url": fake.url,
        "airbyte_client_id": fake.client_id,
        "airbyte_client_secret": fake.client_secret,
        "airbyte_timeout_seconds": 1.0,
        "airbyte_long_timeout_seconds": 5.0,
        "airbyte_poll_seconds": 0.05,
        "airbyte_retry_attempts": 4,
        "airbyte_retry_backoff_seconds": 0.01,
        "airbyte_retry_max_backoff_seconds": 0.2,
        "airbyte_destination_config": json.dumps(DESTINATION_CONFIG),
    }


def airbyte_settings_for(fake: FakeAirbyte, **overrides: object) -> Settings:
    return Settings.from_env({}, **{**airbyte_overrides(fake), **overrides})


@pytest.fixture
def airbyte_settings(fake_airbyte: FakeAirbyte) -> Settings:
    return airbyte_settings_for(fake_airbyte)
