"""Databases read natively into Arrow by the embedded engine: one module per database, owning its driver.

`postgres` (ADBC's libpq driver) and `mysql` (ConnectorX); both take Airbyte's source-postgres /
source-mysql configuration, so a source moves between engines without edits.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from ingest.engines.base import CheckResult, DiscoveredStream, ReadRequest
from ingest.engines.embedded.databases import mysql, postgres
from ingest.engines.embedded.databases.common import CONNECT_TIMEOUT_SECONDS, DatabaseRead

DATABASES = frozenset({"postgres", "mysql"})


def is_database(connector_id: str) -> bool:
    return connector_id in DATABASES


def spec(connector_id: str) -> dict[str, Any]:
    return postgres.SPEC if connector_id == "postgres" else mysql.SPEC


def check_options(connector_id: str, config: Mapping[str, Any]) -> None:
    """400 naming the options the embedded engine cannot honour (SSH tunnel, CDC, ...)."""
    (postgres if connector_id == "postgres" else mysql).check_options(config)


async def check(connector_id: str, config: Mapping[str, Any]) -> CheckResult:
    if connector_id == "postgres":
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS * 2):
                return await postgres.check(config)
        except TimeoutError:
            return CheckResult(
                False, f"No answer from {config.get('host')} within {CONNECT_TIMEOUT_SECONDS} s"
            )
    return await asyncio.to_thread(mysql.check, config)


async def discover(connector_id: str, config: Mapping[str, Any]) -> list[DiscoveredStream]:
    if connector_id == "postgres":
        return await postgres.discover(config)
    return await asyncio.to_thread(mysql.discover, config)


def read(request: ReadRequest, cancel: asyncio.Event) -> DatabaseRead:
    if request.connector.id == "postgres":
        return postgres.read(request, cancel)
    return mysql.read(request, cancel)
