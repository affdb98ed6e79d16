import datetime as dt
import uuid
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from ingest.formats import SourceFile, detect_format
from ingest.iceberg import (
    JOB_ID_PROPERTY,
    DataConversionError,
    SchemaMismatchError,
    Warehouse,
    WriteMode,
    tenant_namespace,
    tenant_of,
)
from tests.formats.samples import EXACT_AMOUNT_FORMATS, FORMATS, stored_frame, write_sample


def data_files(warehouse: Warehouse) -> list[Path]:
    root = Path(warehouse.catalog.properties["warehouse"].removeprefix("file://"))
    return sorted(p for p in root.rglob("*.parquet"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_import_each_format_with_a_rename(
    tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID, fmt: str
) -> None:
    path = write_sample(tmp_path, fmt)
    source = SourceFile(path, detect_format(path, path.name))
    progress: list[int] = []

    result = warehouse.write_frame(
        tenant,
        "raw_data",
        "sales",
        source.scan,
        job_id="job-1",
        column_mappings={"name": "customer", "amount": "total_amount"},
        progress=progress.append,
        explain=source.explain,
    )

    assert result.rows_written == 3
    assert not result.already_applied
    assert result.table_created
    assert progress[-1] == 3
    got = warehouse.read_all(tenant, "raw_data", "sales")
    expected = stored_frame(fmt).rename({"name": "customer", "amount": "total_amount"})
    assert got.to_dicts() == expected.to_dicts()
    info = warehouse.describe(tenant, "raw_data", "sales")
    assert info.row_count == 3
    assert [c.name for c in info.columns] == ["id", "customer", "total_amount", "active", "day", "ts"]
    amount = "decimal(18, 2)" if fmt in EXACT_AMOUNT_FORMATS else "double"
    assert [c.type for c in info.columns] == ["long", "string", amount, "boolean", "date", "timestamp"]
    assert info.snapshots[-1].summary[JOB_ID_PROPERTY] == "job-1"


def test_same_job_twice_writes_once(tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID) -> None:
    path = write_sample(tmp_path, "csv")
    source = SourceFile(path, detect_format(path, path.name))
    first = warehouse.write_frame(tenant, None, "t", source.scan, job_id="job-1")
    second = warehouse.write_frame(tenant, None, "t", source.scan, job_id="job-1")
    third = warehouse.write_frame(tenant, None, "t", source.scan, job_id="job-2")

    assert (first.rows_written, first.already_applied) == (3, False)
    assert (second.rows_written, second.already_applied) == (3, True)
    assert second.snapshot_id == first.snapshot_id
    assert third.rows_written == 3
    assert warehouse.describe(tenant, None, "t").row_count == 6
    assert warehouse.job_rows(tenant, None, "t", "job-1") == 3
    assert warehouse.job_rows(tenant, None, "t", "job-9") is None


def test_bad_value_late_in_the_file_leaves_the_table_unchanged(
    tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID
) -> None:
    good = tmp_path / "good.csv"
    pl.DataFrame({"id": [1, 2], "v": ["a", "b"]}).write_csv(good)
    warehouse.write_frame(
        tenant, None, "t", SourceFile(good, detect_format(good, "good.csv")).scan, job_id="j1"
    )
    files_before = data_files(warehouse)
    snapshots_before = warehouse.describe(tenant, None, "t").snapshots

    bad = tmp_path / "bad.csv"
    bad.write_text("id,v\n" + "".join(f"{i},x\n" for i in range(50_000)) + "not-a-number,y\n")
    source = SourceFile(bad, detect_format(bad, "bad.csv"))
    with pytest.raises(DataConversionError, match="Row 50001, column 'id': value 'not-a-number'"):
        warehouse.write_frame(tenant, None, "t", source.scan, job_id="j2", explain=source.explain)

    assert warehouse.describe(tenant, None, "t").snapshots == snapshots_before
    assert data_files(warehouse) == files_before  # no orphan data files
    assert warehouse.read_all(tenant, None, "t").height == 2


def test_failed_first_import_leaves_no_table(tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id\n" + "".join(f"{i}\n" for i in range(20_000)) + "x\n")
    source = SourceFile(bad, detect_format(bad, "bad.csv"))
    with pytest.raises(DataConversionError, match="Row 20001, column 'id'"):
        warehouse.write_frame(tenant, None, "t", source.scan, job_id="j1", explain=source.explain)
    assert not warehouse.table_exists(tenant, None, "t")
    assert data_files(warehouse) == []


def test_cast_to_existing_table_type_names_the_bad_row(
    tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID
) -> None:
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"n": [1, 2]}), job_id="j1")
    incoming = pl.LazyFrame({"n": ["3", "4", "five"]})
    with pytest.raises(DataConversionError, match="Row 3, column 'n': value 'five' cannot be converted"):
        warehouse.write_frame(tenant, None, "t", lambda: incoming, job_id="j2")
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"n": ["3", "4"]}), job_id="j3")
    assert sorted(warehouse.read_all(tenant, None, "t")["n"].to_list()) == [1, 2, 3, 4]
    assert warehouse.describe(tenant, None, "t").columns[0].type == "long"


def test_append_adds_new_nullable_columns(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [1], "b": ["x"]}), job_id="j1")
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [2], "c": [True]}), job_id="j2")
    rows = warehouse.read_all(tenant, None, "t").sort("a").to_dicts()
    assert rows == [{"a": 1, "b": "x", "c": None}, {"a": 2, "b": None, "c": True}]


def test_append_of_an_incompatible_type_fails_clearly(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [dt.date(2024, 1, 1)]}), job_id="j1")
    with pytest.raises(SchemaMismatchError, match="column 'a' is Date in the table but Boolean in the input"):
        warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [True]}), job_id="j2")


def test_overwrite_replaces_rows_and_schema_in_one_commit(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [1, 2]}), job_id="j1")
    warehouse.write_frame(tenant, None, "t", pl.LazyFrame({"a": [3]}), job_id="j2", mode=WriteMode.OVERWRITE)
    assert warehouse.read_all(tenant, None, "t")["a"].to_list() == [3]
    warehouse.write_frame(
        tenant, None, "t", pl.LazyFrame({"a": [True]}), job_id="j3", mode=WriteMode.OVERWRITE
    )
    assert warehouse.read_all(tenant, None, "t").to_dicts() == [{"a": True}]
    assert warehouse.describe(tenant, None, "t").row_count == 1


def batches(rows: list[dict[str, object]], size: int = 2) -> pa.RecordBatchReader:
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    return pa.RecordBatchReader.from_batches(schema, (pa.RecordBatch.from_pylist(c, schema) for c in chunks))


def test_write_batches_append_overwrite_upsert(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    rows = [{"id": i, "name": f"n{i}"} for i in range(5)]
    r = warehouse.write_batches(tenant, "s", "users", batches(rows), job_id="a1")
    assert r.rows_written == 5
    warehouse.write_batches(tenant, "s", "users", batches(rows[:2]), job_id="a2")
    assert warehouse.describe(tenant, "s", "users").row_count == 7

    warehouse.write_batches(tenant, "s", "users", batches(rows), job_id="o1", mode=WriteMode.OVERWRITE)
    assert warehouse.describe(tenant, "s", "users").row_count == 5

    changes = [{"id": 1, "name": "first"}, {"id": 7, "name": "new"}, {"id": 1, "name": "latest"}]
    r = warehouse.write_batches(
        tenant, "s", "users", batches(changes), job_id="u1", mode=WriteMode.UPSERT, primary_key=["id"]
    )
    assert r.rows_written == 2
    got = warehouse.read_all(tenant, "s", "users").sort("id").to_dicts()
    assert got == [
        {"id": 0, "name": "n0"},
        {"id": 1, "name": "latest"},
        {"id": 2, "name": "n2"},
        {"id": 3, "name": "n3"},
        {"id": 4, "name": "n4"},
        {"id": 7, "name": "new"},
    ]
    again = warehouse.write_batches(
        tenant, "s", "users", batches(changes), job_id="u1", mode=WriteMode.UPSERT, primary_key=["id"]
    )
    assert again.already_applied
    assert warehouse.describe(tenant, "s", "users").row_count == 6


def test_upsert_on_a_composite_key_with_many_changed_rows(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    """Thousands of changed (region, id) keys: exact, and the delete filter stays shallow enough to evaluate."""
    schema = pa.schema([("region", pa.string()), ("id", pa.int64()), ("v", pa.int64())])

    def rows(items: list[tuple[str, int, int]]) -> pa.RecordBatchReader:
        table = pa.Table.from_pylist([{"region": r, "id": i, "v": v} for r, i, v in items], schema)
        return pa.RecordBatchReader.from_batches(schema, table.to_batches(max_chunksize=1000))

    regions = ["eu", "us", "ap"]
    first = [(r, i, 0) for r in regions for i in range(3000)]
    warehouse.write_batches(tenant, "s", "pairs", rows(first), job_id="c1")
    # every even id changes in every region (4,500 keys), and (eu, 5000) is new; ids 0..2999 repeat
    # across regions, so a filter on one column alone would delete rows it must keep
    changes = [(r, i, 1) for r in regions for i in range(0, 3000, 2)] + [("eu", 5000, 1)]
    result = warehouse.write_batches(
        tenant, "s", "pairs", rows(changes), job_id="c2", mode=WriteMode.UPSERT, primary_key=["region", "id"]
    )
    assert result.rows_written == len(changes)
    got = warehouse.read_all(tenant, "s", "pairs")
    assert got.height == len(first) + 1
    expected = {(r, i): (1 if i % 2 == 0 else 0) for r in regions for i in range(3000)} | {("eu", 5000): 1}
    assert {(r, i): v for r, i, v in got.iter_rows()} == expected


def test_upsert_matches_a_null_key_value_like_the_dedup_does(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    schema = pa.schema([("region", pa.string()), ("id", pa.int64()), ("v", pa.int64())])

    def rows(items: list[tuple[str | None, int | None, int]]) -> pa.RecordBatchReader:
        table = pa.Table.from_pylist([{"region": r, "id": i, "v": v} for r, i, v in items], schema)
        return pa.RecordBatchReader.from_batches(schema, table.to_batches())

    first = [(None, 1, 0), ("eu", None, 0), ("eu", 1, 0), (None, None, 0)]
    warehouse.write_batches(tenant, "s", "nulls", rows(first), job_id="n1")
    changes = [(None, 1, 1), ("eu", None, 1), (None, None, 1)]
    warehouse.write_batches(
        tenant, "s", "nulls", rows(changes), job_id="n2", mode=WriteMode.UPSERT, primary_key=["region", "id"]
    )
    got = {(r, i): v for r, i, v in warehouse.read_all(tenant, "s", "nulls").iter_rows()}
    assert got == {(None, 1): 1, ("eu", None): 1, ("eu", 1): 0, (None, None): 1}


def test_upsert_from_a_lazy_frame_keeps_the_last_row_of_a_repeated_key(
    tmp_path: Path, warehouse: Warehouse, tenant: uuid.UUID
) -> None:
    """A sync hands its staged records as a rescannable lazy frame: scanned for keys, streamed again."""
    warehouse.write_batches(
        tenant, "s", "lazy", batches([{"id": i, "name": f"n{i}"} for i in range(4)]), job_id="l1"
    )
    staged = tmp_path / "staged.parquet"
    pl.DataFrame(
        {"id": [1, 9, 1, 2, 9], "name": ["first", "x", "second", "two", "last"]},
        schema={"id": pl.Int64, "name": pl.String},
    ).write_parquet(staged)
    result = warehouse.write_batches(
        tenant,
        "s",
        "lazy",
        lambda: pl.scan_parquet(staged),
        job_id="l2",
        mode=WriteMode.UPSERT,
        primary_key=["id"],
    )
    assert result.rows_written == 3
    got = warehouse.read_all(tenant, "s", "lazy").sort("id").to_dicts()
    assert got == [
        {"id": 0, "name": "n0"},
        {"id": 1, "name": "second"},
        {"id": 2, "name": "two"},
        {"id": 3, "name": "n3"},
        {"id": 9, "name": "last"},
    ]


def test_tables_are_scoped_to_the_tenant(warehouse: Warehouse, tenant: uuid.UUID) -> None:
    other = uuid.uuid4()
    warehouse.write_frame(tenant, "raw", "a", pl.LazyFrame({"x": [1]}), job_id="j1")
    warehouse.write_frame(tenant, None, "b", pl.LazyFrame({"x": [1]}), job_id="j2")
    warehouse.write_frame(other, "raw", "a", pl.LazyFrame({"x": [1, 2]}), job_id="j3")

    assert [(r.schema, r.name) for r in warehouse.list_tables(tenant)] == [("default", "b"), ("raw", "a")]
    assert warehouse.describe(tenant, "raw", "a").row_count == 1
    namespace = tenant_namespace(tenant, "raw")
    assert tenant_of(namespace) == (tenant, "raw")
    assert tenant_of(("somebody_else",)) is None
    assert warehouse.head(other, "raw", "a", limit=1).num_rows == 1


@pytest.mark.parametrize("name", ["a.b", "../x", "", "1abc", "x" * 200, "tenant_x; drop"])
def test_unsafe_names_are_rejected(warehouse: Warehouse, tenant: uuid.UUID, name: str) -> None:
    from ingest.core.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        warehouse.ref(tenant, name, "t")
    with pytest.raises(InvalidRequestError):
        warehouse.ref(tenant, None, name)
