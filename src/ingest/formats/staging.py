"""A sync run's local staging: each stream's Arrow batches as one Parquet file while the source is read.

Nothing reaches Iceberg until the source has finished, so a run holds its records here; the commit then
reads them back as a lazy frame (appends, full refresh) or as record batches (upserts).
"""

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


class Stage:
    """Per-stream local Parquet files (LZ4, no dictionary) holding a run's records until the connector ends.

    Written for speed, not size: LZ4 without dictionary encoding costs about a fifth of the CPU of a zstd
    Parquet write, and the records are compressed properly once, by the commit. Parquet rather than Arrow
    IPC because polars' lazy scan of it streams in bounded memory (one row group per batch), where its IPC
    scan grew with the file (bench/databases_bench.py; README).
    """

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
        path = writer.where
        return lambda: pl.scan_parquet(path)

    def reader(self, stream: str, schema: pa.Schema) -> pa.RecordBatchReader:
        writer = self.writers.get(stream)
        if writer is None:
            return pa.RecordBatchReader.from_batches(schema, iter(()))
        path = writer.where
        staged_schema = self.schemas[stream]

        def batches() -> Iterator[pa.RecordBatch]:
            yield from pq.ParquetFile(path).iter_batches(batch_size=65_536)

        return pa.RecordBatchReader.from_batches(staged_schema, batches())

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)
