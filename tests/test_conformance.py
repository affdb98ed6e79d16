"""Conformance: schemathesis (all checks, stateful phase included) against a live `ingest serve`.

The server runs on a database of its own (so nothing it queues is run by a later test's worker) and
its own data dir, no worker (triggered syncs and imports
stay queued: nothing the run creates executes), a package index that does not answer (a connector
that is not installed yet fails fast with a documented 502 instead of being installed), and short
connector time limits. Settings of the run: tests/conformance.toml; README "Conformance run".
"""

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest.db.migrate import upgrade
from tests.conftest import make_token

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_database(database_url):
    """A database of the run's own on the test server, built by the migrations, dropped after."""
    name = f"ingest_conformance_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = re.sub(r"/[^/?]+(\?|$)", f"/{name}\\1", database_url, count=1)
    upgrade(url)
    yield url
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def live_server(env_for_subprocess, own_database, tmp_path):
    port = free_port()
    env = {
        **env_for_subprocess,
        "INGEST_DATABASE_URL": own_database,
        "INGEST_DATA_DIR": str(tmp_path / "data"),
        "INGEST_CONNECTOR_PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "INGEST_CONNECTOR_TIMEOUT_SECONDS": "20",
        "INGEST_SCHEDULER_ENABLED": "false",
        # the run sends far more than a tenant's quota; 429 itself is documented and tested in tests/test_ratelimit*
        "INGEST_RATE_LIMIT_ENABLED": "false",
        "INGEST_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ingest"),
            "serve",
            "--port",
            str(port),
            "--no-worker",
            "--no-migrate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "ingest serve did not start:\n" + (tmp_path / "serve.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_schemathesis_finds_no_failures(live_server, tmp_path):
    tenant = uuid.uuid4()
    env = {
        **os.environ,
        "INGEST_CONFORMANCE_TOKEN": make_token([tenant], ttl=3600),
        "INGEST_CONFORMANCE_TENANT": str(tenant),
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
