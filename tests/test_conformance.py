"""Conformance: schemathesis (all checks, stateful phase included) against a live `ingest serve`.

The server runs on a database of its own (so nothing it queues is run by a later test's worker) and
its own data dir, no worker (triggered syncs and imports
stay queued: nothing the run creates executes), a package index that does not answer (a connector
that is not installed yet fails fast with a documented 502 instead of being installed), and short
connector time limits. Settings of the run: tests/conformance.toml; README "Conformance run".
"""

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_token
from tests.processes import free_port, own_database, running, serve_command, wait_ready

ROOT = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = int(os.environ.get("INGEST_CONFORMANCE_EXAMPLES", "6"))
# every check schemathesis has but max_response_time: timing belongs in benchmarks, not in a test
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,positive_data_acceptance,missing_required_header,"
    "unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability,ignored_auth,"
    "object_level_authorization"
)
SEED = int(os.environ.get("INGEST_CONFORMANCE_SEED", "20261202"))
RUN_TIMEOUT = 900  # seconds; a hung run fails the test instead of hanging the suite


@pytest.fixture
def own_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, prefix="ingest_conformance") as url:
        yield url


@pytest.fixture
def live_server(env_for_subprocess, own_db, tmp_path):
    port = free_port()
    env = {
        **env_for_subprocess,
        "INGEST_DATABASE_URL": own_db,
        "INGEST_DATA_DIR": str(tmp_path / "data"),
        "INGEST_CONNECTOR_PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "INGEST_CONNECTOR_TIMEOUT_SECONDS": "20",
        "INGEST_SCHEDULER_ENABLED": "false",
        # the run sends far more than a tenant's quota; 429 itself is documented and tested in tests/test_ratelimit*
        "INGEST_RATE_LIMIT_ENABLED": "false",
        "INGEST_LOG_LEVEL": "WARNING",
    }
    with running([serve_command(port)], env, tmp_path) as processes:
        url = f"http://127.0.0.1:{port}"
        wait_ready([url], processes, tmp_path)
        yield url


def test_schemathesis_finds_no_failures(live_server, tmp_path):
    tenant = uuid.uuid4()
    env = {
        **os.environ,
        "INGEST_CONFORMANCE_TOKEN": make_token([tenant], ttl=3600),
        "INGEST_CONFORMANCE_TENANT": str(tenant),
        "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "conformance_hooks.py"),  # the tus PATCH body's media type
    }
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(ROOT / "tests" / "conformance.toml"),
        "run",
        f"{live_server}/schema/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False, cwd=tmp_path
    )  # in tmp_path: schemathesis keeps a cache dir where it runs
    output = result.stdout + result.stderr
    summary = re.findall(r"^=+ (.*) =+$", output, re.MULTILINE)
    print(output[-4000:])
    assert result.returncode == 0, (
        f"schemathesis: {summary[-1] if summary else 'no summary'}\n{output[-20000:]}"
    )
    assert re.search(r"Stateful", output), "the stateful phase did not run"
