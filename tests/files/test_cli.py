"""`ingest import FILE --table NAME`: the API's pipeline from the command line."""

import subprocess
import sys
import uuid
from decimal import Decimal

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


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", "import", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_import_takes_read_options_types_and_on_error(
    tmp_path, env_for_subprocess, settings: Settings, database_url
):
    """A cp1252 file with ';' and decimal commas, one bad row: the flags the schema PUT takes, by the CLI."""
    tenant = uuid.uuid4()
    path = tmp_path / "prices.csv"
    path.write_bytes("name;price\ncafé;1,50\nthé;not a price\nbière;12,25\n".encode("cp1252"))
    how = [
        "--tenant",
        str(tenant),
        "--read-options",
        '{"delimiter": ";", "encoding": "cp1252", "decimalComma": true}',
        "--column-types",
        '{"price": "DECIMAL(6,2)"}',
    ]
    done = _cli(
        env_for_subprocess,
        str(path),
        "--table",
        "prices",
        *how,
        "--on-error",
        "skip",
        "--max-error-rows",
        "5",
    )
    assert done.returncode == 0, done.stderr
    assert "2 rows imported into default.prices" in done.stdout
    assert "1 rows rejected into default.prices__rejects" in done.stdout
    warehouse = Warehouse.from_settings(settings, database_url)
    got = warehouse.read_all(tenant, None, "prices").sort("name").to_dicts()
    assert got == [{"name": "bière", "price": Decimal("12.25")}, {"name": "café", "price": Decimal("1.50")}]
    [reject] = warehouse.read_all(tenant, None, "prices__rejects").to_dicts()
    assert (reject["column_name"], reject["value"]) == ("price", "not a price")

    unknown = _cli(env_for_subprocess, str(path), "--table", "p2", "--read-options", '{"separator": ";"}')
    assert unknown.returncode == 2
    assert "Unknown read option(s): separator" in unknown.stderr
    broken = _cli(env_for_subprocess, str(path), "--table", "p2", "--column-types", "{price")
    assert broken.returncode == 2
    assert "--column-types is not JSON" in broken.stderr
    aborted = _cli(env_for_subprocess, str(path), "--table", "p3", *how)
    assert aborted.returncode == 1
    assert "not a price" in aborted.stderr
    assert not warehouse.table_exists(tenant, None, "p3")
