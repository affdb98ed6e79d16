"""`engine_name` parametrized over both engines: imported by the conftest of each API suite that runs on both."""

import pytest

from tests.conftest import ENGINES


@pytest.fixture(scope="session", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """embedded (real connector processes) and airbyte (the AirbyteEngine against the fake Airbyte)."""
    return str(request.param)
