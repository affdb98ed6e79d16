"""Rows set aside instead of failing a read: the checks of a lenient plan, a tee to a spill, the reasons.

`forgiving(lf, checks, collector)` keeps the rows whose checked columns all convert and hands every other
row (its number, its original cells, which checks failed) to the collector, in the same streaming pass:
the collector writes them to Parquet parts in a local directory about every `SPILL_ROWS` rows, so memory
holds at most one part of rejected rows, whatever the file's size. `rejects_frame` turns the parts into
the rows of a rejects table (one row per rejected source row), part by part.
"""

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
    text = str(value)
    return f"'{text}'" if len(text) <= MAX_SHOWN else f"'{text[: MAX_SHOWN - 3]}...'"


def _shown_expr(text: pl.Expr) -> pl.Expr:
    """`_shown` as an expression (the rejects table's reasons are built without a Python loop)."""
    cut = (
        pl.when(text.str.len_chars() > MAX_SHOWN)
        .then(text.str.slice(0, MAX_SHOWN - 3) + "...")
        .otherwise(text)
    )
    return pl.lit("'") + cut + pl.lit("'")


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


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return column if dtype == pl.String else column.cast(pl.String)


def _csv_cell(text: pl.Expr) -> pl.Expr:
    """A cell of a CSV line: quoted (quotes doubled) when it holds a comma, quote or line break."""
    quoted = pl.lit('"') + text.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(text.str.contains('[",\r\n]')).then(quoted).otherwise(text).fill_null("")


def _why_expr(value: pl.Expr, check: Check) -> pl.Expr:
    target = check.target
    if isinstance(target, pl.Decimal):
        precision, scale = target.precision or 38, target.scale or 0
        return value.map_elements(
            lambda v: decimals.why_not_decimal(v, precision, scale), return_dtype=pl.String, skip_nulls=True
        )
    return pl.lit(f"is not a valid {check.label}")


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
        frame = pl.read_parquet(part)
        schema = frame.schema
        flags = [pl.col(f"__ingest_bad_{i}") for i in range(len(checks))]
        texts = {c: _as_text(pl.col(c), schema[c]) for c in columns if not schema[c].is_nested()}
        none = pl.lit(None, dtype=pl.String)
        reasons = [
            pl.when(flag).then(
                pl.lit(f"column '{check.column}': value ")
                + _shown_expr(texts.get(check.column, none))
                + pl.lit(" ")
                + _why_expr(texts.get(check.column, none), check)
            )
            for flag, check in zip(flags, checks, strict=True)
        ]
        if as_csv:
            record = pl.concat_str([_csv_cell(texts[c]) for c in columns], separator=",")
        else:
            record = pl.struct([texts.get(c, pl.col(c)).alias(c) for c in columns]).struct.json_encode()
        rows = frame.sort(ROW).select(
            pl.lit(file_id).alias("file_id"),
            pl.lit(file_name).alias("file_name"),
            pl.col(ROW).cast(pl.Int64).alias("row_number"),
            pl.coalesce(
                [pl.when(f).then(pl.lit(c.column)) for f, c in zip(flags, checks, strict=True)]
            ).alias("column_name"),
            pl.coalesce(
                [pl.when(f).then(texts.get(c.column)) for f, c in zip(flags, checks, strict=True)]
            ).alias("value"),
            pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason"),
            record.alias("record"),
        )
        path = directory / f"rejects-{n:06d}.parquet"
        rows.cast(dict(REJECTS_SCHEMA.items())).write_parquet(path)
        yield path
