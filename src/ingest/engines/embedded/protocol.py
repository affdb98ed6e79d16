"""Airbyte protocol: message decoding, catalogs, and the fast RECORD -> Arrow batcher for the sync path."""

import io
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.json as pa_json

from ingest.engines.base import ColumnType, DiscoveredStream, ReadRequest, StreamBatch, SyncMode
from ingest.engines.types import arrow_schema, columns_from_schema

_SYNC_MODES = {"full_refresh": SyncMode.FULL_REFRESH, "incremental": SyncMode.INCREMENTAL}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# ---------------------------------------------------------------------------------------------- decoding


class _Record(msgspec.Struct):
    stream: str
    data: msgspec.Raw  # kept as raw JSON bytes: pyarrow parses it in bulk later
    namespace: str | None = None


_EMPTY = msgspec.Raw(b"")  # msgspec cannot decode `Raw | None`: an empty Raw means absent


class _Envelope(msgspec.Struct):
    """Only the envelope is decoded eagerly; non-record payloads stay raw until someone needs them."""

    type: str
    record: _Record | None = None
    state: msgspec.Raw = _EMPTY
    trace: msgspec.Raw = _EMPTY
    log: msgspec.Raw = _EMPTY
    control: msgspec.Raw = _EMPTY


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_raw_fields_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_message(line: bytes) -> dict[str, Any] | None:
    """One stdout line as a protocol message, or None when it is not a JSON object (Airbyte logs those)."""
    try:
        value = _any_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value
    return None


def _raw_dict(raw: msgspec.Raw) -> dict[str, Any]:
    if not raw:
        return {}
    value = _any_decoder.decode(raw)
    return value if isinstance(value, dict) else {}


def trace_error_message(message: Mapping[str, Any]) -> str | None:
    """The user-facing message of a TRACE ERROR message, else None."""
    trace = message.get("trace")
    if not isinstance(trace, Mapping) or str(trace.get("type", "")).upper() != "ERROR":
        return None
    error = trace.get("error") or {}
    text = error.get("message") or error.get("internal_message") or "connector error"
    return str(text)


def log_text(message: Mapping[str, Any]) -> str | None:
    """`LEVEL message` of a LOG message, else None."""
    log = message.get("log")
    if not isinstance(log, Mapping):
        return None
    return f"{log.get('level', 'INFO')} {log.get('message', '')}"


# ---------------------------------------------------------------------------------------------- catalogs


def parse_catalog(catalog: Mapping[str, Any]) -> list[DiscoveredStream]:
    """A CATALOG payload (`{"streams": [AirbyteStream]}`) as DiscoveredStreams with mapped columns."""
    streams: list[DiscoveredStream] = []
    for raw in catalog.get("streams") or []:
        json_schema = dict(raw.get("json_schema") or {})
        modes = [_SYNC_MODES[m] for m in raw.get("supported_sync_modes") or [] if m in _SYNC_MODES]
        streams.append(
            DiscoveredStream(
                name=str(raw["name"]),
                namespace=raw.get("namespace"),
                columns=columns_from_schema(json_schema),
                supported_sync_modes=modes or [SyncMode.FULL_REFRESH],
                json_schema=json_schema,
                primary_key=[list(p) for p in raw.get("source_defined_primary_key") or []],
                cursor_field=list(raw.get("default_cursor_field") or []),
                source_defined_cursor=bool(raw.get("source_defined_cursor", False)),
            )
        )
    return streams


def configured_catalog(request: ReadRequest) -> dict[str, Any]:
    """The ConfiguredAirbyteCatalog for a read: incremental where asked and supported, else full refresh."""
    configured: list[dict[str, Any]] = []
    for stream in request.streams:
        incremental = (
            request.incremental
            and SyncMode.INCREMENTAL in stream.supported_sync_modes
            and (stream.source_defined_cursor or bool(stream.cursor_field))
        )
        airbyte_stream: dict[str, Any] = {
            "name": stream.name,
            "json_schema": stream.json_schema,
            "supported_sync_modes": [
                m.value.lower() for m in stream.supported_sync_modes if m in _SYNC_MODES.values()
            ],
            "source_defined_cursor": stream.source_defined_cursor,
            "default_cursor_field": stream.cursor_field,
            "source_defined_primary_key": stream.primary_key,
        }
        if stream.namespace is not None:
            airbyte_stream["namespace"] = stream.namespace
        if incremental:
            destination_mode = "append_dedup" if stream.primary_key else "append"
        else:
            destination_mode = "overwrite"
        configured.append(
            {
                "stream": airbyte_stream,
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": destination_mode,
                "cursor_field": stream.cursor_field if incremental else [],
                "primary_key": stream.primary_key,
            }
        )
    return {"streams": configured}


def merge_state(previous: Any, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Latest state per stream (and GLOBAL/LEGACY): streams that sent no state this run keep the old one."""

    def key(message: dict[str, Any]) -> tuple[Any, ...]:
        kind = message.get("type") or "LEGACY"
        if kind == "STREAM":
            descriptor = (message.get("stream") or {}).get("stream_descriptor") or {}
            return (kind, descriptor.get("namespace"), descriptor.get("name"))
        return (kind,)

    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for message in previous if isinstance(previous, list) else []:
        if isinstance(message, dict):
            merged[key(message)] = message
    for message in new:
        merged[key(message)] = message
    return list(merged.values())


def state_file_payload(state: Any) -> list[Any]:
    """The `--state` file content: a JSON array of state messages (a lone message or dict is wrapped)."""
    if state is None:
        return []
    if isinstance(state, list):
        return state
    if isinstance(state, Mapping) and "type" not in state and "data" not in state:
        return [{"type": "LEGACY", "data": dict(state)}]
    return [state]


# ---------------------------------------------------------------------------------------------- batching


@dataclass(frozen=True)
class StateEntry:
    """One STATE message and how many records (all streams) preceded it on the connector's stdout."""

    position: int
    kind: str  # STREAM | GLOBAL | LEGACY
    stream: str | None
    message: dict[str, Any]


class _StreamBuffer:
    def __init__(self, stream: DiscoveredStream) -> None:
        self.stream = stream
        self.schema = arrow_schema(stream)
        self.columns = [(c.name, c.type) for c in stream.columns]
        self.json_columns = frozenset(c.name for c in stream.columns if c.type is ColumnType.JSON)
        self.date_columns = [c.name for c in stream.columns if c.type is ColumnType.DATE]
        # pyarrow.json cannot parse strings into date32: read dates as text and cast afterwards
        self.read_schema = pa.schema(
            [pa.field(f.name, pa.string()) if f.name in self.date_columns else f for f in self.schema]
        )
        self.parse_options = pa_json.ParseOptions(
            explicit_schema=self.read_schema, unexpected_field_behavior="ignore"
        )
        self.lines: list[bytes] = []
        self.size = 0
        self.source_bytes = 0  # the records' `data` as the connector sent it
        self.first_position = 0


_NO_BATCHES: tuple[StreamBatch, ...] = ()


class RecordBatcher:
    """Feeds raw `read` stdout lines and returns Arrow batches per stream, with state and counters.

    - RECORD `data` stays raw JSON bytes until a stream's buffer holds `batch_records` records or
      `batch_bytes` bytes; then `pyarrow.json` parses it with the explicit `types.arrow_schema`.
      Memory is bounded by the buffers, never by the record count.
    - Fields missing from the catalog's schema are ignored (the table schema follows discover, not the data);
      nested objects/arrays and unions are kept as JSON text; timestamps are parsed to UTC.
    - A batch that does not parse (a value of the wrong type) is converted row by row; values that cannot
      be coerced become null and are counted in `invalid_values`.
    - STATE messages become committable once every record before them has been returned in a batch:
      `drain_states()` hands them out in order, `committed_state()` is what the next `--state` needs.
    """

    def __init__(
        self,
        streams: Iterable[DiscoveredStream],
        *,
        batch_records: int = 50_000,
        batch_bytes: int = 32 * 1024**2,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self._scrub = scrub or (lambda text: text)
        self._buffers: dict[tuple[str | None, str], _StreamBuffer] = {}
        for stream in streams:
            buffer = _StreamBuffer(stream)
            self._buffers[(stream.namespace, stream.name)] = buffer
            self._buffers.setdefault((None, stream.name), buffer)
        self.records: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.invalid_values: dict[str, int] = {}
        self.total_records = 0
        self.skipped_records = 0  # records of streams not in the catalog
        self.non_protocol_lines = 0
        self.last_error: str | None = None
        self.control_config: dict[str, Any] | None = None  # the latest CONNECTOR_CONFIG control message
        self.stream_statuses: dict[str, str] = {}
        self._pending_states: deque[StateEntry] = deque()
        self._ready_states: list[StateEntry] = []
        self._committed: dict[tuple[str | None, ...], dict[str, Any]] = {}

    # -- feeding

    def feed(self, line: bytes) -> Sequence[StreamBatch]:
        """Take one stdout line; returns the batches that became full (usually none)."""
        try:
            envelope = _envelope_decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.non_protocol_lines += 1
            return _NO_BATCHES
        kind = envelope.type
        if kind == "RECORD":
            record = envelope.record
            if record is None:
                return _NO_BATCHES
            return self._on_record(record)
        if kind == "STATE":
            self._on_state(_raw_dict(envelope.state))
        elif kind == "TRACE":
            self._on_trace(_raw_dict(envelope.trace))
        elif kind == "CONTROL":
            control = _raw_dict(envelope.control)
            if control.get("type") == "CONNECTOR_CONFIG":
                config = (control.get("connectorConfig") or {}).get("config")
                if isinstance(config, dict):
                    self.control_config = config
        return _NO_BATCHES

    def _on_record(self, record: _Record) -> Sequence[StreamBatch]:
        buffer = self._buffers.get((record.namespace, record.stream)) or self._buffers.get(
            (None, record.stream)
        )
        if buffer is None:
            self.skipped_records += 1
            return _NO_BATCHES
        data = bytes(record.data)
        name = buffer.stream.name
        self.records[name] = self.records.get(name, 0) + 1
        self.bytes[name] = self.bytes.get(name, 0) + len(data)
        buffer.source_bytes += len(data)
        if buffer.json_columns:
            data = self._stringify_json_columns(data, buffer.json_columns)
        if not buffer.lines:
            buffer.first_position = self.total_records
        self.total_records += 1
        buffer.lines.append(data)
        buffer.size += len(data) + 1
        if len(buffer.lines) >= self.batch_records or buffer.size >= self.batch_bytes:
            return (self._emit(buffer),)
        return _NO_BATCHES

    @staticmethod
    def _stringify_json_columns(data: bytes, json_columns: frozenset[str]) -> bytes:
        try:
            fields = _raw_fields_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return data  # not an object: the row-by-row fallback deals with it
        out: dict[str, Any] = fields
        changed = False
        for key in json_columns:
            raw = fields.get(key)
            if raw is not None:
                text = bytes(raw)
                if text != b"null":
                    out[key] = text.decode("utf-8")
                    changed = True
        return _encoder.encode(out) if changed else data

    def _on_state(self, state: dict[str, Any]) -> None:
        kind = str(state.get("type") or "LEGACY").upper()
        stream_name: str | None = None
        if kind == "STREAM":
            descriptor = (state.get("stream") or {}).get("stream_descriptor") or {}
            stream_name = descriptor.get("name")
        self._pending_states.append(StateEntry(self.total_records, kind, stream_name, state))
        self._advance_states()

    def _on_trace(self, trace: dict[str, Any]) -> None:
        trace_type = str(trace.get("type", "")).upper()
        if trace_type == "ERROR":
            message = trace_error_message({"trace": trace})
            self.last_error = self._scrub(message) if message else None
        elif trace_type == "STREAM_STATUS":
            status = trace.get("stream_status") or {}
            name = (status.get("stream_descriptor") or {}).get("name")
            if name:
                self.stream_statuses[str(name)] = str(status.get("status"))

    # -- batches

    def flush(self) -> list[StreamBatch]:
        """Every buffered record as batches (call at the end of a read, or before a checkpoint)."""
        batches = [self._emit(b) for b in self._unique_buffers() if b.lines]
        self._advance_states()
        return batches

    def _unique_buffers(self) -> list[_StreamBuffer]:
        return list({id(b): b for b in self._buffers.values()}.values())

    def _emit(self, buffer: _StreamBuffer) -> StreamBatch:
        lines = buffer.lines
        buffer.lines = []
        source_bytes = buffer.source_bytes
        buffer.size = buffer.source_bytes = 0
        batch = self._convert(buffer, lines)
        self._advance_states()
        return StreamBatch(buffer.stream.name, batch, source_bytes)

    def _convert(self, buffer: _StreamBuffer, lines: list[bytes]) -> pa.RecordBatch:
        payload = b"\n".join(lines) + b"\n"
        try:
            table = pa_json.read_json(
                io.BytesIO(payload),
                read_options=pa_json.ReadOptions(
                    use_threads=False, block_size=max(len(payload) + 1, 1 << 20)
                ),
                parse_options=buffer.parse_options,
            )
            table = table.select(buffer.schema.names)
            for name in buffer.date_columns:
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, table.column(name).cast(pa.date32()))
            table = table.cast(buffer.schema).combine_chunks()
            batches = table.to_batches()
            if len(batches) == 1 and batches[0].num_rows == len(lines):
                return batches[0]
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
        return self._convert_slowly(buffer, lines)

    def _convert_slowly(self, buffer: _StreamBuffer, lines: list[bytes]) -> pa.RecordBatch:
        rows: list[dict[str, Any]] = []
        for line in lines:
            try:
                value = _any_decoder.decode(line)
            except msgspec.DecodeError:
                value = None
            rows.append(value if isinstance(value, dict) else {})
        arrays: list[pa.Array] = []
        invalid = 0
        for (name, kind), field in zip(buffer.columns, buffer.schema, strict=True):
            values: list[Any] = []
            for row in rows:
                raw = row.get(name)
                converted = _coerce(raw, kind, name in buffer.json_columns)
                if converted is None and raw is not None:
                    invalid += 1
                values.append(converted)
            arrays.append(pa.array(values, type=field.type))
        if invalid:
            stream = buffer.stream.name
            self.invalid_values[stream] = self.invalid_values.get(stream, 0) + invalid
        return pa.RecordBatch.from_arrays(arrays, schema=buffer.schema)

    # -- state

    def _advance_states(self) -> None:
        unflushed = [b.first_position for b in self._unique_buffers() if b.lines]
        safe = min(unflushed) if unflushed else self.total_records
        while self._pending_states and self._pending_states[0].position <= safe:
            entry = self._pending_states.popleft()
            if entry.kind == "STREAM":
                descriptor = (entry.message.get("stream") or {}).get("stream_descriptor") or {}
                key: tuple[str | None, ...] = ("STREAM", descriptor.get("namespace"), entry.stream)
            else:
                key = (entry.kind,)
            self._committed[key] = entry.message
            self._ready_states.append(entry)

    def drain_states(self) -> list[StateEntry]:
        """STATE messages whose preceding records have all been returned in batches, in order, once each."""
        ready, self._ready_states = self._ready_states, []
        return ready

    def committed_state(self) -> list[dict[str, Any]]:
        """The merged state (latest per stream, GLOBAL, LEGACY) as of the last committable STATE message."""
        return list(self._committed.values())

    @property
    def pending_states(self) -> int:
        return len(self._pending_states)


def _coerce(value: Any, kind: ColumnType, as_json: bool) -> Any:
    """One value to the Python form Arrow expects for `kind`; None when it cannot be converted."""
    if value is None:
        return None
    if as_json:
        # feed() already turned JSON-column values into their JSON text; anything else is encoded here
        return value if isinstance(value, str) else _encoder.encode(value).decode("utf-8")
    try:
        if kind is ColumnType.INTEGER:
            if isinstance(value, bool):
                return None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            number = int(value)
            return number if _INT64_MIN <= number <= _INT64_MAX else None
        if kind is ColumnType.DECIMAL:
            if isinstance(value, bool):
                return None
            result = float(value)
            return result if math.isfinite(result) else None
        if kind is ColumnType.BOOLEAN:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"true", "false"}:
                return value.lower() == "true"
            return None
        if kind is ColumnType.DATE:
            return date.fromisoformat(str(value)[:10]) if isinstance(value, str) else None
        if kind is ColumnType.TIMESTAMP:
            if not isinstance(value, str):
                return None
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError, OverflowError):
        return None
