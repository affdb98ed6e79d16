"""`ingest import FILE --table NAME`: the API's pipeline from the command line."""

import subprocess
import sys
import uuid

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from tests.formats.samples import frame, write_sample


def test_ingest_import_command(tmp_path, env_for_subprocess, settings: Settings, database_url):
    tenant = uuid.uuid4()
    path = write_sample(tmp_path, "parquet")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.cli",
            "import",
            str(path),
            "--table",
            "cli_orders",
            "--namespace",
            "raw",
            "--tenant",
            str(tenant),
        ],
        env=env_for_subprocess,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "3 rows imported into raw.cli_orders" in done.stdout
    got = Warehouse.from_settings(settings, database_url).read_all(tenant, "raw", "cli_orders")
    assert got.to_dicts() == frame().to_dicts()

    bad = subprocess.run(
        [sys.executable, "-m", "ingest.cli", "import", str(path), "--table", "1bad", "--tenant", str(tenant)],
        env=env_for_subprocess,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert "Invalid table name" in bad.stderr
