"""Rows set aside instead of failing a read: the checks of a lenient plan, a tee to a spill, the reasons.

`forgiving(lf, checks, collector)` keeps the rows whose checked columns all convert and hands every other
row (its number, its original cells, which checks failed) to the collector, in the same streaming pass:
the collector writes them to Parquet parts in a local directory about every `SPILL_ROWS` rows, so memory
holds at most one part of rejected rows, whatever the file's size. `rejects_frame` turns the parts into
the rows of a rejects table (one row per rejected source row), part by part.
"""

import csv
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from ingest.core import decimals

ROW = "__ingest_row"
_BAD = "__ingest_bad"
SPILL_ROWS = 10_000
MAX_SHOWN = 80

# the rejects table's columns, in order (README: "Rejected rows")
REJECTS_SCHEMA = pl.Schema(
    {
        "file_id": pl.String(),
        "file_name": pl.String(),
        "row_number": pl.Int64(),
        "column_name": pl.String(),
        "value": pl.String(),
        "reason": pl.String(),
        "record": pl.String(),
    }
)


@dataclass(frozen=True)
class Check:
    """A source column whose converted `value` must not be null where the original value is present."""

    column: str
    value: pl.Expr
    target: pl.DataType  # the type the value must convert to (for the reason)
    label: str  # that type as the API names it: INTEGER, DECIMAL(18,2), ...


@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    value: str | None
    reason: str

    def message(self) -> str:
        return f"Row {self.row}, column '{self.column}': {self.reason}"


def _present(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        return column.is_not_null() & column.str.strip_chars().str.len_bytes().gt(0)
    return column.is_not_null()


class RejectCollector:
    """Counts every row the plan reads and spills the rejected ones to `directory` (thread-safe)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rows_seen = 0
        self.rejected = 0
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self._parts = 0
        self._lock = threading.Lock()

    def tee(self, batch: pl.Series) -> pl.Series:
        """The plan's map_batches function: note the batch, spill its bad rows, answer which rows stay."""
        bad = batch.struct.field(_BAD)
        count = int(bad.sum())
        with self._lock:
            self.rows_seen += len(batch)
            if count:
                self.rejected += count
                self._pending.append(batch.filter(bad).struct.unnest().drop(_BAD))
                self._pending_rows += count
                if self._pending_rows >= SPILL_ROWS:
                    self._flush()
        return ~bad

    def _flush(self) -> None:
        if not self._pending:
            return
        self._parts += 1
        pl.concat(self._pending, how="vertical_relaxed").write_parquet(
            self.directory / f"part-{self._parts:06d}.parquet"
        )
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        with self._lock:
            self._flush()

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.parquet"))


def forgiving(lf: pl.LazyFrame, checks: list[Check], collector: RejectCollector) -> pl.LazyFrame:
    """`lf` with the checked columns converted and the rows that do not convert handed to `collector`."""
    schema = lf.collect_schema()
    columns = schema.names()
    values = {c.column: f"__ingest_value_{i}" for i, c in enumerate(checks)}
    flags = [f"__ingest_bad_{i}" for i in range(len(checks))]
    checks_cols = [c.value.alias(values[c.column]) for c in checks]
    lf = lf.with_row_index(ROW, offset=1).with_columns(checks_cols)
    lf = lf.with_columns(
        [
            (pl.col(values[c.column]).is_null() & _present(pl.col(c.column), schema[c.column])).alias(flag)
            for c, flag in zip(checks, flags, strict=True)
        ]
    )
    bad = pl.any_horizontal(flags) if flags else pl.lit(False)
    keep = (
        pl.struct([pl.col(ROW), *[pl.col(c) for c in columns], *[pl.col(f) for f in flags], bad.alias(_BAD)])
        .map_batches(collector.tee, return_dtype=pl.Boolean, is_elementwise=True)
        .alias("__ingest_keep")
    )
    lf = lf.with_columns(keep).filter(pl.col("__ingest_keep"))
    return lf.select([pl.col(values[n]).alias(n) if n in values else pl.col(n) for n in columns])


def _shown(value: Any) -> str:
    text = repr(str(value) if not isinstance(value, str) else value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _why(value: Any, check: Check) -> str:
    target = check.target
    if isinstance(target, pl.Decimal):
        return decimals.why_not_decimal(value, target.precision or 38, target.scale or 0)
    return f"is not a valid {check.label}"


def rejections(row: dict[str, Any], checks: list[Check]) -> list[Rejection]:
    """Why one spilled row was rejected: one entry per failing column."""
    found = []
    for i, check in enumerate(checks):
        if row.get(f"__ingest_bad_{i}"):
            value = row.get(check.column)
            text = None if value is None else str(value)
            found.append(
                Rejection(int(row[ROW]), check.column, text, f"value {_shown(value)} {_why(value, check)}")
            )
    return found


def first_rejections(collector: RejectCollector, checks: list[Check], limit: int) -> list[Rejection]:
    """The rejections of the first `limit` rejected rows, by row number (a top-k, not a full sort)."""
    parts = collector.parts()
    if not parts or limit <= 0:
        return []
    first = pl.scan_parquet(parts).sort(ROW).head(limit).collect()
    found: list[Rejection] = []
    for row in first.iter_rows(named=True):
        found.extend(rejections(row, checks))
    return found[:limit]


def _record(row: dict[str, Any], columns: list[str], as_csv: bool) -> str:
    if as_csv:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(["" if row[c] is None else str(row[c]) for c in columns])
        return out.getvalue()
    return json.dumps({c: row[c] for c in columns}, default=str, ensure_ascii=False)


def rejects_parts(
    collector: RejectCollector,
    checks: list[Check],
    columns: list[str],
    *,
    file_id: str,
    file_name: str,
    as_csv: bool,
    directory: Path,
) -> Iterator[Path]:
    """The rejects table's rows (REJECTS_SCHEMA), one Parquet part per spilled part, into `directory`."""
    for n, part in enumerate(collector.parts()):
        rows: dict[str, list[Any]] = {name: [] for name in REJECTS_SCHEMA.names()}
        for row in pl.read_parquet(part).sort(ROW).iter_rows(named=True):
            found = rejections(row, checks)
            first = found[0] if found else Rejection(int(row[ROW]), "", None, "rejected")
            rows["file_id"].append(file_id)
            rows["file_name"].append(file_name)
            rows["row_number"].append(first.row)
            rows["column_name"].append(first.column)
            rows["value"].append(first.value)
            rows["reason"].append("; ".join(f"column '{r.column}': {r.reason}" for r in found))
            rows["record"].append(_record(row, columns, as_csv))
        path = directory / f"rejects-{n:06d}.parquet"
        pl.DataFrame(rows, schema=REJECTS_SCHEMA).write_parquet(path)
        yield path
