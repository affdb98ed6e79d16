"""Connector subprocesses: private work dirs, process groups, bounded stdout reading, diagnostics."""

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ingest.core.errors import ConnectorError

logger = logging.getLogger("ingest.engines.embedded")

CHUNK_BYTES = 1024**2
MAX_LINE_BYTES = 64 * 1024**2  # one RECORD line may be this big; more is treated as a broken connector
# StreamReader's limit is also its flow-control mark (2x): keep it small so a slow consumer stops the
# connector instead of buffering its output in memory; lines are assembled from chunks up to MAX_LINE_BYTES.
_STREAM_LIMIT = 4 * CHUNK_BYTES


class ConnectorProcessError(ConnectorError):
    """A connector process failed; carries its scrubbed stderr/LOG/TRACE tail for diagnosis."""

    def __init__(self, message: str, diagnostics: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.diagnostics = list(diagnostics)


class Diagnostics:
    """A bounded ring buffer of scrubbed connector output (stderr, LOG and TRACE messages)."""

    def __init__(self, connector_id: str, scrub: Callable[[str], str], size: int = 200) -> None:
        self.connector_id = connector_id
        self.scrub = scrub
        self._lines: deque[str] = deque(maxlen=size)
        self.last_error: str | None = None

    def add(self, source: str, text: str) -> None:
        clean = self.scrub(text.rstrip())
        if not clean:
            return
        self._lines.append(f"{source}: {clean}")
        logger.debug("connector.output connector=%s source=%s %s", self.connector_id, source, clean)

    def observe(self, line: bytes) -> dict[str, Any] | None:
        """Record LOG/TRACE messages and non-JSON stdout; returns the decoded message when it is one."""
        try:
            message = msgspec.json.decode(line)
        except msgspec.DecodeError:
            self.add("stdout", line[:4096].decode("utf-8", "replace"))
            return None
        if not isinstance(message, dict):
            return None
        kind = message.get("type")
        if kind == "LOG":
            log = message.get("log") or {}
            self.add("log", f"{log.get('level', 'INFO')} {log.get('message', '')}")
        elif kind == "TRACE":
            trace = message.get("trace") or {}
            if str(trace.get("type", "")).upper() == "ERROR":
                error = trace.get("error") or {}
                text = str(error.get("message") or error.get("internal_message") or "connector error")
                self.last_error = self.scrub(text)
                self.add("trace", f"ERROR {text} {error.get('internal_message') or ''}")
        return message

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def error(self, message: str) -> ConnectorProcessError:
        return ConnectorProcessError(self.scrub(message), self.lines)


def private_workdir() -> Path:
    """A 0700 temp dir for one connector call (config, catalog, state and the connector's own TMPDIR)."""
    return Path(tempfile.mkdtemp(prefix="ingest-connector-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def write_private_json(directory: Path, name: str, value: Any) -> Path:
    """Write JSON to a new 0600 file (config files hold secrets)."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(msgspec.json.encode(value))
    return path


def connector_env(workdir: Path) -> dict[str, str]:
    """The parent's environment without the service's own `INGEST_*` settings (secrets, database URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["TMPDIR"] = str(workdir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def spawn(argv: Sequence[str], workdir: Path) -> asyncio.subprocess.Process:
    """Start a connector in its own session (process group) so it can be stopped with all its workers."""
    try:
        return await _exec(argv, workdir)
    except OSError as exc:
        raise ConnectorError(f"connector could not start: {exc.strerror or type(exc).__name__}") from exc


async def _exec(argv: Sequence[str], workdir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=workdir,
        env=connector_env(workdir),
        start_new_session=True,
        limit=_STREAM_LIMIT,
    )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def stop(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGTERM the process group, SIGKILL it after the grace period; kill workers that outlive the leader."""
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    if process.returncode is None:
        _signal_group(pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            _signal_group(pgid, signal.SIGKILL)
            await process.wait()
    _signal_group(pgid, signal.SIGKILL)


async def pump_stderr(stream: asyncio.StreamReader | None, diagnostics: Diagnostics) -> None:
    if stream is None:
        return
    while True:
        try:
            chunk = await stream.readline()
        except ValueError:  # a line over the limit: keep its start only
            chunk = await stream.read(CHUNK_BYTES)
        if not chunk:
            return
        diagnostics.add("stderr", chunk[:4096].decode("utf-8", "replace"))


async def stdout_lines(stream: asyncio.StreamReader | None) -> AsyncIterator[bytes]:
    """Non-empty stdout lines without their newline, read in chunks; a line over MAX_LINE_BYTES fails."""
    if stream is None:
        return
    pending = bytearray()
    while True:
        chunk = await stream.read(CHUNK_BYTES)
        if not chunk:
            break
        newline = chunk.rfind(b"\n")
        if newline < 0:
            pending += chunk
            if len(pending) > MAX_LINE_BYTES:
                raise ConnectorError(f"connector output line exceeds {MAX_LINE_BYTES} bytes")
            continue
        if pending:
            pending += chunk[:newline]
            block = bytes(pending)
        else:
            block = chunk[:newline]
        pending = bytearray(chunk[newline + 1 :])
        for line in block.split(b"\n"):
            if line.strip():
                yield line.rstrip(b"\r")
    if pending.strip():
        yield bytes(pending).rstrip(b"\r")


async def drain(stream: asyncio.StreamReader | None, seconds: float) -> None:
    """Discard what a stopped process left in its pipe so the transport can close."""
    if stream is None:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while await stream.read(CHUNK_BYTES):
                pass
