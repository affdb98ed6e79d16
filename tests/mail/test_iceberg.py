"""The message row lands in Iceberg (nested columns included) and reads back equal with pyiceberg."""

import uuid

import pyarrow as pa
import pytest

from ingest.core.settings import Settings
from ingest.iceberg import Warehouse
from ingest.mail import MESSAGE_SCHEMA, parse_message, rows_to_batch
from tests.mail.test_message import _message, _nested


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Warehouse:
    settings = Settings.from_env(
        environ={}, data_dir=tmp_path_factory.mktemp("mail"), database_url=database_url
    )
    return Warehouse.from_settings(settings)


def test_message_rows_round_trip_through_iceberg(warehouse: Warehouse) -> None:
    tenant = uuid.uuid4()
    rows = [
        parse_message(_message().as_bytes(), folders=["INBOX"], flags=["\\Seen"]),
        parse_message(_nested(2).as_bytes(), folders=["Archive/2026"]),
        parse_message(b"Date: never\r\n\r\nbroken"),
    ]
    batch = rows_to_batch(rows)
    for job in ("a", "b"):  # the second append goes into the existing table
        reader = pa.RecordBatchReader.from_batches(MESSAGE_SCHEMA, [batch])
        warehouse.write_batches(tenant, None, "mail", reader, job_id=f"job-{job}")

    table = warehouse.catalog.load_table(warehouse.ref(tenant, None, "mail").identifier).scan().to_arrow()

    assert table.num_rows == 6
    assert table.schema.names == MESSAGE_SCHEMA.names
    got = table.slice(0, 3).to_pylist()
    expected = batch.to_pylist()
    assert got == expected
