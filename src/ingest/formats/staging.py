"""A sync run's local staging: each stream's Arrow batches as one Parquet file while the source is read.

Nothing reaches Iceberg until the source has finished, so a run holds its records here; the commit then
reads them back as a lazy frame.

Reading back is bounded by design, because the commit's Parquet encoding (zstd) is slower than decoding
the LZ4 staging: polars' own `scan_parquet` of the whole file prefetches and decodes row groups ahead
of its Iceberg sink, and that backlog grew with the table (a standalone sink of 5M rows peaked at ~920
MB, of 1M at ~400 MB). The lazy frame here is a polars IO source that hands the sink one chunk of
whole row groups (at least `batch_rows` rows) at a time, each decoded by polars itself (`scan_parquet
(...).slice(...)` of exactly those row groups), so the sink's pace is the read's pace: ~380-400 MB at 5M
rows, and as fast as the plain scan or faster (1.4-2.0 s against 2.0-2.1 s; a pyarrow batch reader
feeding the same source was 2x slower: pyarrow -> polars conversion). bench/databases_bench.py; README.
"""

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from polars.io.plugins import register_io_source

CHUNK_BYTES = 64 * 1024**2  # uncompressed data a read-back chunk and a written row group aim at
MIN_GROUP_ROWS = 1024
WIDE_ROWS = 65_536  # fewer rows than this in CHUNK_BYTES (over 1 KiB a row): rows are wide


class Stage:
    """Per-stream local Parquet files (LZ4, no dictionary) holding a run's records until the connector ends.

    Written for speed, not size: LZ4 without dictionary encoding costs about a fifth of the CPU of a zstd
    Parquet write, and the records are compressed properly once, by the commit. Parquet rather than Arrow
    IPC because polars' lazy scan of it streams in bounded memory (one row group per batch), where its IPC
    scan grew with the file (bench/databases_bench.py; README).
    """

    BATCH_ROWS = 65_536

    def __init__(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sync-", dir=root))
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.schemas: dict[str, pa.Schema] = {}
        self.rows: dict[str, int] = {}

    def write(self, stream: str, batch: pa.RecordBatch) -> None:
        self.rows[stream] = self.rows.get(stream, 0) + batch.num_rows
        writer = self.writers.get(stream)
        if writer is None:
            self.schemas[stream] = batch.schema
            writer = pq.ParquetWriter(
                self.dir / f"{len(self.writers)}.parquet",
                batch.schema,
                compression="lz4",
                use_dictionary=False,
                write_statistics=False,
            )
            self.writers[stream] = writer
        writer.write_batch(batch)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def frame(self, stream: str, schema: pa.Schema) -> Callable[[], pl.LazyFrame]:
        """A rescannable lazy frame of the staged records (empty, with the stream's schema, if none came)."""
        writer = self.writers.get(stream)
        if writer is None:
            empty = pl.from_arrow(schema.empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy
        path = Path(writer.where)
        staged = pl.Schema(self.schemas[stream])
        return lambda: bounded_scan(path, staged, self.BATCH_ROWS)

    def row_group_rows(self, stream: str) -> int | None:
        """Rows per row group for the stream's table (None: narrow rows or nothing staged, the writer's
        default)."""
        writer = self.writers.get(stream)
        return row_group_rows(Path(writer.where)) if writer is not None else None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def bounded_scan(path: Path, schema: pl.Schema, batch_rows: int) -> pl.LazyFrame:
    """A lazy frame of a Parquet file read a chunk of row groups at a time, only as fast as the plan
    consumes it.

    Honours what polars pushes down (the projected columns, a predicate, a row limit), as its IO-source
    contract asks.
    """
    groups = list(_row_group_chunks(path, batch_rows))

    def source(
        with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, _hint: int | None
    ) -> Iterator[pl.DataFrame]:
        left = n_rows
        for offset, rows in groups:
            if with_columns == []:  # only a row count is wanted
                frame = pl.DataFrame(height=rows)
            else:
                lf = pl.scan_parquet(path).slice(offset, rows)
                if with_columns is not None:
                    lf = lf.select(with_columns)
                frame = lf.collect()
            if predicate is not None:
                frame = frame.filter(predicate)
            if left is not None:
                frame = frame.head(left)
                left -= frame.height
            yield frame
            if left is not None and left <= 0:
                return

    return register_io_source(source, schema=schema)


def _row_group_chunks(path: Path, batch_rows: int) -> Iterator[tuple[int, int]]:
    """(first row, row count) of consecutive runs of whole row groups, each of at least `batch_rows` rows or
    CHUNK_BYTES of data (wide rows: mail bodies, documents), whichever comes first."""
    metadata = pq.ParquetFile(path).metadata
    start = size = data = 0
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        size += group.num_rows
        data += group.total_byte_size
        if size >= batch_rows or data >= CHUNK_BYTES:
            yield start, size
            start, size, data = start + size, 0, 0
    if size:
        yield start, size


def row_group_rows(path: Path) -> int | None:
    """Rows per row group for the table's files when rows are wide, so that one holds about CHUNK_BYTES of
    data; None (polars' own choice: the chunks as they come) when that is more than WIDE_ROWS rows.

    Measured: polars' Iceberg sink coalesced 64 MiB chunks of 20 KB rows into one row group of a whole
    800 MB table (1.77 GB peak; 0.66 GB with ~3,300-row groups), while for narrow rows its own choice
    used less memory than any fixed size tried (1M `orders` rows: 347 MB against 313-376 MB).
    """
    metadata = pq.ParquetFile(path).metadata
    data: int = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    rows: int = metadata.num_rows
    fitting = CHUNK_BYTES // max(1, data // max(1, rows))
    return None if fitting >= WIDE_ROWS else max(MIN_GROUP_ROWS, fitting)
