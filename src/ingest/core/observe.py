"""Hooks the domains call at a few central points; telemetry (metrics, tracing) subscribes at start.

The domains never import prometheus-client or OpenTelemetry: they report what happened here, and
`ingest.metrics` / `ingest.tracing` turn it into series and spans. With nothing subscribed, a hook is free.
"""

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ingest.core.logging import get_logger

log = get_logger("ingest.observe")


class Observer(Protocol):
    def sync_finished(self, outcome: str, seconds: float | None, records: int, nbytes: int) -> None: ...

    def import_finished(self, outcome: str, seconds: float | None, records: int, nbytes: int) -> None: ...

    def airbyte_call(self, operation: str, outcome: str, retries: int) -> None: ...

    def connector_process(self, delta: int) -> None: ...


class Tracer(Protocol):
    def span(self, name: str, attributes: dict[str, Any]) -> AbstractContextManager[Any]: ...

    def continue_trace(self, name: str, traceparent: str | None) -> AbstractContextManager[Any]: ...

    def traceparent(self) -> str | None: ...

    def trace_ids(self) -> tuple[str, str] | None: ...


_observers: list[Observer] = []
_tracer: Tracer | None = None


def subscribe(observer: Observer) -> None:
    if not any(type(o) is type(observer) for o in _observers):
        _observers.append(observer)


def set_tracer(tracer: Tracer | None) -> None:
    global _tracer
    _tracer = tracer


def _each(call: Callable[[Observer], None]) -> None:
    for observer in _observers:
        try:
            call(observer)
        except Exception:  # telemetry must never break the work it watches
            log.warning("observe.failed", observer=type(observer).__name__, exc_info=True)


def sync_finished(outcome: str, seconds: float | None, records: int | None, nbytes: int | None) -> None:
    """A sync ended (SUCCEEDED, FAILED or CANCELLED)."""
    _each(lambda o: o.sync_finished(outcome, seconds, records or 0, nbytes or 0))


def import_finished(outcome: str, seconds: float | None, records: int | None, nbytes: int | None) -> None:
    """A file import ended (COMPLETED or FAILED)."""
    _each(lambda o: o.import_finished(outcome, seconds, records or 0, nbytes or 0))


def airbyte_call(operation: str, outcome: str, retries: int) -> None:
    """One logical Airbyte call ended: `outcome` is ok, a status class (4xx, 5xx) or error; retries made."""
    _each(lambda o: o.airbyte_call(operation, outcome, retries))


@contextlib.contextmanager
def connector_running() -> Iterator[None]:
    """Around a connector process's life."""
    _each(lambda o: o.connector_process(1))
    try:
        yield
    finally:
        _each(lambda o: o.connector_process(-1))


def span(name: str, **attributes: Any) -> AbstractContextManager[Any]:
    """A tracing span around a unit of work (a connector run, an Iceberg commit); a no-op untraced."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.span(name, attributes)


def traceparent() -> str | None:
    """The current trace as a W3C `traceparent`, to carry into a job; None untraced."""
    return _tracer.traceparent() if _tracer is not None else None


def continue_trace(name: str, parent: str | None) -> AbstractContextManager[Any]:
    """A span for a job, child of the request that enqueued it (its stored `traceparent`)."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.continue_trace(name, parent)


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, for log lines; None untraced."""
    return _tracer.trace_ids() if _tracer is not None else None
