"""Engine test fixtures: one real airbyte-source-faker install per session (or INGEST_TEST_CONNECTORS_DIR)."""

import os
import sys
import textwrap
from pathlib import Path

import pytest

from ingest.core.settings import Settings
from ingest.engines.base import ConnectorType, DiscoveredStream
from ingest.engines.embedded import EmbeddedEngine
from ingest.engines.embedded.installer import install_blocking
from ingest.engines.registry import get_connector

FAKE_CONNECTOR = ConnectorType(
    id="fake",
    title="Fake",
    package="airbyte-source-fake",
    version="0.0.1",
    airbyte_definition_name="Fake",
    engines=frozenset({"embedded"}),
)

# A stand-in connector: a spec with one secret, a check that hangs (and ignores SIGTERM, with a child
# process in its group), a check that leaks its password to stderr/LOG/TRACE, and a read that hangs.
_FAKE_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time

    def emit(message):
        print(json.dumps(message), flush=True)

    command = sys.argv[1]
    if command == "spec":
        emit({"type": "SPEC", "spec": {"connectionSpecification": {"type": "object", "properties": {
            "mode": {"type": "string"},
            "password": {"type": "string", "airbyte_secret": True},
        }}}})
        sys.exit(0)
    config = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
    if config["mode"] == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(config["pid_file"], "w") as handle:
            handle.write(f"{os.getpid()} {child.pid}")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit({"type": "LOG", "log": {"level": "INFO", "message": "hanging"}})
        time.sleep(600)
    if config["mode"] == "leak":
        password = config["password"]
        print(f"connecting with password {password}", file=sys.stderr, flush=True)
        emit({"type": "LOG", "log": {"level": "ERROR", "message": "auth failed for " + password}})
        emit({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 0,
              "error": {"message": "bad password " + password, "failure_type": "config_error"}}})
        sys.exit(1)
    sys.exit(3)
    """
)


@pytest.fixture(scope="session")
def connectors_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cached = os.environ.get("INGEST_TEST_CONNECTORS_DIR")
    if cached:
        path = Path(cached).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("connectors")


@pytest.fixture(scope="session")
def engine_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(
        environ={},
        data_dir=tmp_path_factory.mktemp("data"),
        connector_timeout_seconds=180.0,
        connector_kill_grace_seconds=2.0,
    )


@pytest.fixture(scope="session")
def faker() -> ConnectorType:
    connector = get_connector("faker")
    assert connector is not None
    return connector


@pytest.fixture(scope="session")
def engine(engine_settings: Settings, connectors_dir: Path, faker: ConnectorType) -> EmbeddedEngine:
    # once per session; a cached INGEST_TEST_CONNECTORS_DIR makes this a no-op
    install_blocking(connectors_dir, faker, index_url=None, timeout=900.0)
    return EmbeddedEngine(engine_settings, connectors_dir=connectors_dir)


@pytest.fixture(scope="session")
async def faker_streams(engine: EmbeddedEngine, faker: ConnectorType) -> list[DiscoveredStream]:
    return await engine.discover(faker, {"count": 1000, "seed": 1})


@pytest.fixture
def fake_engine(tmp_path: Path) -> EmbeddedEngine:
    """An engine whose `fake` connector is a hand-made venv dir: a python link and a script."""
    venv = tmp_path / "connectors" / "fake-0.0.1"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "source-fake").write_text(_FAKE_SCRIPT)
    (venv / ".installed").write_text("{}")
    settings = Settings.from_env(
        environ={},
        data_dir=tmp_path,
        connector_timeout_seconds=2.0,
        connector_read_timeout_seconds=2.0,
        connector_kill_grace_seconds=1.0,
    )
    return EmbeddedEngine(settings)
