"""Reading an IMAP mailbox into message rows (Arrow batches) and per-folder UID state.

How a read keeps its promises:
- Folders are opened read-only (EXAMINE) and bodies fetched with BODY.PEEK[]: nothing is marked read.
- Incremental by UID per folder: the state keeps each folder's UIDVALIDITY and the last UID read; a
  changed UIDVALIDITY (the server renumbered the folder) reads that folder again from the start.
- One row per message, keyed by (message_id, content_hash): a copy of a message found in several folders
  (or twice in one) during a read becomes one row whose `folders` lists them all. Candidates are found by
  a cheap first pass (Message-ID and size of every message to read); only those are downloaded twice (once
  to hash, once to parse), every other message once. A message moved between syncs keeps its key, so the
  upsert replaces its row: still one row, now in its new folder.
- Fetches go in chunks (at most FETCH_MESSAGES messages or FETCH_BYTES bytes); rows are parsed by the
  shared message model (`ingest.mail`) and cross to the event loop in batches (the bridge's bounded queue).
- A cancel closes the socket: the blocking read in the worker thread fails at once.
"""

import contextlib
import email.parser
import email.policy
import hashlib
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from imapclient import IMAPClient
from imapclient.util import to_unicode

from ingest.engines.base import ReadEvent, ReadRequest, StateCheckpoint, StreamBatch, SyncMode
from ingest.engines.embedded.bridge import ThreadRead
from ingest.engines.embedded.mail.imap import (
    FOLDERS,
    FOLDERS_SCHEMA,
    MESSAGES,
    Folder,
    Options,
    chosen_folders,
    close,
    connect,
    explain,
    list_folders,
    options,
)
from ingest.mail import (
    MESSAGE_SCHEMA,
    MailLimits,
    content_hash,
    headers_only_row,
    parse_message,
    rows_to_batch,
)

FETCH_MESSAGES = 200  # messages per FETCH
FETCH_BYTES = 8 * 1024**2  # and at most about this many bytes per FETCH (sizes known from the first pass)
BATCH_ROWS = 500  # rows per Arrow batch handed to the sync
BATCH_BYTES = 32 * 1024**2  # or fewer, when the messages are large
SCAN_MESSAGES = 2000  # messages per first-pass FETCH (Message-ID and size only)
STATE_VERSION = 1


# -- read --------------------------------------------------------------------------------------------------


def folder_state(state: Any) -> dict[str, dict[str, int]]:
    """`{"version": 1, "folders": {name: {"uidvalidity", "last_uid"}}}` as a dict by folder name."""
    if not isinstance(state, Mapping) or not isinstance(state.get("folders"), Mapping):
        return {}
    result: dict[str, dict[str, int]] = {}
    for name, entry in state["folders"].items():
        if isinstance(entry, Mapping) and isinstance(entry.get("uidvalidity"), int):
            result[str(name)] = {
                "uidvalidity": int(entry["uidvalidity"]),
                "last_uid": int(entry.get("last_uid") or 0),
            }
    return result


@dataclass
class _Seen:
    """One message of the first pass: to read, or `known` (read by an earlier incremental sync)."""

    folder: str
    uid: int
    size: int
    message_id: str | None
    known: bool = False


@dataclass
class _FolderPlan:
    folder: Folder
    uidvalidity: int
    last_uid: int  # the highest UID read (or known) after this read
    uids: list[int] = field(default_factory=list)


def _message_id(header: bytes | None) -> str | None:
    if not header:
        return None
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)
    value = parsed.get("Message-ID")
    return " ".join(str(value).split()) if value else None


def _chunks(items: list[_Seen], max_bytes: int) -> Iterator[list[_Seen]]:
    chunk: list[_Seen] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) >= FETCH_MESSAGES or size + item.size > FETCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += min(item.size, max_bytes)
    if chunk:
        yield chunk


def _flags(raw: Iterable[Any]) -> list[str]:
    return [to_unicode(f) for f in raw if to_unicode(f).lower() != "\\recent"]


class _Reader:
    """The blocking part of one read, run in the bridge's worker thread."""

    def __init__(self, request: ReadRequest, opts: Options) -> None:
        self.request = request
        self.opts = opts
        self.client: IMAPClient | None = None
        self.selected_names = {s.name for s in request.streams}
        choice = request.choices.get(MESSAGES)
        mode = choice.sync_mode if choice is not None else None
        self.incremental = (mode is SyncMode.INCREMENTAL) if mode is not None else request.incremental
        self.previous = folder_state(request.state) if self.incremental else {}
        self.rows: list[dict[str, Any]] = []
        self.row_bytes = 0
        # the shared model's own cap follows ours: what we download whole, it parses whole
        self.limits = MailLimits(
            max_message_bytes=max(opts.max_message_bytes, MailLimits().max_message_bytes)
        )

    # the bridge's interrupt: from the event loop thread
    def interrupt(self) -> None:
        client = self.client
        if client is None:
            return
        with contextlib.suppress(OSError):  # already closed
            client.socket().shutdown(socket.SHUT_RDWR)

    def produce(self, emit: Callable[[ReadEvent], None]) -> None:
        self.client = connect(self.opts)
        try:
            self._produce(emit)
        finally:
            close(self.client)

    def _produce(self, emit: Callable[[ReadEvent], None]) -> None:
        client = self.client
        assert client is not None
        folders = list_folders(client)
        chosen = chosen_folders(folders, self.opts)
        if FOLDERS in self.selected_names:
            emit(StreamBatch(FOLDERS, self._folder_rows(folders, {f.name for f in chosen}), 0))
        if MESSAGES not in self.selected_names:
            if self.incremental:
                emit(StateCheckpoint(self._state_of(self.previous)))
            return
        # an empty batch first: an empty mailbox still lands with the exact schema
        emit(StreamBatch(MESSAGES, _empty(MESSAGE_SCHEMA), 0))
        plans, seen = self._scan(chosen)
        groups: dict[tuple[str | None, int], list[_Seen]] = {}
        for item in seen:
            groups.setdefault((item.message_id, item.size), []).append(item)
        copies = {
            id(item)
            for group in groups.values()
            if len(group) > 1 and not all(i.known for i in group)
            for item in group
        }
        # new messages with one sighting: read once, folder by folder
        by_folder: dict[str, list[_Seen]] = {}
        for item in seen:
            if id(item) not in copies and not item.known:
                by_folder.setdefault(item.folder, []).append(item)
        for plan in plans:
            items = by_folder.get(plan.folder.name)
            if items:
                self._select(plan.folder.name)
                self._read(items, emit, folders_of=None)
        # possible copies: hash every one, then read one per distinct (Message-ID, content)
        copy_items = [item for item in seen if id(item) in copies]
        if copy_items:
            self._read_copies(copy_items, plans, emit)
        self._flush(emit)
        emit(
            StateCheckpoint(
                self._state_of(
                    {p.folder.name: {"uidvalidity": p.uidvalidity, "last_uid": p.last_uid} for p in plans}
                )
            )
        )

    def _state_of(self, folders: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
        return {"version": STATE_VERSION, "folders": {k: dict(v) for k, v in folders.items()}}

    def _folder_rows(self, folders: list[Folder], chosen: set[str]) -> pa.RecordBatch:
        client = self.client
        assert client is not None
        rows = []
        for folder in folders:
            status: dict[bytes, Any] = {}
            if folder.selectable:
                status = client.folder_status(
                    folder.name, [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"]
                )
            rows.append(
                {
                    "name": folder.name,
                    "delimiter": folder.delimiter,
                    "flags": list(folder.flags),
                    "special_use": folder.special_use,
                    "selected": folder.name in chosen,
                    "uidvalidity": status.get(b"UIDVALIDITY"),
                    "uidnext": status.get(b"UIDNEXT"),
                    "messages": status.get(b"MESSAGES"),
                    "unseen": status.get(b"UNSEEN"),
                }
            )
        return pa.RecordBatch.from_pylist(rows, schema=FOLDERS_SCHEMA)

    def _select(self, name: str) -> dict[bytes, Any]:
        client = self.client
        assert client is not None
        # read-only (EXAMINE): the server never sets \Seen, whatever is fetched
        selected: dict[bytes, Any] = client.select_folder(name, readonly=True)
        return selected

    def _scan(self, chosen: list[Folder]) -> tuple[list[_FolderPlan], list[_Seen]]:
        """First pass: per folder, the size and Message-ID of every message in the time window; those past
        the saved UID are to be read, the others are `known` (only looked at again when a new message
        may be a copy of them, so that its row lists every folder holding it)."""
        client = self.client
        assert client is not None
        plans: list[_FolderPlan] = []
        seen: list[_Seen] = []
        for folder in chosen:
            selected = self._select(folder.name)
            uidvalidity = int(selected.get(b"UIDVALIDITY") or 0)
            saved = self.previous.get(folder.name)
            start = 1
            if saved is not None and saved["uidvalidity"] == uidvalidity:
                start = saved["last_uid"] + 1
            plan = _FolderPlan(folder, uidvalidity, start - 1)
            plans.append(plan)
            if not int(selected.get(b"EXISTS") or 0):
                continue
            criteria: list[Any] = ["ALL"]
            if self.opts.since is not None:
                criteria = ["SINCE", self.opts.since]
            uids = sorted(client.search(criteria))
            if not uids:
                continue
            plan.uids = [u for u in uids if u >= start]
            if plan.uids:
                plan.last_uid = max(plan.last_uid, plan.uids[-1])
            for offset in range(0, len(uids), SCAN_MESSAGES):
                part = uids[offset : offset + SCAN_MESSAGES]
                fetched = client.fetch(part, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for uid in part:
                    data = fetched.get(uid)
                    if data is None:
                        continue  # expunged meanwhile
                    header = next((v for k, v in data.items() if k.startswith(b"BODY[HEADER")), None)
                    size = int(data.get(b"RFC822.SIZE") or 0)
                    seen.append(_Seen(folder.name, uid, size, _message_id(header), known=uid < start))
        return plans, seen

    def _fetch(self, items: list[_Seen]) -> Iterator[tuple[_Seen, bytes, bool, str, dict[bytes, Any]]]:
        """(item, bytes, complete?, sha256 of the whole message, fetch data) for each message still there.

        A message over max_message_bytes comes as its header block only; its hash is still of the whole
        message, read in FETCH_BYTES pieces (`BODY.PEEK[]<offset.length>`) that are never held together.
        """
        client = self.client
        assert client is not None
        limit = self.opts.max_message_bytes
        for chunk in _chunks(items, limit):
            whole = [i.uid for i in chunk if i.size <= limit]
            large = [i.uid for i in chunk if i.size > limit]
            fetched: dict[int, dict[bytes, Any]] = {}
            if whole:
                fetched.update(client.fetch(whole, ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE"]))
            if large:
                fetched.update(client.fetch(large, ["BODY.PEEK[HEADER]", "FLAGS", "RFC822.SIZE"]))
            for item in chunk:
                data = fetched.get(item.uid)
                if data is None:
                    continue  # expunged between the passes
                if item.size <= limit:
                    raw = bytes(data.get(b"BODY[]") or b"")
                    yield item, raw, True, content_hash(raw), data
                else:
                    digest = self._streamed_hash(item)
                    if digest is not None:
                        yield item, bytes(data.get(b"BODY[HEADER]") or b""), False, digest, data

    def _streamed_hash(self, item: _Seen) -> str | None:
        client = self.client
        assert client is not None
        digest = hashlib.sha256()
        offset = 0
        while offset < item.size:
            part = client.fetch([item.uid], [f"BODY.PEEK[]<{offset}.{FETCH_BYTES}>"]).get(item.uid)
            if part is None:
                return None  # expunged meanwhile
            piece = next((v for k, v in part.items() if k.startswith(b"BODY[]")), None)
            if not piece:
                break
            digest.update(piece)
            offset += len(piece)
        return digest.hexdigest()

    def _row(
        self,
        raw: bytes,
        complete: bool,
        digest: str,
        data: Mapping[bytes, Any],
        folders: list[str],
        flags: list[str],
    ) -> dict[str, Any]:
        if complete:
            store = self.request.store_blob if self.opts.store_attachments else None
            return parse_message(
                raw, folders=folders, flags=flags, store_attachment=store, limits=self.limits
            )
        size = int(data.get(b"RFC822.SIZE") or 0)
        reason = (
            f"message is {size} bytes, over max_message_bytes ({self.opts.max_message_bytes}): headers only"
        )
        return headers_only_row(
            raw, size=size, sha256=digest, reason=reason, folders=folders, flags=flags, limits=self.limits
        )

    def _read(
        self,
        items: list[_Seen],
        emit: Callable[[ReadEvent], None],
        folders_of: Mapping[tuple[str, int], tuple[list[str], list[str]]] | None,
    ) -> None:
        for item, raw, complete, digest, data in self._fetch(items):
            if folders_of is not None:
                folders, flags = folders_of[(item.folder, item.uid)]
            else:
                folders, flags = [item.folder], _flags(data.get(b"FLAGS") or ())
            self._add(self._row(raw, complete, digest, data, folders, flags), len(raw), emit)

    def _read_copies(
        self, items: list[_Seen], plans: list[_FolderPlan], emit: Callable[[ReadEvent], None]
    ) -> None:
        """Hash every possible copy, then read one message per distinct (Message-ID, content hash) with
        the folders (in folder order) and flags (union) of all its copies."""
        order = {p.folder.name: index for index, p in enumerate(plans)}
        by_folder: dict[str, list[_Seen]] = {}
        for item in items:
            by_folder.setdefault(item.folder, []).append(item)
        distinct: dict[tuple[str | None, str], list[tuple[_Seen, list[str]]]] = {}
        for name in sorted(by_folder, key=lambda n: order[n]):
            self._select(name)
            for item, _, _, digest, data in self._fetch(by_folder[name]):
                distinct.setdefault((item.message_id, digest), []).append(
                    (item, _flags(data.get(b"FLAGS") or ()))
                )
        first: dict[str, list[_Seen]] = {}
        folders_of: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
        for sightings in distinct.values():
            if all(s.known for s, _ in sightings):
                continue  # no new copy among them: their row is already in the table
            head = sightings[0][0]
            folders = list(dict.fromkeys(s.folder for s, _ in sightings))
            flags = sorted({f for _, fl in sightings for f in fl})
            folders_of[(head.folder, head.uid)] = (folders, flags)
            first.setdefault(head.folder, []).append(head)
        for name in sorted(first, key=lambda n: order[n]):
            self._select(name)
            self._read(first[name], emit, folders_of)

    def _add(self, row: dict[str, Any], nbytes: int, emit: Callable[[ReadEvent], None]) -> None:
        self.rows.append(row)
        self.row_bytes += nbytes
        if len(self.rows) >= BATCH_ROWS or self.row_bytes >= BATCH_BYTES:
            self._flush(emit)

    def _flush(self, emit: Callable[[ReadEvent], None]) -> None:
        if not self.rows:
            return
        batch = rows_to_batch(self.rows)
        source_bytes = self.row_bytes
        self.rows, self.row_bytes = [], 0
        emit(StreamBatch(MESSAGES, batch, source_bytes))


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def read(request: ReadRequest, cancel: Any, *, allow_plaintext: bool) -> ThreadRead:
    """The selected streams (`folders` whole, `messages` per folder past the saved UIDs), then the state."""
    opts = options(request.config, allow_plaintext=allow_plaintext)
    reader = _Reader(request, opts)
    return ThreadRead(reader.produce, reader.interrupt, cancel, lambda exc: explain(exc, opts), "imap")
