"""The embedded engine against real connector processes (airbyte-source-faker and a fake hung connector)."""

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pyarrow as pa
import pytest

from ingest.core.errors import ConnectorCancelledError, ConnectorError
from ingest.engines.base import (
    ColumnType,
    ConnectorType,
    DiscoveredStream,
    ReadRequest,
    StateCheckpoint,
    StreamBatch,
)
from ingest.engines.embedded import ConnectorProcessError, EmbeddedEngine
from ingest.engines.embedded.installer import install_blocking
from ingest.engines.embedded.protocol import RecordBatcher
from ingest.engines.secrets import MASK
from ingest.engines.types import arrow_schema

from .conftest import FAKE_CONNECTOR


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        try:
            process = psutil.Process(pid)
            assert process.status() == psutil.STATUS_ZOMBIE, f"process {pid} still running"
        except psutil.NoSuchProcess:
            pass


async def read_all(
    engine: EmbeddedEngine, request: ReadRequest
) -> tuple[RecordBatcher, dict[str, list[pa.RecordBatch]]]:
    batcher = RecordBatcher(request.streams, batch_records=300)
    batches: dict[str, list[pa.RecordBatch]] = {}
    async for line in engine.read_lines(request, asyncio.Event()):
        for out in batcher.feed(line):
            batches.setdefault(out.stream, []).append(out.batch)
    for out in batcher.flush():
        batches.setdefault(out.stream, []).append(out.batch)
    return batcher, batches


async def test_spec_is_cached(engine: EmbeddedEngine, faker: ConnectorType) -> None:
    spec = await engine.spec(faker)
    assert spec["type"] == "object"
    assert "count" in spec["properties"]
    venv = engine.connectors_dir / f"faker-{faker.version}"
    assert json.loads((venv / "spec.json").read_text()) == spec
    assert await engine.spec(faker) is spec


async def test_check_succeeds(engine: EmbeddedEngine, faker: ConnectorType) -> None:
    result = await engine.check(faker, {"count": 100})
    assert result.succeeded


async def test_check_fails_with_invalid_config(engine: EmbeddedEngine, faker: ConnectorType) -> None:
    result = await engine.check(faker, {"count": "many"})
    assert not result.succeeded
    assert result.message is not None
    assert "many" in result.message


async def test_discover_maps_columns(faker_streams: list[DiscoveredStream]) -> None:
    by_name = {s.name: s for s in faker_streams}
    assert set(by_name) == {"users", "products", "purchases"}
    users = {c.name: c for c in by_name["users"].columns}
    assert users["id"].type is ColumnType.INTEGER
    assert users["created_at"].type is ColumnType.TIMESTAMP
    assert users["address"].type is ColumnType.JSON
    assert users["name"].type is ColumnType.STRING
    purchases = {c.name: c for c in by_name["purchases"].columns}
    assert purchases["returned_at"].nullable
    assert {c.name: c.type for c in by_name["products"].columns}["price"] is ColumnType.DECIMAL
    assert by_name["users"].primary_key == [["id"]]
    assert by_name["users"].cursor_field == ["updated_at"]


async def test_read_full_refresh(
    engine: EmbeddedEngine, faker: ConnectorType, faker_streams: list[DiscoveredStream]
) -> None:
    request = ReadRequest(
        faker, {"count": 1000, "seed": 1, "parallelism": 2}, faker_streams, incremental=False, state=None
    )
    batcher, batches = await read_all(engine, request)
    assert batcher.records["users"] == 1000
    assert batcher.records["products"] == 100
    assert batcher.records["purchases"] > 0
    by_name = {s.name: s for s in faker_streams}
    for name, stream_batches in batches.items():
        table = pa.Table.from_batches(stream_batches)
        assert table.num_rows == batcher.records[name]
        assert table.schema == arrow_schema(by_name[name])
    users = pa.Table.from_batches(batches["users"])
    assert users.column("id").null_count == 0
    assert sorted(users.column("id").to_pylist()) == list(range(1, 1001))
    assert json.loads(users.column("address")[0].as_py())["city"]
    assert users.column("updated_at").null_count == 0
    assert batcher.committed_state()  # per-stream STATE messages collected
    assert batcher.pending_states == 0
    assert batcher.last_error is None


async def test_incremental_read_resumes_from_state(
    engine: EmbeddedEngine, faker: ConnectorType, faker_streams: list[DiscoveredStream]
) -> None:
    config = {"count": 500, "seed": 1, "always_updated": False, "parallelism": 1}
    users = [s for s in faker_streams if s.name == "users"]
    first, _ = await read_all(engine, ReadRequest(faker, config, users, incremental=True, state=None))
    assert first.records["users"] == 500
    state = first.committed_state()
    assert state[0]["stream"]["stream_descriptor"]["name"] == "users"
    second, _ = await read_all(engine, ReadRequest(faker, config, users, incremental=True, state=state))
    assert second.records.get("users", 0) < 500


async def test_read_yields_arrow_batches_then_one_state_checkpoint(
    engine: EmbeddedEngine, faker: ConnectorType, faker_streams: list[DiscoveredStream]
) -> None:
    config = {"count": 300, "seed": 1, "always_updated": False, "parallelism": 1}
    users = [s for s in faker_streams if s.name == "users"]
    events: list[StreamBatch | StateCheckpoint] = []
    async with engine.read(
        ReadRequest(faker, config, users, incremental=True, state=None), asyncio.Event()
    ) as run:
        async for event in run:
            events.append(event)
    batches = [e for e in events if isinstance(e, StreamBatch)]
    checkpoints = [e for e in events if isinstance(e, StateCheckpoint)]
    assert {b.stream for b in batches} == {"users"}
    assert sum(b.batch.num_rows for b in batches) == 300
    assert all(b.batch.schema == arrow_schema(users[0]) for b in batches)
    assert all(b.source_bytes > 0 for b in batches)
    assert len(checkpoints) == 1 and events[-1] is checkpoints[0]  # the state comes after every batch
    assert checkpoints[0].state[0]["stream"]["stream_descriptor"]["name"] == "users"

    full = ReadRequest(faker, config, users, incremental=False, state=None)
    async with engine.read(full, asyncio.Event()) as run:
        assert not [e async for e in run if isinstance(e, StateCheckpoint)]  # full refresh: no state


async def test_cancel_kills_the_process_group(
    engine: EmbeddedEngine, faker: ConnectorType, faker_streams: list[DiscoveredStream]
) -> None:
    cancel = asyncio.Event()
    request = ReadRequest(
        faker, {"count": 10_000_000, "parallelism": 2}, faker_streams, incremental=False, state=None
    )
    run = engine.read_lines(request, cancel)
    pids: list[int] = []

    async def consume() -> None:
        seen = 0
        async for line in run:
            if b'"RECORD"' in line:
                seen += 1
            if seen == 200 and not cancel.is_set():
                assert run.pid is not None
                leader = psutil.Process(run.pid)
                pids.extend([run.pid, *(child.pid for child in leader.children(recursive=True))])
                cancel.set()

    with pytest.raises(ConnectorCancelledError):
        await consume()
    assert len(pids) >= 2  # faker's worker processes were running too
    assert_gone(pids)


async def test_timeout_kills_a_hung_connector(fake_engine: EmbeddedEngine, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    with pytest.raises(ConnectorError, match="timed out"):
        await fake_engine.check(FAKE_CONNECTOR, {"mode": "hang", "pid_file": str(pid_file)})
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 2
    assert_gone(pids)


async def test_read_timeout_kills_a_hung_connector(fake_engine: EmbeddedEngine, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    request = ReadRequest(
        FAKE_CONNECTOR, {"mode": "hang", "pid_file": str(pid_file)}, [], incremental=False, state=None
    )
    run = fake_engine.read_lines(request, asyncio.Event())
    with pytest.raises(ConnectorError, match="timed out"):
        async for _ in run:
            pass
    assert_gone([int(p) for p in pid_file.read_text().split()])
    assert any("hanging" in line for line in run.diagnostics.lines)


async def test_secrets_are_scrubbed_from_errors_and_diagnostics(fake_engine: EmbeddedEngine) -> None:
    with pytest.raises(ConnectorProcessError) as caught:
        await fake_engine.check(FAKE_CONNECTOR, {"mode": "leak", "password": "hunter2-very-secret"})
    error = caught.value
    assert "bad password" in error.message
    assert "hunter2" not in error.message
    assert MASK in error.message
    text = "\n".join(error.diagnostics)
    assert "connecting with password ********" in text
    assert "auth failed for ********" in text
    assert "hunter2" not in text


async def test_java_connectors_cannot_run_embedded(engine: EmbeddedEngine) -> None:
    mssql = ConnectorType("mssql", "SQL Server", None, None, "MSSQL", frozenset({"airbyte"}))
    with pytest.raises(ConnectorError, match="cannot run in the embedded engine"):
        await engine.spec(mssql)


async def test_failed_read_raises_the_scrubbed_trace_error(fake_engine: EmbeddedEngine) -> None:
    config = {"mode": "leak", "password": "hunter2-very-secret"}
    run = fake_engine.read_lines(
        ReadRequest(FAKE_CONNECTOR, config, [], incremental=False, state=None), asyncio.Event()
    )
    lines: list[bytes] = []

    async def consume() -> None:
        async for line in run:
            lines.append(line)

    with pytest.raises(ConnectorProcessError, match="bad password \\*\\*\\*\\*\\*\\*\\*\\*") as caught:
        await consume()
    assert "hunter2" not in caught.value.message
    assert len(lines) == 2  # the LOG and TRACE lines still reach the caller, raw
    assert run.returncode == 1


def test_concurrent_installs_make_one_venv(tmp_path: Path, faker: ConnectorType) -> None:
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(install_blocking, tmp_path, faker, index_url=None, timeout=900.0) for _ in range(2)
        ]
        venvs = {f.result() for f in futures}
    assert venvs == {tmp_path / f"faker-{faker.version}"}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        f"faker-{faker.version}"
    ]
    assert (tmp_path / f"faker-{faker.version}" / "bin" / "source-faker").is_file()


async def test_closing_a_read_early_stops_the_connector(
    engine: EmbeddedEngine, faker: ConnectorType, faker_streams: list[DiscoveredStream]
) -> None:
    request = ReadRequest(
        faker, {"count": 10_000_000, "parallelism": 2}, faker_streams, incremental=False, state=None
    )
    pids: list[int] = []
    async with engine.read_lines(request, asyncio.Event()) as run:
        async for line in run:
            if b'"RECORD"' in line:
                assert run.pid is not None
                pids = [run.pid, *(c.pid for c in psutil.Process(run.pid).children(recursive=True))]
                break
    assert pids
    assert_gone(pids)
