"""A fake self-managed Airbyte (public + config API subset) for adapter and API tests."""

from tests.fake_airbyte.app import MASK, FakeAirbyte
from tests.fake_airbyte.server import serve

__all__ = ["MASK", "FakeAirbyte", "serve"]
