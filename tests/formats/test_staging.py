"""A sync run's staging: batches in, the same rows back through the bounded lazy scan and the batch reader."""

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from ingest.formats.staging import Stage


def _batch(start: int, rows: int) -> pa.RecordBatch:
    ids = list(range(start, start + rows))
    return pa.record_batch(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([None if i % 7 == 0 else f"{i}.25" for i in ids], pa.string()).cast(
                pa.decimal128(12, 2)
            ),
            "name": pa.array([f"row {i}" for i in ids]),
        }
    )


def _staged(tmp_path: Path, batches: int = 5, rows: int = 1000, chunk: int = 300) -> Stage:
    stage = Stage(tmp_path)
    stage.BATCH_ROWS = chunk  # the scan's chunk: whole row groups of at least this many rows
    for n in range(batches):
        stage.write("s", _batch(n * rows, rows))
    stage.close()
    return stage


@pytest.mark.parametrize("chunk", [300, 2500, 10_000])  # one, several (3+2) and all five row groups a chunk
def test_the_bounded_scan_returns_every_staged_row_exactly(tmp_path: Path, chunk: int) -> None:
    stage = _staged(tmp_path, chunk=chunk)
    frame = stage.frame("s", stage.schemas["s"])().collect()
    expected = pl.DataFrame(pl.from_arrow(pa.Table.from_batches([_batch(0, 5000)])))
    assert frame.schema == expected.schema
    assert frame.equals(expected)


def test_the_bounded_scan_honours_projection_predicate_and_row_limit(tmp_path: Path) -> None:
    stage = _staged(tmp_path, chunk=2500)
    scan = stage.frame("s", stage.schemas["s"])
    assert scan().select("name").collect().columns == ["name"]
    filtered = scan().filter(pl.col("id") % 1000 == 999).select("id").collect()
    assert filtered["id"].to_list() == [999, 1999, 2999, 3999, 4999]
    assert scan().head(450).collect().height == 450
    assert scan().filter(pl.col("id") >= 4990).head(3).collect()["id"].to_list() == [4990, 4991, 4992]
    assert scan().select(pl.len()).collect().item() == 5000
    # the bad-cast search of the writer: a predicate and a limit of one
    bad = scan().filter(pl.col("amount").is_null() & (pl.col("id") > 10)).head(1).collect()
    assert bad["id"].to_list() == [14]


def test_a_stream_that_staged_nothing_reads_back_empty_with_its_schema(tmp_path: Path) -> None:
    stage = Stage(tmp_path)
    schema = _batch(0, 1).schema
    empty = stage.frame("none", schema)().collect()
    assert empty.height == 0
    assert empty.columns == ["id", "amount", "name"]


def test_remove_deletes_the_staging(tmp_path: Path) -> None:
    stage = _staged(tmp_path)
    stage.remove()
    assert not stage.dir.exists()


def test_wide_rows_make_smaller_chunks_and_row_groups(tmp_path: Path) -> None:
    """Chunks and the table's row groups are bounded by bytes too: 64 MiB of 20 KB rows is ~3,300 rows."""
    from ingest.formats import staging

    stage = Stage(tmp_path)
    body = "x" * 20_000
    for n in range(8):  # 8 row groups of 1,000 rows, ~20 MB each
        stage.write(
            "mail", pa.record_batch({"id": list(range(n * 1000, n * 1000 + 1000)), "body": [body] * 1000})
        )
    stage.close()
    path = Path(stage.writers["mail"].where)
    chunks = list(staging._row_group_chunks(path, 65_536))
    assert [rows for _, rows in chunks] == [4000, 4000]  # each chunk stops once it holds >= 64 MiB
    assert 3000 < (stage.row_group_rows("mail") or 0) < 3400  # 64 MiB / ~20 KB per row
    assert stage.frame("mail", stage.schemas["mail"])().select(pl.len()).collect().item() == 8000
    assert stage.row_group_rows("none") is None
    (tmp_path / "narrow").mkdir()
    narrow = _staged(tmp_path / "narrow")
    assert narrow.row_group_rows("s") is None  # narrow rows: polars' own choice
