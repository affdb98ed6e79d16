"""EmbeddedEngine: runs PyPI Airbyte connectors as local subprocesses, one venv per connector version."""

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from ingest.core import observe
from ingest.core.errors import ConnectorCancelledError, ConnectorError
from ingest.core.settings import Settings
from ingest.engines.base import (
    CheckResult,
    ConnectorType,
    DiscoveredStream,
    ReadEvent,
    ReadRequest,
    StateCheckpoint,
)
from ingest.engines.embedded import databases, installer, mail
from ingest.engines.embedded.bridge import ThreadRead
from ingest.engines.embedded.process import (
    ConnectorProcessError,
    Diagnostics,
    drain,
    private_workdir,
    pump_stderr,
    remove_workdir,
    spawn,
    stdout_lines,
    stop,
    write_private_json,
)
from ingest.engines.embedded.protocol import (
    RecordBatcher,
    configured_catalog,
    merge_state,
    parse_catalog,
    state_file_payload,
)
from ingest.engines.registry import console_script
from ingest.engines.secrets import Scrubber


def _no_scrub(text: str) -> str:
    return text


class EmbeddedEngine:
    """Implements `ingest.engines.base.Engine` with local connector processes."""

    name = "embedded"

    def __init__(
        self, settings: Settings, *, connectors_dir: Path | None = None, diagnostics_lines: int = 200
    ) -> None:
        self.settings = settings
        self.connectors_dir = connectors_dir or settings.connectors_dir
        self.diagnostics_lines = diagnostics_lines
        self._specs: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._install_locks: dict[str, asyncio.Lock] = {}

    # -- installation

    async def install(self, connector: ConnectorType) -> Path:
        """Install the connector's pinned package on first use; returns its virtualenv directory."""
        venv = installer.venv_dir(self.connectors_dir, connector)
        if connector.package is not None and installer.is_installed(venv, connector):
            return venv
        lock = self._install_locks.setdefault(venv.name, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(
                installer.install_blocking,
                self.connectors_dir,
                connector,
                index_url=self.settings.connector_pip_index_url,
                timeout=max(self.settings.connector_timeout_seconds, 900.0),
            )

    async def _argv(self, connector: ConnectorType, *args: str) -> list[str]:
        venv = await self.install(connector)
        # Run the console script through the venv's interpreter: its shebang may name the temp install path.
        return [str(venv / "bin" / "python"), str(venv / "bin" / console_script(connector)), *args]

    # -- spec, check, discover

    async def spec(self, connector: ConnectorType) -> dict[str, Any]:
        """The connector's `connectionSpecification`, cached per connector version (memory and venv dir)."""
        if databases.is_database(connector.id):
            return databases.spec(connector.id)
        if mail.is_mail(connector.id):
            return mail.spec(connector.id)
        key = (connector.id, connector.version)
        cached = self._specs.get(key)
        if cached is not None:
            return cached
        venv = await self.install(connector)
        cache_file = venv / "spec.json"
        if cache_file.is_file():
            spec: dict[str, Any] = json.loads(cache_file.read_text())
        else:
            messages, _ = await self._run(connector, "spec", None, _no_scrub)
            found = next((m for m in messages if m.get("type") == "SPEC"), None)
            spec_payload = (found or {}).get("spec") or {}
            connection_spec = spec_payload.get("connectionSpecification")
            if not isinstance(connection_spec, dict):
                raise ConnectorError(f"connector {connector.id} returned no connectionSpecification")
            spec = connection_spec
            temp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(spec))
            temp.replace(cache_file)
        self._specs[key] = spec
        return spec

    async def scrubber(self, connector: ConnectorType, config: Mapping[str, Any]) -> Scrubber:
        """A scrubber for every secret value of `config` (paths marked `airbyte_secret` in the spec)."""
        return Scrubber.for_config(config, await self.spec(connector))

    def check_options(self, connector: ConnectorType, config: Mapping[str, Any]) -> None:
        """400 naming the config options this engine cannot honour (databases: SSH tunnel, CDC, ...)."""
        if databases.is_database(connector.id):
            databases.check_options(connector.id, config)
        if mail.is_mail(connector.id):
            from ingest.engines.embedded.mail import imap

            imap.options(config, allow_plaintext=self.settings.imap_allow_plaintext)

    async def check(self, connector: ConnectorType, config: Mapping[str, Any]) -> CheckResult:
        """CONNECTION_STATUS as a CheckResult; a crash, TRACE error without status, or timeout raises."""
        if databases.is_database(connector.id):
            return await databases.check(connector.id, config)
        if mail.is_mail(connector.id):
            from ingest.engines.embedded.mail import imap

            allow = self.settings.imap_allow_plaintext
            return await asyncio.to_thread(imap.check, config, allow_plaintext=allow)
        scrub = await self.scrubber(connector, config)
        messages, diagnostics = await self._run(connector, "check", config, scrub, allow_failure=True)
        status = next((m for m in messages if m.get("type") == "CONNECTION_STATUS"), None)
        if status is None:
            raise diagnostics.error(
                f"connector {connector.id} check failed: {diagnostics.last_error or 'no connection status'}"
            )
        payload = status.get("connectionStatus") or {}
        message = payload.get("message")
        succeeded = str(payload.get("status", "")).upper() == "SUCCEEDED"
        return CheckResult(succeeded, scrub(str(message)) if message else None)

    async def discover(self, connector: ConnectorType, config: Mapping[str, Any]) -> list[DiscoveredStream]:
        if databases.is_database(connector.id):
            try:
                return await databases.discover(connector.id, config)
            except ConnectorError:
                raise
            except Exception as exc:
                scrub = await self.scrubber(connector, config)
                first = (str(exc).strip().splitlines() or ["unknown error"])[0]
                raise ConnectorError(f"{connector.id} discover failed: {scrub(first)[:300]}") from None
        if mail.is_mail(connector.id):
            from ingest.engines.embedded.mail import imap

            allow = self.settings.imap_allow_plaintext
            return await asyncio.to_thread(imap.discover, config, allow_plaintext=allow)
        scrub = await self.scrubber(connector, config)
        messages, diagnostics = await self._run(connector, "discover", config, scrub)
        catalog = next((m for m in messages if m.get("type") == "CATALOG"), None)
        if catalog is None:
            raise diagnostics.error(f"connector {connector.id} discover returned no catalog")
        return parse_catalog(catalog.get("catalog") or {})

    async def _run(
        self,
        connector: ConnectorType,
        command: str,
        config: Mapping[str, Any] | None,
        scrub: Any,
        *,
        allow_failure: bool = False,
    ) -> tuple[list[dict[str, Any]], Diagnostics]:
        """Run spec/check/discover to completion; returns the non-LOG/TRACE messages and diagnostics."""
        argv = await self._argv(connector, command)
        diagnostics = Diagnostics(connector.id, scrub, self.diagnostics_lines)
        timeout = self.settings.connector_timeout_seconds
        workdir = private_workdir()
        messages: list[dict[str, Any]] = []
        telemetry = contextlib.ExitStack()
        telemetry.enter_context(observe.span(f"connector.{command}", connector=connector.id))
        try:
            if config is not None:
                argv += ["--config", str(write_private_json(workdir, "config.json", dict(config)))]
            process = await spawn(argv, workdir)
            telemetry.enter_context(observe.connector_running())
            stderr_task = asyncio.create_task(pump_stderr(process.stderr, diagnostics))
            try:
                async with asyncio.timeout(timeout):
                    async for line in stdout_lines(process.stdout):
                        message = diagnostics.observe(line)
                        if message is not None and message.get("type") not in {"LOG", "TRACE"}:
                            messages.append(message)
                    returncode = await process.wait()
            except TimeoutError:
                raise diagnostics.error(
                    f"connector {connector.id} {command} timed out after {timeout:g} s"
                ) from None
            finally:
                await stop(process, self.settings.connector_kill_grace_seconds)
                await drain(process.stdout, 5.0)
                await _finish(stderr_task)
        finally:
            remove_workdir(workdir)
            telemetry.__exit__(*sys.exc_info())
        if returncode != 0 and not (allow_failure and messages):
            reason = diagnostics.last_error or f"exited with code {returncode}"
            raise diagnostics.error(f"connector {connector.id} {command} failed: {reason}")
        return messages, diagnostics

    # -- read

    # 10k-record batches: same speed as 50k (pyarrow.json is far faster than any connector) and about
    # 150 MB less at peak with three streams buffering at once (bench/syncs_bench.py)
    BATCH_RECORDS = 10_000

    def read(self, request: ReadRequest, cancel: asyncio.Event) -> "ReadRun | ThreadRead":
        """The records as Arrow batches per stream, then one state checkpoint. See ReadRun / ThreadRead."""
        if databases.is_database(request.connector.id):
            return databases.read(request, cancel)
        if mail.is_mail(request.connector.id):
            from ingest.engines.embedded.mail import imap_read  # the message model loads only when used

            return imap_read.read(request, cancel, allow_plaintext=self.settings.imap_allow_plaintext)
        return ReadRun(self, request, cancel)

    def read_lines(self, request: ReadRequest, cancel: asyncio.Event) -> "ConnectorRun":
        """Raw protocol lines of the connector's `read`; iterate it (or `async with` it). See ConnectorRun."""
        return ConnectorRun(self, request, cancel)


async def _finish(task: "asyncio.Task[None]") -> None:
    try:
        await asyncio.wait_for(task, 5.0)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()


class ReadRun:
    """A connector read as `ReadEvent`s: RECORD lines become Arrow batches (`RecordBatcher`), and after a
    clean end, for incremental reads, one `StateCheckpoint` with the committable STATE merged into the
    previous state. Errors and cancel as `ConnectorRun`; `connector` is the underlying process run.
    """

    def __init__(self, engine: EmbeddedEngine, request: ReadRequest, cancel: asyncio.Event) -> None:
        self._engine = engine
        self._request = request
        self.connector = ConnectorRun(engine, request, cancel)
        self.batcher: RecordBatcher | None = None
        self._iterator: AsyncGenerator[ReadEvent, None] | None = None

    def __aiter__(self) -> AsyncIterator[ReadEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def __aenter__(self) -> "ReadRun":
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()
        await self.connector.aclose()

    async def _events(self) -> AsyncGenerator[ReadEvent, None]:
        request = self._request
        scrub = await self._engine.scrubber(request.connector, request.config)
        batcher = RecordBatcher(request.streams, batch_records=self._engine.BATCH_RECORDS, scrub=scrub)
        self.batcher = batcher
        async with self.connector as lines:
            async for line in lines:
                for batch in batcher.feed(line):
                    yield batch
        for batch in batcher.flush():
            yield batch
        if request.incremental:
            yield StateCheckpoint(merge_state(request.state, batcher.committed_state()))


class ConnectorRun:
    """One `read` process: an async iterator of raw stdout lines (JSON protocol messages, newline stripped).

    Raises `ConnectorCancelledError` when `cancel` is set (the process group is killed first),
    `ConnectorProcessError` on a non-zero exit or a TRACE ERROR (message = the last TRACE error, scrubbed)
    or on timeout; the error comes after the last line, so the caller must not commit state before the end.
    `diagnostics` keeps the scrubbed stderr/LOG/TRACE tail; `pid` is the connector's process (group) id.
    """

    def __init__(self, engine: EmbeddedEngine, request: ReadRequest, cancel: asyncio.Event) -> None:
        self._engine = engine
        self._request = request
        self._cancel = cancel
        self._iterator: AsyncGenerator[bytes, None] | None = None
        self.diagnostics = Diagnostics(request.connector.id, _no_scrub, engine.diagnostics_lines)
        self.pid: int | None = None
        self.returncode: int | None = None

    def __aiter__(self) -> "ConnectorRun":
        return self

    async def __anext__(self) -> bytes:
        if self._iterator is None:
            self._iterator = self._lines()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop the connector (if still running) and remove its temp files."""
        if self._iterator is not None:
            await self._iterator.aclose()

    async def __aenter__(self) -> "ConnectorRun":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _lines(self) -> AsyncGenerator[bytes, None]:
        engine, request, connector = self._engine, self._request, self._request.connector
        settings = engine.settings
        scrub = await engine.scrubber(connector, request.config)
        self.diagnostics.scrub = scrub
        argv = await engine._argv(connector, "read")
        workdir = private_workdir()
        stop_reason: list[str] = []
        telemetry = contextlib.ExitStack()
        telemetry.enter_context(observe.span("connector.read", connector=connector.id))
        try:
            argv += ["--config", str(write_private_json(workdir, "config.json", dict(request.config)))]
            argv += [
                "--catalog",
                str(write_private_json(workdir, "catalog.json", configured_catalog(request))),
            ]
            if request.state is not None:
                state = state_file_payload(request.state)
                argv += ["--state", str(write_private_json(workdir, "state.json", state))]
            process = await spawn(argv, workdir)
            telemetry.enter_context(observe.connector_running())
            self.pid = process.pid
            stderr_task = asyncio.create_task(pump_stderr(process.stderr, self.diagnostics))

            async def watch() -> None:
                try:
                    await asyncio.wait_for(self._cancel.wait(), settings.connector_read_timeout_seconds)
                    stop_reason.append("cancelled")
                except TimeoutError:
                    stop_reason.append("timeout")
                await stop(process, settings.connector_kill_grace_seconds)

            watcher = asyncio.create_task(watch())
            try:
                async for line in stdout_lines(process.stdout):
                    if line[:1] != b"{":
                        self.diagnostics.observe(line)  # Airbyte treats non-JSON stdout as logs
                        continue
                    if b'"TRACE"' in line or b'"LOG"' in line:
                        self.diagnostics.observe(line)
                    yield line
                self.returncode = await process.wait()
                if not watcher.done():
                    watcher.cancel()
                else:
                    await watcher
            finally:
                if not watcher.done():
                    watcher.cancel()
                await stop(process, settings.connector_kill_grace_seconds)
                await drain(process.stdout, 5.0)
                await _finish(stderr_task)
        finally:
            remove_workdir(workdir)
            telemetry.__exit__(*sys.exc_info())
        if stop_reason == ["cancelled"]:
            raise ConnectorCancelledError(f"connector {connector.id} read was cancelled")
        if stop_reason == ["timeout"]:
            raise self.diagnostics.error(
                f"connector {connector.id} read timed out after {settings.connector_read_timeout_seconds:g} s"
            )
        if self.returncode != 0 or self.diagnostics.last_error:
            # like PyAirbyte, a TRACE ERROR fails the read even when the connector exits 0
            reason = self.diagnostics.last_error or f"exited with code {self.returncode}"
            raise self.diagnostics.error(f"connector {connector.id} read failed: {reason}")


__all__ = ["ConnectorProcessError", "ConnectorRun", "EmbeddedEngine", "ReadRun"]
