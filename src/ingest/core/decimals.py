"""Exact decimals as polars expressions: infer DECIMAL(p,s) from text, convert without ever rounding.

polars' own casts to `Decimal(p, s)` truncate extra fraction digits silently (`"1.125"` -> `1.12`, even
with `strict=True`) and accept exponents. Every conversion to an exact decimal therefore goes through
`to_decimal`: the value's text must fit the column (at most p-s digits before the point, at most s after
it, trailing zeros past s allowed since they change nothing); a value that does not fit is null
(`strict=False`, to find it) or fails the query (`strict=True`), never rounded.
"""

import decimal

import polars as pl

from ingest.core.types import MAX_DECIMAL_PRECISION, TypeSpec

# A decimal inferred from data gets at least this precision, so later rows with bigger amounts than the
# sampled ones still fit; 18 digits is also the widest decimal Parquet stores in 8 bytes.
MIN_INFERRED_PRECISION = 18

# An inferred decimal has at most this many digits after the point. More is what a program writes for a
# binary double (0.47000000000000003, 0.3333333333333333), not an amount: such a column stays a double,
# which is also what a later row of it, with yet more digits, needs.
MAX_INFERRED_SCALE = 8

# plain notation only: no exponent, no thousands separators, ASCII digits
PLAIN_DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"
_INTEGER_DIGITS = r"^[+-]?0*([0-9]*)"
_FRACTION_DIGITS = r"\.([0-9]*)$"
_INT64_DIGITS = 18  # every Int64 of up to 18 digits fits; 19 digits may not


def inferred_spec(integer_digits: int, scale: int) -> TypeSpec | None:
    """DECIMAL(p,s) for data needing `integer_digits` before the point and `scale` after it; None past 38."""
    needed = max(integer_digits, 0) + scale
    if needed > MAX_DECIMAL_PRECISION:
        return None
    return TypeSpec.decimal(max(MIN_INFERRED_PRECISION, needed, 1), scale)


def infer_from_text(values: pl.Series, max_scale: int = MAX_INFERRED_SCALE) -> TypeSpec | None:
    """DECIMAL(p,s) when every non-blank value is a plain decimal number; None otherwise (or all blank).

    The scale is the most digits after the point among the values (trailing zeros count: `150.00` is
    money with two places), None past `max_scale`; the precision the digits needed, at least
    MIN_INFERRED_PRECISION.
    """
    text = values.cast(pl.String).str.strip_chars()
    text = text.filter(text.is_not_null() & (text.str.len_bytes() > 0))
    if text.len() == 0 or not text.str.contains(PLAIN_DECIMAL).all():
        return None
    integer_digits = text.str.extract(_INTEGER_DIGITS, 1).str.len_chars().max()
    scale = int(text.str.extract(_FRACTION_DIGITS, 1).str.len_chars().fill_null(0).max() or 0)  # type: ignore[arg-type]
    if scale > max_scale:
        return None
    return inferred_spec(int(integer_digits or 0), scale)  # type: ignore[arg-type]


def infer_from_floats(values: pl.Series, max_scale: int = MAX_INFERRED_SCALE) -> TypeSpec | None:
    """A float column read as the shortest decimal text of each value (what a spreadsheet shows)."""
    finite = values.drop_nulls()
    if finite.len() == 0 or not finite.is_finite().all():
        return None
    return infer_from_text(finite.cast(pl.String), max_scale)


def polars_dtype(spec: TypeSpec) -> pl.Decimal:
    """The polars type of an exact DECIMAL(p,s)."""
    if spec.precision is None or spec.scale is None:
        raise ValueError(f"{spec} is not an exact decimal")
    return pl.Decimal(spec.precision, spec.scale)


def fit_pattern(precision: int, scale: int) -> str:
    """Text that DECIMAL(precision, scale) holds exactly (blank or sign-only text matches too)."""
    integer = f"0*[0-9]{{0,{precision - scale}}}" if precision > scale else "0*"
    fraction = f"(?:\\.[0-9]{{0,{scale}}}0*)?" if scale else r"(?:\.0*)?"
    return f"^[+-]?{integer}{fraction}$"


def text_to_decimal(text: pl.Expr, precision: int, scale: int, *, strict: bool) -> pl.Expr:
    """Text -> Decimal(p, s): blank is null; a value that does not fit is null or (strict) an error."""
    stripped = text.str.strip_chars()
    fits = stripped.str.contains(fit_pattern(precision, scale))
    value = (
        pl.when(stripped.is_null() | (stripped.str.len_bytes() == 0))
        .then(pl.lit(None, dtype=pl.String))
        .when(fits)
        .then(stripped)
        # a text no decimal cast accepts: the strict cast below fails on it, the lenient one gives null
        .otherwise(pl.lit("not a decimal"))
    )
    return value.cast(pl.Decimal(precision, scale), strict=strict)


def to_decimal(column: pl.Expr, source: pl.DataType, precision: int, scale: int, *, strict: bool) -> pl.Expr:
    """Any column -> Decimal(p, s) without rounding; floats go by their shortest decimal text."""
    target = pl.Decimal(precision, scale)
    if isinstance(source, pl.Decimal):
        src_scale = source.scale or 0
        src_precision = source.precision or MAX_DECIMAL_PRECISION
        if src_scale <= scale and src_precision - src_scale <= precision - scale:
            return column.cast(target)  # a widening: every value fits
    if source.is_integer() and precision - scale >= _INT64_DIGITS + 1:
        return column.cast(target)
    if source == pl.Null:
        return column.cast(target)
    text = column if source == pl.String else column.cast(pl.String)
    return text_to_decimal(text, precision, scale, strict=strict)


OVERRIDE_HINT = "; set a wider DECIMAL(precision,scale) for the column in columnTypes"


def why_not_decimal(value: object, precision: int, scale: int) -> str:
    """Why a value does not go into DECIMAL(precision, scale), for an error message."""
    label = f"DECIMAL({precision},{scale})"
    text = str(value).strip()
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return f"is not a decimal number ({label} expected)"
    if not number.is_finite():
        return f"is not a finite number ({label} expected)"
    _sign, digits, exponent = number.normalize().as_tuple()
    assert isinstance(exponent, int)
    after = max(0, -exponent)
    before = max(0, len(digits) + exponent) if number != 0 else 0
    if after > scale:
        return f"has {after} digits after the decimal point but {label} holds {scale} (never rounded)"
    if before > precision - scale:
        return f"has {before} digits before the decimal point but {label} holds {precision - scale}"
    return f"is not written as a plain decimal number ({label} expected)"
