"""The message row: its Arrow schema and the list-of-rows -> RecordBatch helper."""

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

ADDRESS_TYPE = pa.struct([pa.field("name", pa.string()), pa.field("address", pa.string())])
ATTACHMENT_TYPE = pa.struct(
    [
        pa.field("name", pa.string()),
        pa.field("content_type", pa.string()),
        pa.field("disposition", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("sha256", pa.string()),
        pa.field("storage_key", pa.string()),
    ]
)

MESSAGE_SCHEMA = pa.schema(
    [
        pa.field("message_id", pa.string()),
        pa.field("thread_id", pa.string()),
        pa.field("folders", pa.list_(pa.string())),
        pa.field("from", pa.list_(ADDRESS_TYPE)),
        pa.field("to", pa.list_(ADDRESS_TYPE)),
        pa.field("cc", pa.list_(ADDRESS_TYPE)),
        pa.field("bcc", pa.list_(ADDRESS_TYPE)),
        pa.field("reply_to", pa.list_(ADDRESS_TYPE)),
        pa.field("subject", pa.string()),
        pa.field("date", pa.timestamp("us", tz="UTC")),
        pa.field("size", pa.int64()),
        pa.field("flags", pa.list_(pa.string())),
        pa.field("text_body", pa.string()),
        pa.field("html_body", pa.string()),
        pa.field("body_truncated", pa.bool_()),
        pa.field("headers", pa.string()),
        pa.field("attachments", pa.list_(ATTACHMENT_TYPE)),
        pa.field("content_hash", pa.string()),
        pa.field("parse_error", pa.string()),
    ]
)

MESSAGE_COLUMNS: tuple[str, ...] = tuple(MESSAGE_SCHEMA.names)


def rows_to_batch(rows: Iterable[Mapping[str, Any]]) -> pa.RecordBatch:
    """Message rows (as `parse_message` returns them) -> one RecordBatch of MESSAGE_SCHEMA."""
    return pa.RecordBatch.from_pylist(list(rows), schema=MESSAGE_SCHEMA)
