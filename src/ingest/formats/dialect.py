"""How to read a file (read options): CSV dialect and encoding, the sheet of a workbook, a JSON records path.

Unset options are detected from the first bytes of the file (encoding, delimiter) or take their default;
`ReadOptions.resolve` gives the options a read actually uses, which the preview echoes. A CSV in another
encoding than UTF-8 is transcoded to a staged UTF-8 file in chunks (bounded memory) so that polars' native
reader, which reads UTF-8 only, scans it; a UTF-8 file is read in place, as fast as before.
"""

import codecs
import csv
import io
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ingest.core.errors import InvalidRequestError
from ingest.formats.detect import FileFormat

MAX_SKIP_ROWS = 10_000
MAX_RECORDS_PATH = 512
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_QUOTE = '"'
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 100
_TRANSCODE_CHUNK = 8 * 1024**2
_UTF8 = "utf-8"
_UTF8_SIG = "utf-8-sig"
_CSV_ONLY = ("delimiter", "quote_char", "encoding", "decimal_comma")
_ROWS_FORMATS = (FileFormat.CSV, FileFormat.XLSX, FileFormat.XLS)
_JSON_FORMATS = (FileFormat.JSON, FileFormat.JSONL)
_WIRE_NAMES = {
    "delimiter": "delimiter",
    "quote_char": "quoteChar",
    "encoding": "encoding",
    "header": "header",
    "skip_rows": "skipRows",
    "decimal_comma": "decimalComma",
    "sheet": "sheet",
    "records_path": "recordsPath",
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file; None is "detect" (encoding, delimiter) or "the default".

    csv: delimiter, quote_char ("" = no quoting), encoding (any Python text codec), header, skip_rows
    (lines before the header), decimal_comma (`1,50` is 1.50). xlsx/xls: sheet (name or 0-based index),
    header, skip_rows (rows above the header). json/jsonl: records_path (dotted keys to a list of objects).
    """

    delimiter: str | None = None
    quote_char: str | None = None
    encoding: str | None = None
    header: bool | None = None
    skip_rows: int | None = None
    decimal_comma: bool | None = None
    sheet: str | int | None = None
    records_path: str | None = None

    @classmethod
    def from_wire(cls, values: Mapping[str, Any]) -> "ReadOptions":
        """From the API's names (`skipRows`, ...); 400 naming an unknown one."""
        names = {wire: name for name, wire in _WIRE_NAMES.items()}
        unknown = sorted(k for k in values if k not in names)
        if unknown:
            raise InvalidRequestError(
                f"Unknown read option(s): {', '.join(unknown)} (known: {', '.join(sorted(names))})"
            )
        return cls(**{names[k]: v for k, v in values.items()})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "ReadOptions":
        return cls(**{k: v for k, v in (values or {}).items() if k in _WIRE_NAMES})

    def to_dict(self) -> dict[str, Any]:
        """The options that are set (stored as JSON on the file)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def has_header(self) -> bool:
        return self.header is not False

    @property
    def rows_to_skip(self) -> int:
        return self.skip_rows or 0

    def check(self, fmt: FileFormat) -> "ReadOptions":
        """The options normalized (encoding by its codec name); 400 for a bad one or one foreign to `fmt`."""
        given = self.to_dict()
        foreign = [
            name
            for name in given
            if (name in _CSV_ONLY and fmt is not FileFormat.CSV)
            or (name == "sheet" and fmt not in (FileFormat.XLSX, FileFormat.XLS))
            or (name in ("header", "skip_rows") and fmt not in _ROWS_FORMATS)
            or (name == "records_path" and fmt not in _JSON_FORMATS)
        ]
        if foreign:
            names = ", ".join(_WIRE_NAMES[n] for n in foreign)
            raise InvalidRequestError(f"readOptions {names} do not apply to a {fmt.value} file")
        options = self
        if self.delimiter is not None:
            _check_char("delimiter", self.delimiter, allow_empty=False)
            if self.delimiter in ('"', "\n", "\r"):
                raise InvalidRequestError("readOptions.delimiter cannot be a quote or a line break")
        if self.quote_char is not None:
            _check_char("quoteChar", self.quote_char, allow_empty=True)
            if self.quote_char and self.quote_char == self.delimiter:
                raise InvalidRequestError("readOptions.quoteChar and delimiter must differ")
        if self.encoding is not None:
            options = replace(options, encoding=codec_name(self.encoding))
        if self.skip_rows is not None and not 0 <= self.skip_rows <= MAX_SKIP_ROWS:
            raise InvalidRequestError(f"readOptions.skipRows must be between 0 and {MAX_SKIP_ROWS}")
        if self.decimal_comma and self.delimiter == ",":
            raise InvalidRequestError("readOptions.decimalComma needs a delimiter other than ','")
        if isinstance(self.sheet, int) and self.sheet < 0:
            raise InvalidRequestError("readOptions.sheet must be a sheet name or a 0-based index >= 0")
        if self.records_path is not None:
            keys = self.records_path.split(".")
            if len(self.records_path) > MAX_RECORDS_PATH or not all(keys):
                raise InvalidRequestError(
                    "readOptions.recordsPath must be object keys separated by dots, such as 'data.items'"
                )
        return options

    def wire(self) -> dict[str, Any]:
        """The set options under their API names (camelCase)."""
        return {_WIRE_NAMES[k]: v for k, v in self.to_dict().items()}


def _check_char(name: str, value: str, *, allow_empty: bool) -> None:
    if value == "" and allow_empty:
        return
    if len(value) != 1 or not value.isascii():
        raise InvalidRequestError(f"readOptions.{name} must be a single ASCII character, got {value[:10]!r}")


def codec_name(encoding: str) -> str:
    """The canonical name of a text encoding; 400 when Python knows no such text codec."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        info = None
    # bytes-to-bytes codecs (base64, zlib) and text transforms (rot13) are not encodings
    if info is None or not getattr(info, "_is_text_encoding", True) or info.name == "rot-13":
        raise InvalidRequestError(
            f"readOptions.encoding {encoding[:40]!r} is not a known text encoding"
            " (for example utf-8, utf-8-sig, cp1252, latin-1, utf-16-le, utf-16-be)"
        )
    return info.name


def not_encoded_as(encoding: str, offset: int) -> InvalidRequestError:
    return InvalidRequestError(
        f"The csv file is not valid {encoding} text: invalid byte at offset {offset};"
        " set readOptions.encoding to the file's encoding"
    )


def needs_transcoding(encoding: str) -> bool:
    return encoding not in (_UTF8, _UTF8_SIG)


# -- detection -------------------------------------------------------------------------------------------


def decode_head(head: bytes, encoding: str) -> str:
    """The sample as text (a character cut at its end dropped); 400 naming the offset of a bad byte."""
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError as e:
        raise not_encoded_as(encoding, e.start) from None
    return text.removeprefix("\ufeff")


def sniff_delimiter(text: str, quote_char: str, skip_rows: int) -> str:
    """The candidate delimiter that splits the sample's lines into the same number (>1) of fields most often.

    Ties go to the earlier of `, ; tab |`; a sample no candidate splits reads as one column with ','.
    """
    lines = text.splitlines(keepends=True)[skip_rows : skip_rows + _SNIFF_LINES + 1]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # probably cut by the sample's end
    best, best_score = ",", (0.0, 0)
    for candidate in DELIMITERS:
        try:
            rows = [
                r
                for r in csv.reader(
                    io.StringIO("".join(lines)),
                    delimiter=candidate,
                    quotechar=quote_char or None,
                    quoting=csv.QUOTE_MINIMAL if quote_char else csv.QUOTE_NONE,
                )
                if r
            ]
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        score = (sum(len(r) == width for r in rows) / len(rows), width)
        if score > best_score:
            best, best_score = candidate, score
    return best


def head_bytes(path: Path, size: int = _SNIFF_BYTES) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


# -- transcoding -----------------------------------------------------------------------------------------


class StagedText:
    """A UTF-8 copy of a text file in another encoding, written in chunks; `close` removes it."""

    def __init__(self, source: Path, encoding: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="ingest-utf8-"))
        self.path = self._dir / "utf8.csv"
        try:
            _transcode(source, self.path, encoding)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def _transcode(source: Path, target: Path, encoding: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    first = True
    with source.open("rb") as f, target.open("wb") as out:
        while True:
            chunk = f.read(_TRANSCODE_CHUNK)
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as e:
                raise not_encoded_as(encoding, offset + e.start) from None
            if first and text:
                text = text.removeprefix("\ufeff")
                first = False
            out.write(text.encode("utf-8"))
            if final:
                return
            offset += len(chunk)
