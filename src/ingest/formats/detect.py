"""Format detection: the extension and the content (magic bytes) must agree."""

import codecs
import json
import zipfile
from enum import StrEnum
from pathlib import Path, PurePosixPath

from ingest.core.errors import InvalidRequestError, UnsupportedMediaError


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"
    PARQUET = "parquet"
    JSON = "json"
    JSONL = "jsonl"
    AVRO = "avro"
    MBOX = "mbox"
    EML = "eml"  # one message, or a zip of .eml files
    PST = "pst"


SUPPORTED_FORMATS: tuple[FileFormat, ...] = tuple(FileFormat)

_EXTENSIONS: dict[str, FileFormat] = {
    ".csv": FileFormat.CSV,
    ".xlsx": FileFormat.XLSX,
    ".xls": FileFormat.XLS,
    ".parquet": FileFormat.PARQUET,
    ".json": FileFormat.JSON,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".avro": FileFormat.AVRO,
    ".mbox": FileFormat.MBOX,
    ".mbx": FileFormat.MBOX,
    ".eml": FileFormat.EML,
    ".zip": FileFormat.EML,
    ".pst": FileFormat.PST,
    ".ost": FileFormat.PST,
}

_HEAD_BYTES = 64 * 1024
_OLE2_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_UTF8 = "utf-8"
_UTF8_SIG = "utf-8-sig"
_BOMS = (
    (codecs.BOM_UTF8, _UTF8_SIG),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# A file this small cannot hold a header and a row in any supported format.
_MIN_BYTES = 2


def format_from_name(file_name: str) -> FileFormat:
    """The format named by the file's extension; 415 when unsupported."""
    suffix = PurePosixPath(file_name.replace("\\", "/")).suffix.lower()
    fmt = _EXTENSIONS.get(suffix)
    if fmt is None:
        supported = ", ".join(f.value for f in SUPPORTED_FORMATS)
        raise UnsupportedMediaError(
            f"Unsupported file extension '{suffix or '(none)'}'; supported: {supported}"
        )
    return fmt


def _content_candidates(path: Path) -> set[FileFormat]:
    """The formats the bytes could be; raises when the content is empty, unknown or not UTF-8 text."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidRequestError("The file is empty")
    if size < _MIN_BYTES:
        raise InvalidRequestError(f"The file is too small to hold any data ({size} byte)")
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
        f.seek(max(0, size - 4))
        tail = f.read(4)
    if head.startswith(b"PAR1"):
        if size < 12 or tail != b"PAR1":
            raise InvalidRequestError("The Parquet file is truncated: its footer magic bytes are missing")
        return {FileFormat.PARQUET}
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as e:
            raise InvalidRequestError(f"The file is a damaged ZIP archive: {e}") from None
        if any(name.startswith("xl/") for name in names):
            return {FileFormat.XLSX}
        raise UnsupportedMediaError("The file is a ZIP archive but not an Excel workbook (no xl/ entries)")
    if head.startswith(_OLE2_MAGIC):
        return {FileFormat.XLS}
    if head.startswith(b"Obj\x01"):
        return {FileFormat.AVRO}
    return _text_candidates(head, complete=size <= _HEAD_BYTES)


def _text_candidates(head: bytes, *, complete: bool) -> set[FileFormat]:
    encoding = detect_encoding(head, complete=complete)
    text = head.decode(encoding, errors="ignore").removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise InvalidRequestError("The file holds only whitespace")
    if stripped.startswith(("[", "{")) and encoding not in (_UTF8, _UTF8_SIG):
        # polars reads JSON as UTF-8 only, as RFC 8259 asks of JSON exchanged between systems
        raise InvalidRequestError(f"The JSON file is {encoding} text, not UTF-8; save it as UTF-8")
    if stripped.startswith("["):
        return {FileFormat.JSON}
    if stripped.startswith("{"):
        first_line = stripped.split("\n", 1)[0].strip()
        try:
            parsed = json.loads(first_line)
        except ValueError:
            return {FileFormat.JSON}
        except RecursionError:
            raise InvalidRequestError("The JSON is nested too deeply") from None
        if isinstance(parsed, dict):
            return {FileFormat.JSONL, FileFormat.JSON}
        return {FileFormat.JSON}
    return {FileFormat.CSV}


def detect_encoding(head: bytes, *, complete: bool) -> str:
    """The encoding of a text file's first bytes: a BOM, else UTF-16 by its zero bytes, else UTF-8, else
    cp1252 (Windows' Western default, a superset of latin-1's printable characters), else latin-1.

    Raises UnsupportedMediaError for bytes that are no text.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if b"\x00" in head:
        found = _utf16_without_bom(head)
        if found is None:
            raise UnsupportedMediaError("The file content is binary and matches no supported format")
        return found
    for name in (_UTF8, "cp1252"):
        try:
            # final=complete: a multi-byte character cut at the end of the sample is not an error.
            codecs.getincrementaldecoder(name)().decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        return name
    return "iso8859-1"


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text of mostly Latin characters has a zero in every other byte, on one side only."""
    sample = head[: len(head) - len(head) % 2]
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    half = len(sample) // 2
    for name, zeros, others in (("utf-16-le", odd_zeros, even_zeros), ("utf-16-be", even_zeros, odd_zeros)):
        if others == 0 and zeros >= half * 0.3:
            try:
                codecs.getincrementaldecoder(name)().decode(sample, final=False)
            except UnicodeDecodeError:
                return None
            return name
    return None


def detect_format(path: Path, file_name: str) -> FileFormat:
    """The file's format when its extension and its content agree.

    Raises UnsupportedMediaError (415) for an unknown or mismatching format and
    InvalidRequestError (400) for an empty, too small or damaged file, or JSON that is not UTF-8. A CSV
    may be in any encoding (see `detect_encoding`).
    """
    declared = format_from_name(file_name)
    if declared in (FileFormat.MBOX, FileFormat.EML, FileFormat.PST):
        from ingest.formats.mail import check_mail_file  # mail imports this module

        check_mail_file(path, declared)
        return declared
    candidates = _content_candidates(path)
    if declared in candidates:
        return declared
    found = "/".join(sorted(c.value for c in candidates))
    raise UnsupportedMediaError(
        f"The file content looks like {found} but its extension says {declared.value}"
    )
