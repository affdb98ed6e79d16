"""Excel workbooks (xlsx, xls) -> polars via fastexcel (calamine); xlrd reads what calamine refuses."""

import re
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl

from ingest.core import decimals
from ingest.core.errors import InvalidRequestError
from ingest.core.types import TypeSpec
from ingest.formats.detect import FileFormat
from ingest.formats.dialect import ReadOptions

# An xlsx is a ZIP of XML: its declared uncompressed sizes tell a zip bomb before anything is inflated.
MAX_XLSX_UNCOMPRESSED_BYTES = 2 * 1024**3
MAX_XLSX_RATIO = 200
# numeric columns are typed from their first values, as fastexcel types the sheet
SAMPLE_ROWS = 1000
# a numeric column is an exact DECIMAL when its values have at most this many digits after the point
MAX_SPREADSHEET_SCALE = decimals.MAX_INFERRED_SCALE
_RATIO_MIN_BYTES = 16 * 1024**2  # small members compress extremely well and are harmless


def check_xlsx_archive(
    path: Path, *, max_uncompressed: int = MAX_XLSX_UNCOMPRESSED_BYTES, max_ratio: int = MAX_XLSX_RATIO
) -> None:
    """Reject an xlsx whose ZIP entries would inflate beyond the limits (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as e:
        raise InvalidRequestError(f"The xlsx file is a damaged ZIP archive: {e}") from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_MIN_BYTES and ratio > max_ratio:
            raise InvalidRequestError(
                f"The xlsx file is rejected: entry '{info.filename}' expands {ratio:.0f}x"
                f" (limit {max_ratio}x), which looks like a zip bomb"
            )
    if total > max_uncompressed:
        raise InvalidRequestError(
            f"The xlsx file is rejected: it expands to {total} bytes (limit {max_uncompressed})"
        )


def sheet_names(path: Path, fmt: FileFormat) -> list[str]:
    """The workbook's sheets in order."""
    if fmt is FileFormat.XLSX:
        check_xlsx_archive(path)
    try:
        return list(fastexcel.read_excel(path).sheet_names)
    except Exception as e:
        if fmt is FileFormat.XLS:
            return _xlrd_sheet_names(path, e)
        raise InvalidRequestError(f"The {fmt.value} file cannot be read: {e}") from None


def resolve_sheet(path: Path, fmt: FileFormat, sheet: str | int | None) -> str:
    """The name of the chosen sheet (the first when None); 400 naming the sheets when there is no such one."""
    names = sheet_names(path, fmt)
    if not names:
        raise InvalidRequestError("The workbook has no sheets")
    if sheet is None:
        return names[0]
    if isinstance(sheet, int):
        if sheet < len(names):
            return names[sheet]
        raise InvalidRequestError(
            f"readOptions.sheet {sheet} does not exist: the workbook has {len(names)} sheet(s)"
            f" (0-based indexes 0..{len(names) - 1})"
        )
    if sheet in names:
        return sheet
    shown = ", ".join(f"'{n}'" for n in names[:20])
    raise InvalidRequestError(
        f"readOptions.sheet '{sheet[:80]}' does not exist; the workbook's sheets: {shown}"
    )


def _sheet(path: Path, fmt: FileFormat, n_rows: int | None, options: ReadOptions) -> Any:
    if fmt is FileFormat.XLSX:
        check_xlsx_archive(path)
    reader = fastexcel.read_excel(path)
    if not reader.sheet_names:
        raise InvalidRequestError("The workbook has no sheets")
    skip = options.rows_to_skip
    return reader.load_sheet(
        options.sheet if options.sheet is not None else 0,
        header_row=skip if options.has_header else None,
        skip_rows=skip if not options.has_header and skip else None,
        n_rows=n_rows,
        schema_sample_rows=1000,
        dtype_coercion="coerce",
    )


def read_excel(
    path: Path,
    fmt: FileFormat,
    n_rows: int | None = None,
    keep: Collection[str] = (),
    options: ReadOptions | None = None,
) -> pl.DataFrame:
    """The chosen sheet (the first by default), the header on row skipRows+1 unless there is none (then the
    columns are column_1, column_2, ...); `n_rows` limits the data rows read.

    Numeric and date columns are narrowed to integers, exact decimals and dates; columns in `keep` do not
    become exact decimals (a type override converts them from the floats).
    """
    options = options or ReadOptions()
    try:
        sheet = _sheet(path, fmt, n_rows, options)
        df = pl.DataFrame(sheet.to_arrow())
    except InvalidRequestError:
        raise
    except Exception as e:
        if fmt is FileFormat.XLS:
            df = _read_xls_with_xlrd(path, n_rows, e, options)
        else:
            raise InvalidRequestError(f"The {fmt.value} file cannot be read: {e}") from None
    if not options.has_header:
        df = df.rename({name: f"column_{i}" for i, name in enumerate(df.columns, start=1)})
    return _narrow(df, keep)


def _narrow(df: pl.DataFrame, keep: Collection[str] = ()) -> pl.DataFrame:
    """Excel stores numbers as floats and dates as timestamps: narrow the columns that allow it."""
    casts: dict[str, pl.Expr] = {}
    for name, dtype in df.schema.items():
        column = df.get_column(name).drop_nulls()
        if column.len() == 0:
            continue
        if dtype.is_float() and column.is_finite().all() and (column == column.round(0)).all():
            if column.abs().max() < 2**53:  # type: ignore[operator]
                casts[name] = pl.col(name).cast(pl.Int64)
        elif dtype.is_float() and name not in keep:
            spec = spreadsheet_decimal(df.get_column(name).head(SAMPLE_ROWS))
            if spec is not None:
                casts[name] = _exact(df, name, spec)
        elif isinstance(dtype, pl.Datetime) and (column.dt.truncate("1d") == column).all():
            casts[name] = pl.col(name).cast(pl.Date)
    return df.with_columns(**casts) if casts else df


def spreadsheet_decimal(values: pl.Series) -> TypeSpec | None:
    """DECIMAL(p,s) for a numeric sheet column whose values read as short decimals, else None (a double).

    A cell holds a binary double. Its shortest decimal text (the digits that read back as the same
    double) is the cell's own text for anything typed or written with up to 15 significant digits, and
    is what the import stores. The column is an exact decimal when every sampled value's text has at
    most MAX_SPREADSHEET_SCALE digits after the point; computed values such as 1/3 or 0.1+0.2
    (0.30000000000000004) have more and keep the column a double.
    """
    return decimals.infer_from_floats(values, MAX_SPREADSHEET_SCALE)


def _exact(df: pl.DataFrame, name: str, spec: TypeSpec) -> pl.Expr:
    """The whole column as DECIMAL(p,s); a value past the sample that does not fit fails the read."""
    dtype = decimals.polars_dtype(spec)
    precision, scale = dtype.precision or 38, dtype.scale or 0
    converted = decimals.to_decimal(pl.col(name), pl.Float64(), precision, scale, strict=False)
    misfits = df.select(pl.col(name).is_not_null() & converted.is_null()).to_series()
    if misfits.any():
        row = int(misfits.arg_true()[0])
        value = str(df.get_column(name)[row])
        why = decimals.why_not_decimal(value, precision, scale)
        hint = decimals.OVERRIDE_HINT if "digits" in why else ""
        raise InvalidRequestError(f"Row {row + 1}, column '{name}': value '{value}' {why}{hint}")
    return converted


def count_excel_rows(path: Path, fmt: FileFormat, options: ReadOptions | None = None) -> int:
    """Data rows of the chosen sheet (the header excluded)."""
    options = options or ReadOptions()
    try:
        sheet = _sheet(path, fmt, 1, options)
        if options.has_header:
            return int(sheet.total_height)
        return max(0, int(sheet.total_height) - options.rows_to_skip)  # the skipped rows are counted
    except InvalidRequestError:
        raise
    except Exception as e:
        if fmt is FileFormat.XLS:
            return _read_xls_with_xlrd(path, None, e, options).height
        raise InvalidRequestError(f"The {fmt.value} file cannot be read: {e}") from None


def _xlrd_sheet_names(path: Path, first_error: Exception) -> list[str]:
    import xlrd

    try:
        return list(xlrd.open_workbook(str(path), on_demand=True).sheet_names())
    except Exception:
        raise InvalidRequestError(f"The xls file cannot be read: {first_error}") from None


def _read_xls_with_xlrd(
    path: Path, n_rows: int | None, first_error: Exception, options: ReadOptions
) -> pl.DataFrame:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
        chosen = options.sheet if options.sheet is not None else 0
        sheet = book.sheet_by_name(chosen) if isinstance(chosen, str) else book.sheet_by_index(chosen)
    except Exception:
        raise InvalidRequestError(f"The xls file cannot be read: {first_error}") from None
    first = options.rows_to_skip
    if sheet.nrows <= first:
        return pl.DataFrame()
    if options.has_header:
        header = [str(v) if v != "" else f"column_{i + 1}" for i, v in enumerate(sheet.row_values(first))]
        first += 1
    else:
        header = [f"column_{i + 1}" for i in range(sheet.ncols)]
    last = sheet.nrows if n_rows is None else min(sheet.nrows, n_rows + first)
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for r in range(first, last):
        for name, cell in zip(header, sheet.row(r), strict=False):
            value = cell.value
            if cell.ctype == xlrd.XL_CELL_DATE:
                value = xlrd.xldate.xldate_as_datetime(value, book.datemode)
            elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                value = None
            elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                value = bool(value)
            columns[name].append(value)
    return pl.DataFrame({k: pl.Series(k, v, strict=False) for k, v in columns.items()})


_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="[A-Z]+\d+:[A-Z]+(\d+)"')
_FIRST_SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?\br:id="([^"]+)"')


def xlsx_declared_rows(path: Path) -> int | None:
    """Data rows the first sheet declares in its `<dimension>` (read from the first KiB of its XML).

    For a progress percentage only: it costs no pass over the data, and None when the sheet declares none.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            workbook = archive.read("xl/workbook.xml")
            first = _FIRST_SHEET.search(workbook)
            rels = archive.read("xl/_rels/workbook.xml.rels")
            if first is None:
                return None
            target = re.search(rb'Id="' + re.escape(first.group(1)) + rb'"[^>]*Target="([^"]+)"', rels)
            target = target or re.search(
                rb'Target="([^"]+)"[^>]*Id="' + re.escape(first.group(1)) + rb'"', rels
            )
            if target is None:
                return None
            name = target.group(1).decode().lstrip("/")
            name = name if name.startswith("xl/") else f"xl/{name}"
            with archive.open(name) as sheet:
                head = sheet.read(4096)
    except (KeyError, OSError, zipfile.BadZipFile):
        return None
    found = _DIMENSION.search(head)
    return max(0, int(found.group(1)) - 1) if found else None
