"""Mailbox files -> message rows (`ingest.mail`) as Arrow batches, streamed: mbox, eml (one message or a
zip of .eml files) and pst.

Memory is bounded whatever the file's size: an mbox is read line by line (lines in pieces of at most
1 MiB) and cut at its "From " lines, one message at a time; a message over the size cap is hashed on the
fly and only its first MiB kept (its row has the headers only); rows go out in batches of at most
`BATCH_ROWS` rows or about `BATCH_BYTES` of text. (The standard library's `mailbox.mbox` first scans the
whole file to build a table of contents and then seeks back for every message; a single pass does the
same splitting.) A zip of .eml files is checked against zip bombs before anything is inflated (entry
count, total inflated size, inflation ratio) and every entry is read with a cap. PST files are read
with libpff (`pypff`, the libyal reader of the PST/OST format); a message, attachment or folder whose
node is damaged gives a row with `parse_error` instead of failing the file.
"""

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
import pyarrow as pa

from ingest.core.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError
from ingest.formats.detect import FileFormat
from ingest.mail import (
    DEFAULT_LIMITS,
    MESSAGE_SCHEMA,
    MailLimits,
    head_of,
    headers_only_row,
    parse_message,
    rows_to_batch,
)
from ingest.mail.message import decode_text, new_row

MAIL_FORMATS = frozenset({FileFormat.MBOX, FileFormat.EML, FileFormat.PST})

BATCH_ROWS = 1_000
# Parquet row groups of the import: polars' sink holds a whole row group in memory, and its default
# (sized for narrow rows) held all 100k messages of a 480 MB mbox at once (peak RSS 769 MB)
MAIL_ROW_GROUP_ROWS = 500
BATCH_BYTES = 32 * 1024**2
_LINE_LIMIT = 1024**2
_HEAD_BYTES = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_PST_MAGIC = b"!BDN"
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?")
_COPY_CHUNK = 1024**2

# zip of .eml files: what is refused before anything is inflated
MAX_ZIP_ENTRIES = 200_000
MAX_ZIP_INFLATED_BYTES = 32 * 1024**3
# text mail deflates 3-10x; a bomb is 100-1000x: over this ratio (for entries over 1 MiB) is refused
MAX_ZIP_RATIO = 100
_ZIP_RATIO_MIN_BYTES = 1024**2


def is_mail_format(fmt: FileFormat) -> bool:
    return fmt in MAIL_FORMATS


# -- upload checks ---------------------------------------------------------------------------------------


def check_mail_file(path: Path, fmt: FileFormat) -> None:
    """The file's content is the mail format its extension names; 415 when it is not, 400 when damaged."""
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head.strip():
        raise InvalidRequestError("The file is empty")
    if fmt is FileFormat.MBOX:
        if not head.startswith(b"From "):
            raise UnsupportedMediaError("The file is not an mbox: it must start with a 'From ' line")
        return
    if fmt is FileFormat.EML:
        if head.startswith(_ZIP_MAGIC):
            with _open_zip(path) as zf:
                if not _eml_entries(zf):
                    raise UnsupportedMediaError("The ZIP archive holds no .eml files")
            return
        if not _HEADER_LINE.match(head.lstrip(b"\r\n")) or b"\x00" in head:
            raise UnsupportedMediaError(
                "The file is not an email message (.eml): it does not start with headers"
            )
        return
    if not head.startswith(_PST_MAGIC):
        raise UnsupportedMediaError("The file is not an Outlook PST/OST file (no !BDN signature)")
    _open_pst(path).close()


# -- reading ---------------------------------------------------------------------------------------------


def iter_rows(path: Path, fmt: FileFormat, limits: MailLimits = DEFAULT_LIMITS) -> Iterator[dict[str, Any]]:
    """Message rows in file order."""
    if fmt is FileFormat.MBOX:
        yield from _mbox_rows(path, limits)
    elif fmt is FileFormat.EML:
        with path.open("rb") as f:
            zipped = f.read(4) == _ZIP_MAGIC
        if zipped:
            yield from _zip_rows(path, limits)
        else:
            yield _file_row(path, [], limits)
    else:
        yield from _pst_rows(path, limits)


def mail_reader(path: Path, fmt: FileFormat, limits: MailLimits = DEFAULT_LIMITS) -> pa.RecordBatchReader:
    """A streaming Arrow reader of the file's messages (MESSAGE_SCHEMA), for polars' scan."""
    return pa.RecordBatchReader.from_batches(MESSAGE_SCHEMA, _batches(iter_rows(path, fmt, limits)))


def mail_head(path: Path, fmt: FileFormat, n: int, limits: MailLimits = DEFAULT_LIMITS) -> pl.DataFrame:
    """The first `n` messages, reading no further."""
    frame = pl.from_arrow(rows_to_batch(islice(iter_rows(path, fmt, limits), n)))
    assert isinstance(frame, pl.DataFrame)
    return frame


def count_messages(path: Path, fmt: FileFormat) -> int:
    """Exact messages in the file, without parsing them (the same splitting as the reader)."""
    if fmt is FileFormat.MBOX:
        count = 0
        at_line_start = True
        with path.open("rb") as f:
            while line := f.readline(_LINE_LIMIT):
                if at_line_start and line.startswith(b"From "):
                    count += 1
                at_line_start = line.endswith(b"\n")
        return count
    if fmt is FileFormat.EML:
        with path.open("rb") as f:
            if f.read(4) != _ZIP_MAGIC:
                return 1
        with _open_zip(path) as zf:
            return len(_eml_entries(zf))
    return sum(1 for _ in _pst_messages(path))


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[pa.RecordBatch]:
    pending: list[dict[str, Any]] = []
    weight = 0
    for row in rows:
        pending.append(row)
        weight += sum(len(row[k] or "") for k in ("text_body", "html_body", "headers"))
        if len(pending) >= BATCH_ROWS or weight >= BATCH_BYTES:
            yield rows_to_batch(pending)
            pending, weight = [], 0
    if pending:
        yield rows_to_batch(pending)


# -- mbox ------------------------------------------------------------------------------------------------


class _Pending:
    """One mbox message being read: its lines until the next "From " line, or a hash past the cap."""

    def __init__(self, limits: MailLimits) -> None:
        self.limits = limits
        self.chunks: list[bytes] = []
        self.size = 0
        self.last: bytes | None = None  # held back: the empty line before "From " is the separator
        self.digest: Any = None  # hashlib sha256 once the message is over the cap
        self.head = b""

    def add(self, line: bytes) -> None:
        if self.last is not None:
            self._keep(self.last)
        self.last = line

    def _keep(self, data: bytes) -> None:
        self.size += len(data)
        if self.digest is not None:
            self.digest.update(data)
            return
        self.chunks.append(data)
        if self.size > self.limits.max_message_bytes:
            raw = b"".join(self.chunks)
            self.head = head_of(raw, self.limits.max_head_bytes)
            self.digest = hashlib.sha256(raw)
            self.chunks = []

    def row(self) -> dict[str, Any]:
        if self.last is not None and self.last not in (b"\n", b"\r\n"):
            self._keep(self.last)
        self.last = None
        if self.digest is not None:
            return headers_only_row(
                self.head,
                size=self.size,
                sha256=self.digest.hexdigest(),
                reason=f"the message is {self.size} bytes, over the {self.limits.max_message_bytes}-byte"
                " limit: only its headers were read",
                flags=_mbox_flags(self.head),
                limits=self.limits,
            )
        raw = b"".join(self.chunks)
        head = head_of(raw, _HEAD_BYTES)
        row = parse_message(raw, flags=_mbox_flags(head), limits=self.limits)
        if b"x-gmail-labels" in head.lower():
            row["folders"] = _gmail_labels(row)
        return row


def _mbox_rows(path: Path, limits: MailLimits) -> Iterator[dict[str, Any]]:
    current: _Pending | None = None
    at_line_start = True
    with path.open("rb") as f:
        while line := f.readline(_LINE_LIMIT):
            starts = at_line_start and line.startswith(b"From ")
            at_line_start = line.endswith(b"\n")
            if starts:
                if current is not None:
                    yield current.row()
                current = _Pending(limits)
            elif current is not None:
                current.add(line)
    if current is not None:
        yield current.row()


_STATUS = re.compile(rb"^(status|x-status|x-mozilla-status):[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def _mbox_flags(head: bytes) -> list[str]:
    """IMAP flags from the mbox status headers (mutt/pine Status and X-Status, Thunderbird's hex bits)."""
    flags: list[str] = []
    for name, value in _STATUS.findall(head):
        kind = name.lower()
        text = value.strip().decode("ascii", "replace")
        if kind == b"status" and "R" in text:
            flags.append("\\Seen")
        elif kind == b"x-status":
            for letter, flag in (
                ("A", "\\Answered"),
                ("F", "\\Flagged"),
                ("T", "\\Draft"),
                ("D", "\\Deleted"),
            ):
                if letter in text:
                    flags.append(flag)
        elif kind == b"x-mozilla-status":
            try:
                bits = int(text, 16)
            except ValueError:
                continue
            for bit, flag in ((0x1, "\\Seen"), (0x2, "\\Answered"), (0x4, "\\Flagged"), (0x8, "\\Deleted")):
                if bits & bit:
                    flags.append(flag)
    return list(dict.fromkeys(flags))


def _gmail_labels(row: dict[str, Any]) -> list[str]:
    """A Google Takeout mbox names each message's labels (its folders) in X-Gmail-Labels."""
    try:
        values = json.loads(row["headers"] or "{}").get("x-gmail-labels", [])
    except ValueError:
        return list(row["folders"])
    labels = [label.strip() for value in values for label in value.split(",")]
    return [label for label in labels if label]


# -- eml and zip of eml ----------------------------------------------------------------------------------


def _file_row(path: Path, folders: list[str], limits: MailLimits) -> dict[str, Any]:
    with path.open("rb") as f:
        return _stream_row(f, folders, limits)


def _stream_row(f: Any, folders: list[str], limits: MailLimits) -> dict[str, Any]:
    """One message from a file object: parsed when under the cap, else hashed on the fly (headers only)."""
    data = f.read(limits.max_message_bytes + 1)
    if len(data) <= limits.max_message_bytes:
        return parse_message(data, folders=folders, limits=limits)
    digest = hashlib.sha256(data)
    size = len(data)
    head = head_of(data, limits.max_head_bytes)
    del data
    while chunk := f.read(_COPY_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return headers_only_row(
        head,
        size=size,
        sha256=digest.hexdigest(),
        reason=f"the message is {size} bytes, over the {limits.max_message_bytes}-byte limit:"
        " only its headers were read",
        folders=folders,
        limits=limits,
    )


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidRequestError(f"The file is a damaged ZIP archive: {e}") from None


def _eml_entries(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's .eml entries, after the zip-bomb checks (central directory only, nothing inflated)."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise PayloadTooLargeError(f"The ZIP archive has {len(infos)} entries; at most {MAX_ZIP_ENTRIES}")
    entries = [
        info
        for info in infos
        if not info.is_dir()
        and info.filename.lower().endswith(".eml")
        and not info.filename.startswith("__MACOSX/")
    ]
    inflated = sum(info.file_size for info in entries)
    if inflated > MAX_ZIP_INFLATED_BYTES:
        raise PayloadTooLargeError(
            f"The ZIP archive's .eml files inflate to {inflated} bytes; at most {MAX_ZIP_INFLATED_BYTES}"
        )
    for info in entries:
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > _ZIP_RATIO_MIN_BYTES and ratio > MAX_ZIP_RATIO:
            raise InvalidRequestError(
                f"The ZIP entry '{info.filename[:200]}' inflates {ratio:.0f}x ({info.file_size} bytes):"
                f" over {MAX_ZIP_RATIO}x, refused as a zip bomb"
            )
    return entries


def _zip_rows(path: Path, limits: MailLimits) -> Iterator[dict[str, Any]]:
    with _open_zip(path) as zf:
        for info in _eml_entries(zf):
            parent = str(PurePosixPath(info.filename).parent)
            folders = [] if parent in (".", "") else [parent]
            if info.flag_bits & 0x1:
                row = new_row(info.file_size, None, folders, [])
                row["parse_error"] = f"the ZIP entry '{info.filename[:200]}' is encrypted: not read"
                yield row
                continue
            try:
                with zf.open(info) as f:
                    yield _stream_row(f, folders, limits)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as e:
                row = new_row(info.file_size, None, folders, [])
                row["parse_error"] = f"the ZIP entry '{info.filename[:200]}' cannot be read: {e}"
                yield row


# -- pst -------------------------------------------------------------------------------------------------

# MAPI property tags (MS-OXPROPS)
_PR_MESSAGE_CLASS = 0x001A
_PR_SUBJECT = 0x0037
_PR_SENDER_NAME = 0x0C1A
_PR_SENDER_EMAIL = 0x0C1F
_PR_SENDER_SMTP = 0x5D01
_PR_DISPLAY_TO = 0x0E04
_PR_MESSAGE_FLAGS = 0x0E07
_PR_MESSAGE_SIZE = 0x0E08
_PR_INTERNET_MESSAGE_ID = 0x1035
_PR_IN_REPLY_TO = 0x1042
_PR_REFERENCES = 0x1039
_PR_INTERNET_CPID = 0x3FDE
_PR_FLAG_STATUS = 0x1090
_PR_LAST_VERB = 0x1081
_PR_RECIPIENT_TYPE = 0x0C15
_PR_DISPLAY_NAME = 0x3001
_PR_EMAIL_ADDRESS = 0x3003
_PR_SMTP_ADDRESS = 0x39FE
_PR_ATTACH_FILENAME = 0x3704
_PR_ATTACH_LONG_FILENAME = 0x3707
_PR_ATTACH_MIME_TAG = 0x370E
_PR_ATTACH_METHOD = 0x3705
_PR_ATTACH_CONTENT_ID = 0x3712
_ATTACH_EMBEDDED_MSG = 5
_MSGFLAG_READ = 0x1
_MSGFLAG_UNSENT = 0x8
_CODEPAGES = {
    65001: "utf-8",
    20127: "ascii",
    1200: "utf-16-le",
    50220: "iso2022_jp",
    50221: "iso2022_jp_ext",
    50222: "iso2022_jp",
    51932: "euc_jp",
    936: "gbk",
    54936: "gb18030",
    950: "big5",
    20866: "koi8_r",
    21866: "koi8_u",
    **{28590 + n: f"iso8859_{n}" for n in range(1, 16)},
}
_RECIPIENT_COLUMNS = {1: "To", 2: "Cc", 3: "Bcc"}
# message classes that are mail: notes (and S/MIME, receipts...), delivery reports, meeting mail, posts
_MAIL_CLASSES = ("IPM.NOTE", "REPORT.", "IPM.SCHEDULE.MEETING", "IPM.POST")


def _open_pst(path: Path) -> Any:
    import pypff  # the libyal reader; imported here so the other formats never load it

    pst = pypff.file()
    try:
        pst.open(str(path))
    except (OSError, ValueError) as e:
        raise InvalidRequestError(f"The PST file is damaged and cannot be opened: {_first_line(e)}") from None
    return pst


def _pst_messages(path: Path) -> Iterator[tuple[str, Any, dict[int, Any], str | None]]:
    """(folder path, message, its properties, None) for each mail item, depth first; (path, None, {}, error)
    for an item or folder that cannot be read. Items that are not mail (contacts, appointments, tasks,
    notes, distribution lists) are not messages of the mailbox and are skipped.
    """
    import pypff

    pst = _open_pst(path)
    try:
        try:
            root = pst.get_root_folder()
        except OSError as e:
            raise InvalidRequestError(
                f"The PST file is damaged: its root folder cannot be read ({e})"
            ) from None
        stack: list[tuple[Any, str]] = [(root, "")]
        while stack:
            folder, folder_path = stack.pop()
            try:
                count = folder.get_number_of_sub_messages()
            except Exception as e:
                yield folder_path, None, {}, f"folder '{folder_path}' cannot be read: {_first_line(e)}"
                count = 0
            for i in range(count):
                try:
                    item = folder.get_sub_message(i)
                    if not isinstance(item, pypff.message):
                        continue
                    props = _props(item)
                except Exception as e:
                    where = f"message {i + 1} of folder '{folder_path}'"
                    yield folder_path, None, {}, f"{where} cannot be read: {_first_line(e)}"
                    continue
                if _is_mail(_string(props, _PR_MESSAGE_CLASS)):
                    yield folder_path, item, props, None
            try:
                subfolders = [folder.get_sub_folder(i) for i in range(folder.get_number_of_sub_folders())]
            except Exception as e:
                yield (
                    folder_path,
                    None,
                    {},
                    f"the subfolders of '{folder_path}' cannot be read: {_first_line(e)}",
                )
                subfolders = []
            for sub in reversed(subfolders):
                name = _safe_name(sub)
                stack.append((sub, f"{folder_path}/{name}" if folder_path else name))
    finally:
        pst.close()


def _is_mail(message_class: str | None) -> bool:
    if message_class is None:
        return True
    upper = message_class.upper()
    return upper.startswith(_MAIL_CLASSES)


def _pst_rows(path: Path, limits: MailLimits) -> Iterator[dict[str, Any]]:
    for folder_path, message, props, error in _pst_messages(path):
        folders = [folder_path] if folder_path else []
        if message is None:
            row = new_row(0, None, folders, [])
            row["parse_error"] = error
            yield row
            continue
        try:
            yield _pst_row(message, props, folders, limits)
        except Exception as e:  # libpff raises OSError for damaged nodes; anything else is the same loss
            row = new_row(0, None, folders, [])
            row["parse_error"] = f"a message of folder '{folder_path}' cannot be read: {_first_line(e)}"
            yield row


def _props(item: Any) -> dict[int, Any]:
    """The item's MAPI properties by tag (first record set; later ones are recipients or attachments)."""
    found: dict[int, Any] = {}
    for rs in range(item.get_number_of_record_sets()):
        record_set = item.get_record_set(rs)
        for ei in range(record_set.get_number_of_entries()):
            entry = record_set.get_entry(ei)
            found.setdefault(entry.get_entry_type(), entry)
        break
    return found


def _string(props: dict[int, Any], tag: int) -> str | None:
    entry = props.get(tag)
    if entry is None:
        return None
    try:
        value = entry.get_data_as_string()
    except (OSError, TypeError, ValueError):
        return None
    return str(value) if value else None


def _integer(props: dict[int, Any], tag: int) -> int | None:
    entry = props.get(tag)
    if entry is None:
        return None
    try:
        return int(entry.get_data_as_integer())
    except (OSError, TypeError, ValueError):
        return None


def _header_block(message: Any, props: dict[int, Any], problems: list[str]) -> bytes:
    """The message's header block: the transport headers it arrived with, else one built from MAPI."""
    try:
        transport = message.get_transport_headers()
    except OSError as e:
        problems.append(f"the transport headers cannot be read: {_first_line(e)}")
        transport = None
    if transport:
        kept = [
            line
            for line in re.split(r"\r?\n(?![ \t])", str(transport).strip())
            if not re.match(r"(?i)(content-type|content-transfer-encoding|mime-version):", line)
        ]
        return "\r\n".join(kept).encode("utf-8", "surrogateescape")
    # a draft or a message made in Outlook has no transport headers: build them from its properties
    lines: list[str] = []
    sender_name = _string(props, _PR_SENDER_NAME)
    sender = _string(props, _PR_SENDER_SMTP) or _string(props, _PR_SENDER_EMAIL)
    if sender or sender_name:
        lines.append(f"From: {_address(sender_name, sender)}")
    by_kind: dict[str, list[str]] = {}
    try:
        recipients = message.recipients
    except OSError:
        recipients = None
    if recipients is not None:
        for rs in range(recipients.get_number_of_record_sets()):
            record_set = recipients.get_record_set(rs)
            entries = {
                record_set.get_entry(i).get_entry_type(): record_set.get_entry(i)
                for i in range(record_set.get_number_of_entries())
            }
            kind = _RECIPIENT_COLUMNS.get(_integer(entries, _PR_RECIPIENT_TYPE) or 1, "To")
            address = _string(entries, _PR_SMTP_ADDRESS) or _string(entries, _PR_EMAIL_ADDRESS)
            by_kind.setdefault(kind, []).append(_address(_string(entries, _PR_DISPLAY_NAME), address))
    elif display_to := _string(props, _PR_DISPLAY_TO):
        by_kind["To"] = [name.strip() for name in display_to.split(";") if name.strip()]
    for kind in ("To", "Cc", "Bcc"):
        if by_kind.get(kind):
            lines.append(f"{kind}: {', '.join(by_kind[kind])}")
    subject = _string(props, _PR_SUBJECT)
    if subject:
        lines.append(f"Subject: {_one_line(_strip_subject_prefix(subject))}")
    when = _pst_date(message)
    if when:
        lines.append(f"Date: {when}")
    for tag, name in (
        (_PR_INTERNET_MESSAGE_ID, "Message-ID"),
        (_PR_IN_REPLY_TO, "In-Reply-To"),
        (_PR_REFERENCES, "References"),
    ):
        value = _string(props, tag)
        if value:
            lines.append(f"{name}: {_one_line(value)}")
    return "\r\n".join(lines).encode("utf-8")


def _address(name: str | None, address: str | None) -> str:
    name = _one_line(name or "").replace("\\", "").replace('"', "")
    if address and "@" not in address:
        address = None  # an Exchange DN (/o=.../cn=...) is not an address
    if address and name and name != address:
        return f'"{name}" <{_one_line(address)}>'
    if address:
        return _one_line(address)
    return f'"{name}" <>' if name else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _strip_subject_prefix(subject: str) -> str:
    # PR_SUBJECT may start with two control characters (the normalized-subject prefix length)
    return subject[2:] if subject[:1] == "\x01" else subject


def _pst_date(message: Any) -> str | None:
    from email.utils import format_datetime

    for getter in ("get_client_submit_time", "get_delivery_time", "get_creation_time"):
        try:
            when = getattr(message, getter)()
        except (OSError, ValueError):
            continue
        if when is not None:
            from datetime import UTC

            return format_datetime(when.replace(tzinfo=UTC))  # libpff gives FILETIMEs as naive UTC
    return None


def _pst_row(message: Any, props: dict[int, Any], folders: list[str], limits: MailLimits) -> dict[str, Any]:
    problems: list[str] = []
    block = _header_block(message, props, problems)
    row = parse_message(block + b"\r\n\r\n", folders=folders, limits=limits)
    if row["parse_error"]:
        problems.append(row["parse_error"])
    digest = hashlib.sha256(block)
    cpid = _integer(props, _PR_INTERNET_CPID)
    charset = _CODEPAGES.get(cpid or 0, f"cp{cpid}" if cpid else "utf-8")
    for column, getter, label, encoding in (
        ("text_body", "get_plain_text_body", "the plain text body", "utf-8"),
        ("html_body", "get_html_body", "the HTML body", charset),
    ):
        try:
            data = getattr(message, getter)()
        except OSError as e:
            problems.append(f"{label} cannot be read: {_first_line(e)}")
            data = None
        if not data:
            row[column] = None
            continue
        data = bytes(data)
        digest.update(data)
        text = decode_text(data, encoding, problems, label)
        if len(text) > limits.max_body_chars:
            text = text[: limits.max_body_chars]
            row["body_truncated"] = True
        row[column] = text
    row["attachments"] = []
    try:
        count = message.get_number_of_attachments()
    except OSError as e:
        problems.append(f"the attachments cannot be listed: {_first_line(e)}")
        count = 0
    for i in range(count):
        attachment = _pst_attachment(message, i, problems)
        if attachment["sha256"]:
            digest.update(attachment["sha256"].encode())
        row["attachments"].append(attachment)
    flags = _integer(props, _PR_MESSAGE_FLAGS) or 0
    row["flags"] = [
        flag
        for flag, on in (
            ("\\Seen", flags & _MSGFLAG_READ),
            ("\\Answered", _integer(props, _PR_LAST_VERB) in (102, 103)),
            ("\\Flagged", _integer(props, _PR_FLAG_STATUS) == 2),
            ("\\Draft", flags & _MSGFLAG_UNSENT),
        )
        if on
    ]
    row["size"] = _integer(props, _PR_MESSAGE_SIZE) or len(block)
    row["content_hash"] = digest.hexdigest()
    row["parse_error"] = "; ".join(dict.fromkeys(problems)) or None
    return row


def _pst_attachment(message: Any, index: int, problems: list[str]) -> dict[str, Any]:
    try:
        attachment = message.get_attachment(index)
        props = _props(attachment)
    except OSError as e:
        problems.append(f"attachment {index + 1} cannot be read: {_first_line(e)}")
        return {
            "name": None,
            "content_type": None,
            "disposition": None,
            "size": None,
            "sha256": None,
            "storage_key": None,
        }
    name = (
        _string(props, _PR_ATTACH_LONG_FILENAME)
        or _string(props, _PR_ATTACH_FILENAME)
        or _string(props, _PR_DISPLAY_NAME)
    )
    embedded = _integer(props, _PR_ATTACH_METHOD) == _ATTACH_EMBEDDED_MSG
    # an attached Outlook item is stored as a MAPI object, not as RFC 822 text: one opaque entry
    content_type = (
        "application/vnd.ms-outlook"
        if embedded
        else (_string(props, _PR_ATTACH_MIME_TAG) or "application/octet-stream")
    )
    digest = hashlib.sha256()
    size = 0
    try:
        total = attachment.get_size()
        attachment.seek_offset(0)
        while size < total:
            chunk = attachment.read_buffer(min(_COPY_CHUNK, total - size))
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    except OSError as e:
        problems.append(f"attachment {name or index + 1!r} cannot be read: {_first_line(e)}")
        return {
            "name": name,
            "content_type": content_type,
            "disposition": None,
            "size": None,
            "sha256": None,
            "storage_key": None,
        }
    disposition = "inline" if _string(props, _PR_ATTACH_CONTENT_ID) else "attachment"
    return {
        "name": name,
        "content_type": content_type,
        "disposition": disposition,
        "size": size,
        "sha256": digest.hexdigest(),
        "storage_key": None,
    }


def _safe_name(folder: Any) -> str:
    try:
        name = folder.get_name()
    except OSError:
        name = None
    return str(name).replace("/", "\u2215") if name else "(unnamed)"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
