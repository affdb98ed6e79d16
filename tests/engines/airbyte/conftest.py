from collections.abc import AsyncIterator

import pytest

from ingest.core.settings import Settings
from ingest.engines.airbyte import AirbyteEngine
from tests.fake_airbyte.plugin import airbyte_settings, fake_airbyte, fake_airbyte_server  # noqa: F401


@pytest.fixture
async def engine(airbyte_settings: Settings) -> AsyncIterator[AirbyteEngine]:  # noqa: F811
    engine = AirbyteEngine(airbyte_settings)
    yield engine
    await engine.close()
