"""Avro object container files -> Arrow in bounded memory.

polars' `read_avro` is the fastest decoder (fastavro's dict path is ~10x slower) but it is eager,
so the container is split at block boundaries and each group of blocks, prefixed with the file
header, is decoded on its own: memory stays about `chunk_bytes` whatever the file size.
"""

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa

from ingest.core.errors import InvalidRequestError

_MAGIC = b"Obj\x01"
_SYNC_BYTES = 16
DEFAULT_CHUNK_BYTES = 32 * 1024**2


def _read_long(f: BinaryIO) -> int:
    shift = 0
    value = 0
    while True:
        byte = f.read(1)
        if not byte:
            raise EOFError
        b = byte[0]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise InvalidRequestError("The Avro file is damaged: a length field is too long")
    return (value >> 1) ^ -(value & 1)


def _skip_header(f: BinaryIO) -> bytes:
    """Read past the header; return its sync marker."""
    if f.read(4) != _MAGIC:
        raise InvalidRequestError("The file is not an Avro object container")
    while True:
        count = _read_long(f)
        if count == 0:
            break
        if count < 0:
            _read_long(f)  # byte size of the block
            count = -count
        for _ in range(count):
            f.seek(_read_long(f), io.SEEK_CUR)  # key
            f.seek(_read_long(f), io.SEEK_CUR)  # value
    sync = f.read(_SYNC_BYTES)
    if len(sync) != _SYNC_BYTES:
        raise InvalidRequestError("The Avro file is truncated inside its header")
    return sync


def _blocks(f: BinaryIO, size: int, sync: bytes) -> Iterator[tuple[int, int, int]]:
    """(start offset, end offset, record count) of each data block."""
    while True:
        start = f.tell()
        if start >= size:
            return
        try:
            count = _read_long(f)
            length = _read_long(f)
        except EOFError:
            raise InvalidRequestError(f"The Avro file is truncated at byte {start}") from None
        end = f.tell() + length + _SYNC_BYTES
        if count < 0 or length < 0 or end > size:
            raise InvalidRequestError(f"The Avro file is damaged: block at byte {start} runs past the end")
        f.seek(length, io.SEEK_CUR)
        if f.read(_SYNC_BYTES) != sync:
            raise InvalidRequestError(f"The Avro file is damaged: bad sync marker after byte {start}")
        yield start, end, count


def count_avro_rows(path: Path) -> int:
    """Records in the file, from the block headers only (nothing is decoded)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        sync = _skip_header(f)
        return sum(count for _, _, count in _blocks(f, size, sync))


def _decode(data: bytes) -> pl.DataFrame:
    try:
        return pl.read_avro(io.BytesIO(data))
    except Exception as e:
        raise InvalidRequestError(f"The Avro file cannot be decoded: {e}") from None


def avro_frames(path: Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[pl.DataFrame]:
    """Decode the file in groups of blocks of about `chunk_bytes`; at least one (maybe empty) frame."""
    size = path.stat().st_size
    with path.open("rb") as f:
        sync = _skip_header(f)
        header_end = f.tell()
        f.seek(0)
        header = f.read(header_end)
        pending_start = header_end
        pending_end = header_end
        emitted = False
        for start, end, _count in _blocks(f, size, sync):
            if end - pending_start > chunk_bytes and pending_end > pending_start:
                yield _decode(_read_range(f, header, pending_start, pending_end))
                emitted = True
                pending_start = start
            pending_end = end
        if pending_end > pending_start or not emitted:
            yield _decode(_read_range(f, header, pending_start, pending_end))


def _read_range(f: BinaryIO, header: bytes, start: int, end: int) -> bytes:
    resume = f.tell()  # the block scan goes on from here
    f.seek(start)
    data = f.read(end - start)
    f.seek(resume)
    return header + data


def avro_reader(path: Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> pa.RecordBatchReader:
    """A streaming Arrow reader over the file."""
    frames = avro_frames(path, chunk_bytes)
    first = next(frames).to_arrow()

    def batches() -> Iterator[pa.RecordBatch]:
        yield from first.to_batches()
        for frame in frames:
            yield from frame.to_arrow().cast(first.schema).to_batches()

    return pa.RecordBatchReader.from_batches(first.schema, batches())
