"""One RFC 5322 / MIME message -> one message row (see `ingest.mail`). Never raises on broken input.

Parsed by the standard library's `email` package: its feed parser splits the MIME structure and decodes
quoted-printable and base64; header values are decoded here from their raw text with the package's own
helpers (`decode_header` for RFC 2047 words, `getaddresses`, `parsedate_to_datetime`, RFC 2231 file
names), one header at a time, so one malformed header costs that header only, never the message.
The structure is parsed with policy.compat32: policy.default parses every header through its header
registry as soon as it is touched, which measured 7x slower per message (45 against ~320 messages/s
for a 3 KB message) for the same decoded values.
"""

import binascii
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

# store_attachment(name, content_type, data) -> storage key (None: not stored). Its exceptions propagate:
# a storage failure is the caller's to handle (retry, fail the job), not a property of the message.
StoreAttachment = Callable[[str | None, str, bytes], str | None]


@dataclass(frozen=True)
class MailLimits:
    """Caps that bound the memory and the row size of one message, whatever the input."""

    # a bigger message is not parsed: its row has the headers only, and parse_error says why
    max_message_bytes: int = 100 * 1024**2
    # text_body and html_body are each cut at this many characters (body_truncated is then true)
    max_body_chars: int = 1_000_000
    # the headers column stops at this many characters of values (parse_error says so)
    max_header_chars: int = 1_000_000
    # message/rfc822 parts are followed this deep; deeper ones are kept as one opaque attachment
    max_depth: int = 8
    # MIME parts looked at per message (nested messages included)
    max_parts: int = 2_000
    # the header block read for a message that is not parsed (oversize), from its first bytes
    max_head_bytes: int = 1024**2


DEFAULT_LIMITS = MailLimits()

_PARSER = BytesParser(policy=policy.compat32)
_ID = re.compile(r"<([^<>]*)>")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]")
_B64_CHUNK_CHARS = 4 * 1024**2
_BODY_TYPES = ("text/plain", "text/html")
_ADDRESS_COLUMNS = {"from": "from", "to": "to", "cc": "cc", "bcc": "bcc", "reply-to": "reply_to"}
_MAX_PROBLEM_CHARS = 300


def content_hash(raw: bytes) -> str:
    """The sha256 (hex) of a message's raw bytes: with message_id, the dedupe key of a message."""
    return hashlib.sha256(raw).hexdigest()


def parse_message(
    raw: bytes,
    *,
    folders: Iterable[str] = (),
    flags: Iterable[str] = (),
    store_attachment: StoreAttachment | None = None,
    limits: MailLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """The message row of `raw`; what cannot be decoded is described in `parse_error`, never raised."""
    digest = content_hash(raw)
    if len(raw) > limits.max_message_bytes:
        return headers_only_row(
            head_of(raw, limits.max_head_bytes),
            size=len(raw),
            sha256=digest,
            reason=f"the message is {len(raw)} bytes, over the {limits.max_message_bytes}-byte limit:"
            " only its headers were read",
            folders=folders,
            flags=flags,
            limits=limits,
        )
    row = new_row(len(raw), digest, folders, flags)
    problems: list[str] = []
    try:
        msg = _PARSER.parsebytes(raw)
    except Exception as e:  # the feed parser is lenient; this is for its bugs (RecursionError, ...)
        problems.append(f"the message cannot be parsed ({_describe(e)})")
        row["parse_error"] = _join(problems)
        return row
    _guard(problems, "headers", lambda: _fill_headers(row, msg, problems, limits))
    _guard(problems, "the MIME structure", lambda: _fill_parts(row, msg, problems, store_attachment, limits))
    for defect in _defects(msg):
        problems.append(defect)
    row["parse_error"] = _join(problems)
    return row


def headers_only_row(
    head: bytes,
    *,
    size: int,
    sha256: str,
    reason: str,
    folders: Iterable[str] = (),
    flags: Iterable[str] = (),
    limits: MailLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """The row of a message that is not parsed whole (too big): headers from `head`, `reason` as the error.

    For readers that stream a huge message to its hash without holding it: they pass its first bytes.
    """
    row = new_row(size, sha256, folders, flags)
    problems = [reason]
    try:
        msg = _PARSER.parsebytes(head.rstrip(b"\r\n") + b"\r\n\r\n", headersonly=True)
        _fill_headers(row, msg, problems, limits)
    except Exception as e:
        problems.append(f"the headers cannot be parsed ({_describe(e)})")
    row["parse_error"] = _join(problems)
    return row


def head_of(raw: bytes, limit: int) -> bytes:
    """The header block of a raw message (up to the first empty line), at most `limit` bytes."""
    window = raw[:limit]
    match = re.search(rb"\r?\n\r?\n", window)
    return window[: match.start()] if match else window


def new_row(size: int, sha256: str | None, folders: Iterable[str], flags: Iterable[str]) -> dict[str, Any]:
    return {
        "message_id": None,
        "thread_id": None,
        "folders": list(folders),
        "from": [],
        "to": [],
        "cc": [],
        "bcc": [],
        "reply_to": [],
        "subject": None,
        "date": None,
        "size": size,
        "flags": list(flags),
        "text_body": None,
        "html_body": None,
        "body_truncated": False,
        "headers": None,
        "attachments": [],
        "content_hash": sha256,
        "parse_error": None,
    }


# -- headers ---------------------------------------------------------------------------------------------


def _fill_headers(row: dict[str, Any], msg: Message, problems: list[str], limits: MailLimits) -> None:
    headers: dict[str, list[str]] = {}
    used = 0
    omitted = 0
    for name, raw_value in msg.raw_items():
        key = safe_text(str(name)).strip().lower()
        value = _unfold(str(raw_value))
        text = decode_words(value, problems, key)
        if used + len(text) > limits.max_header_chars:
            omitted += 1
        else:
            used += len(text) + len(key)
            headers.setdefault(key, []).append(text)
        if key in _ADDRESS_COLUMNS:
            row[_ADDRESS_COLUMNS[key]].extend(_addresses(value, problems, key))
        elif key == "subject" and row["subject"] is None:
            row["subject"] = text
        elif key == "date" and row["date"] is None:
            row["date"] = _date(value, problems)
        elif key == "message-id" and row["message_id"] is None:
            row["message_id"] = _first_id(value)
    if omitted:
        problems.append(
            f"{omitted} header value(s) past {limits.max_header_chars} characters left out of headers"
        )
    row["headers"] = json.dumps(headers, ensure_ascii=False)
    row["thread_id"] = thread_root(headers) or row["message_id"]


def thread_root(headers: dict[str, list[str]]) -> str | None:
    """The thread's root message id: the first of References, else In-Reply-To; None when neither has one."""
    for name in ("references", "in-reply-to"):
        for value in headers.get(name, []):
            found = _first_id(value)
            if found:
                return found
    return None


def _first_id(value: str) -> str | None:
    """The first `<id>` of a header value, whitespace removed; a bare token when there are no brackets."""
    match = _ID.search(value)
    if match:
        inner = "".join(match.group(1).split())
        return f"<{inner}>" if inner else None
    token = value.strip().split()
    return token[0] if token else None


def decode_words(value: str, problems: list[str], label: str) -> str:
    """A header value with its RFC 2047 encoded words decoded (any charset; unknown ones as UTF-8).

    Adjacent words of one charset are joined as bytes before decoding (encoders split multi-byte
    characters across words); the whitespace between two encoded words is dropped, as the RFC says.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = b""
    pending_charset = ""
    last_end = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[last_end : match.start()]
        charset = match.group(1).split("*", 1)[0].lower()
        if pending and (between.strip() or charset != pending_charset):
            out.append(decode_text(pending, pending_charset, problems, f"header '{label[:60]}'"))
            pending = b""
        if not pending and (between.strip() or not out or last_end == 0):
            out.append(between)
        try:
            if match.group(2) in "bB":
                data = match.group(3).encode("ascii", "replace")
                pending += binascii.a2b_base64(data + b"=" * (-len(data) % 4))
            else:
                pending += binascii.a2b_qp(match.group(3).encode("ascii", "replace"), header=True)
        except (binascii.Error, ValueError) as e:
            problems.append(
                f"header '{label[:60]}' has a malformed encoded word ({_describe(e)}); kept as is"
            )
            if pending:
                out.append(decode_text(pending, pending_charset, problems, f"header '{label[:60]}'"))
                pending = b""
            out.append(match.group(0))
        pending_charset = charset
        last_end = match.end()
    if pending:
        out.append(decode_text(pending, pending_charset, problems, f"header '{label[:60]}'"))
    out.append(value[last_end:])
    return safe_text("".join(out))


def _addresses(value: str, problems: list[str], label: str) -> list[dict[str, str | None]]:
    found: list[dict[str, str | None]] = []
    try:
        pairs = getaddresses([value])
    except Exception as e:
        problems.append(f"header '{label}' cannot be parsed as addresses ({_describe(e)})")
        return found
    if value.strip() and not any(name or addr for name, addr in pairs):
        problems.append(f"header '{label}' holds no valid address: {_short(value)!r}")
        return found
    for name, addr in pairs:
        if name or addr:
            shown = decode_words(name, problems, label) if name else ""
            found.append({"name": shown or None, "address": safe_text(addr) or None})
    return found


def _date(value: str, problems: list[str]) -> datetime | None:
    try:
        when: datetime | None = parsedate_to_datetime(value)
    except Exception:
        when = None
    if when is None:
        problems.append(f"the Date header {_short(value)!r} cannot be parsed")
        return None
    try:
        # a date without a zone (-0000) is taken as UTC, as RFC 5322 says for -0000
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (OverflowError, ValueError):
        problems.append(f"the Date header {_short(value)!r} is out of range")
        return None


# -- MIME parts ------------------------------------------------------------------------------------------


def _fill_parts(
    row: dict[str, Any],
    msg: Message,
    problems: list[str],
    store: StoreAttachment | None,
    limits: MailLimits,
) -> None:
    texts: dict[str, list[str]] = {"text/plain": [], "text/html": []}
    lengths = {"text/plain": 0, "text/html": 0}
    for part, depth in _walk(msg, problems, limits):
        ctype = _content_type(part)
        if ctype == "message/rfc822" or _is_attachment(part, ctype):
            row["attachments"].append(_attachment(part, ctype, problems, store))
            continue
        if depth > 0:  # the text of an attached message is that message's body, not this one's
            continue
        text = _body_text(part, ctype, problems)
        if text is None:
            continue
        room = limits.max_body_chars - lengths[ctype]
        if texts[ctype]:
            text = "\n" + text
        if len(text) > room:
            text = text[: max(0, room)]
            row["body_truncated"] = True
        texts[ctype].append(text)
        lengths[ctype] += len(text)
    row["text_body"] = "".join(texts["text/plain"]) if texts["text/plain"] else None
    row["html_body"] = "".join(texts["text/html"]) if texts["text/html"] else None


def _walk(msg: Message, problems: list[str], limits: MailLimits) -> Iterator[tuple[Message, int]]:
    """Leaf parts in order with their message/rfc822 depth; iterative, so deep nesting cannot overflow."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > limits.max_parts:
            problems.append(f"more than {limits.max_parts} MIME parts: the rest were not read")
            return
        ctype = _content_type(part)
        payload = part.get_payload()
        if ctype == "message/rfc822":
            yield part, depth  # the attached message itself is an attachment
            if depth + 1 > limits.max_depth:
                problems.append(f"message/rfc822 parts nested deeper than {limits.max_depth}: not followed")
                continue
            if isinstance(payload, list):
                stack.extend((inner, depth + 1) for inner in reversed(payload) if isinstance(inner, Message))
            continue
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((inner, depth) for inner in reversed(payload) if isinstance(inner, Message))
            continue
        yield part, depth


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message, problems: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception as e:
        problems.append(f"an attachment's file name cannot be decoded ({_describe(e)})")
        return None
    return decode_words(safe_text(str(name)), problems, "file name") if name else None


def _is_attachment(part: Message, ctype: str) -> bool:
    if _disposition(part) == "attachment":
        return True
    try:
        if part.get_filename():
            return True
    except Exception:
        return True
    return ctype not in _BODY_TYPES


def _attachment(
    part: Message, ctype: str, problems: list[str], store: StoreAttachment | None
) -> dict[str, Any]:
    name = _filename(part, problems)
    size = 0
    digest = hashlib.sha256()
    kept: list[bytes] | None = [] if store is not None else None
    try:
        for chunk in _decoded_chunks(part, ctype, problems, name):
            size += len(chunk)
            digest.update(chunk)
            if kept is not None:
                kept.append(chunk)
    except Exception as e:
        problems.append(f"attachment {name or ctype!r} cannot be decoded ({_describe(e)})")
        return _attachment_row(name, ctype, _disposition(part), None, None, None)
    key = store(name, ctype, b"".join(kept)) if store is not None and kept is not None else None
    return _attachment_row(name, ctype, _disposition(part), size, digest.hexdigest(), key)


def _attachment_row(
    name: str | None, ctype: str, disposition: str | None, size: int | None, sha: str | None, key: str | None
) -> dict[str, Any]:
    return {
        "name": name,
        "content_type": ctype,
        "disposition": disposition,
        "size": size,
        "sha256": sha,
        "storage_key": key,
    }


def _decoded_chunks(part: Message, ctype: str, problems: list[str], name: str | None) -> Iterator[bytes]:
    """The part's decoded bytes, base64 in bounded chunks (a huge attachment is never copied whole)."""
    payload = part.get_payload()
    if ctype == "message/rfc822" and isinstance(payload, list):
        inner = payload[0] if payload and isinstance(payload[0], Message) else None
        if inner is not None:
            out = io.BytesIO()
            BytesGenerator(out, mangle_from_=False, policy=policy.compat32).flatten(inner)
            yield out.getvalue()
        return
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64" and isinstance(payload, str):
        yield from _base64_chunks(payload, problems, name or ctype)
        return
    data = part.get_payload(decode=True)
    if isinstance(data, bytes) and data:
        yield data


def _base64_chunks(payload: str, problems: list[str], label: str) -> Iterator[bytes]:
    carry = b""
    for start in range(0, len(payload), _B64_CHUNK_CHARS):
        clean = carry + _BASE64_JUNK.sub(
            b"", payload[start : start + _B64_CHUNK_CHARS].encode("ascii", "ignore")
        )
        whole = len(clean) // 4 * 4
        carry = clean[whole:]
        if whole:
            yield binascii.a2b_base64(clean[:whole])
    if carry:
        padded = carry + b"=" * (-len(carry) % 4)
        try:
            yield binascii.a2b_base64(padded)
            problems.append(f"{label!r}: base64 without its padding")
        except binascii.Error:
            problems.append(f"{label!r}: invalid base64, {len(carry)} trailing character(s) ignored")


def _body_text(part: Message, ctype: str, problems: list[str]) -> str | None:
    try:
        data = part.get_payload(decode=True)
    except Exception as e:
        problems.append(f"the {ctype} body cannot be decoded ({_describe(e)})")
        return None
    if not isinstance(data, bytes):
        return None
    charset = None
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_text(data, charset, problems, f"the {ctype} body")


def decode_text(data: bytes, charset: str | None, problems: list[str], label: str) -> str:
    """Bytes in a declared charset -> text; an unknown charset or bad bytes are noted, never fatal."""
    declared = (charset or "").strip().strip('"').lower()
    if declared in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        # undeclared 8-bit text is most often UTF-8, and UTF-8 is a superset of ASCII
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace")
    try:
        return data.decode(declared)
    except LookupError:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
        problems.append(f"{label} declares an unknown charset {_short(declared)!r}: read as UTF-8")
        return safe_text(text)
    except UnicodeDecodeError as e:
        problems.append(f"{label} is not valid {declared} (byte {e.start}): bad bytes replaced")
        return safe_text(data.decode(declared, "replace"))
    except Exception as e:  # a codec that is not a text codec
        problems.append(f"{label}: charset {_short(declared)!r} cannot decode it ({_describe(e)})")
        return data.decode("utf-8", "replace")


# -- text hygiene ----------------------------------------------------------------------------------------


def safe_text(text: str) -> str:
    """`text` as valid Unicode: undecodable bytes the parser kept as surrogates become real characters."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return _bytes_text(raw)


def _bytes_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace").encode("utf-8", "replace").decode("utf-8")


def _unfold(value: str) -> str:
    """A raw header value unfolded, its 8-bit bytes (RFC 6532 UTF-8, or a legacy charset) made text."""
    return safe_text(re.sub(r"\r?\n(?=[ \t])", "", value)).strip()


def _defects(msg: Message) -> list[str]:
    names: list[str] = []
    try:
        for part in _iter_all(msg):
            for defect in getattr(part, "defects", []):
                name = type(defect).__name__
                if name not in names:
                    names.append(name)
    except Exception:
        return names
    return [f"MIME defects: {', '.join(names)}"] if names else []


def _iter_all(msg: Message) -> Iterator[Message]:
    stack = [msg]
    seen = 0
    while stack and seen < DEFAULT_LIMITS.max_parts:
        part = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(p for p in payload if isinstance(p, Message))


def _guard(problems: list[str], what: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as e:  # RecursionError and MemoryError-free bugs of the email package
        problems.append(f"{what} cannot be read ({_describe(e)})")


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {_short(text)}" if text else type(error).__name__


def _short(text: str) -> str:
    text = safe_text(text)
    return text if len(text) <= _MAX_PROBLEM_CHARS else text[: _MAX_PROBLEM_CHARS - 3] + "..."


def _join(problems: list[str]) -> str | None:
    return "; ".join(dict.fromkeys(problems)) if problems else None
