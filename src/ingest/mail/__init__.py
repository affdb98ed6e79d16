"""Mail as data: the only code that parses RFC 5322 messages. One message -> one row of MESSAGE_SCHEMA.

Used by the mailbox file formats (`formats/mail.py`) and the IMAP source; the caller fills `folders` and
`flags` (what the mailbox knows, not the message) and may store attachments' bytes.

Columns (one row per message; every column nullable):

- message_id (string): the Message-ID as `<id>`, whitespace removed; null when the message has none.
- thread_id (string): the first id of References, else of In-Reply-To, else message_id (the root).
- folders (list<string>): the folder path(s) holding the message, `/`-separated (caller-filled).
- from, to, cc, bcc, reply_to (list<struct<name, address>>): every address of the header(s), groups
  flattened, display names RFC 2047-decoded.
- subject (string): the first Subject, RFC 2047-decoded.
- date (timestamp[us, UTC]): the Date header in UTC (no zone or -0000 taken as UTC); null when missing
  or unparseable.
- size (int64): the raw message's length in bytes.
- flags (list<string>): IMAP-style flags (`\\Seen`, `\\Answered`, ...), caller-filled.
- text_body, html_body (string): the message's own text/plain and text/html parts that are not
  attachments, decoded (transfer encoding, then charset), joined by a newline when several, line ends
  as the message has them; at most `max_body_chars` characters each.
- body_truncated (bool): true when a body was cut at `max_body_chars`.
- headers (string): a JSON object, lower-case header name -> list of its decoded values in order.
- attachments (list<struct<name, content_type, disposition, size, sha256, storage_key>>): every part
  that is not a body (a disposition of attachment, a file name, or a type other than text/plain and
  text/html). An attached message (message/rfc822) is one entry, and the attachments inside it (up to
  `max_depth` levels) follow as entries of their own. size and sha256 are of the decoded bytes;
  storage_key is what the caller's `store_attachment` returned (null when not stored).
- content_hash (string): sha256 (hex) of the raw bytes; with message_id, the dedupe key.
- parse_error (string): null when the message decoded cleanly, else what could not be read
  (`; `-separated); the row keeps whatever was recovered.

Caps (`MailLimits`, constants of this package): messages over 100 MiB are not parsed (headers only,
from the first MiB), bodies are cut at 1,000,000 characters each, the headers column at 1,000,000
characters, message/rfc822 nesting is followed 8 deep, 2,000 MIME parts per message. Base64 attachments
are decoded and hashed in 4 MiB chunks, never copied whole unless `store_attachment` asks for the bytes.
"""

from ingest.mail.message import (
    DEFAULT_LIMITS,
    MailLimits,
    StoreAttachment,
    content_hash,
    head_of,
    headers_only_row,
    parse_message,
    thread_root,
)
from ingest.mail.schema import ADDRESS_TYPE, ATTACHMENT_TYPE, MESSAGE_COLUMNS, MESSAGE_SCHEMA, rows_to_batch

__all__ = [
    "ADDRESS_TYPE",
    "ATTACHMENT_TYPE",
    "DEFAULT_LIMITS",
    "MESSAGE_COLUMNS",
    "MESSAGE_SCHEMA",
    "MailLimits",
    "StoreAttachment",
    "content_hash",
    "head_of",
    "headers_only_row",
    "parse_message",
    "rows_to_batch",
    "thread_root",
]
