"""The thread -> async bridge of the native readers (databases, mail): a blocking driver runs in one worker
thread; its events cross to the event loop through a bounded queue (memory bounded by `QUEUE_BATCHES`
events), and a cancel interrupts the driver's blocking call.
"""

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from ingest.core.errors import ConnectorCancelledError, ConnectorError, InvalidRequestError
from ingest.engines.base import ReadEvent

QUEUE_BATCHES = 2

_DONE = object()


class ThreadRead:
    """One native read as `ReadEvent`s: `produce` runs in a thread, `interrupt` stops it server-side.

    `produce(emit)` calls `emit(event)` for each event (blocking while the queue is full) and returns when
    done. On cancel (or when the consumer leaves early) `interrupt()` is called from the event loop: it must
    make the producer's blocking call fail (databases: pg_cancel_backend or KILL QUERY; IMAP: close the
    socket).
    """

    def __init__(
        self,
        produce: Callable[[Callable[[ReadEvent], None]], None],
        interrupt: Callable[[], None],
        cancel: asyncio.Event,
        describe: Callable[[BaseException], str],
        label: str,
    ) -> None:
        self._produce = produce
        self._interrupt = interrupt
        self._cancel = cancel
        self._describe = describe
        self._label = label
        self._iterator: AsyncGenerator[ReadEvent, None] | None = None
        self._stopping = threading.Event()

    def __aiter__(self) -> AsyncIterator[ReadEvent]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def __aenter__(self) -> "ThreadRead":
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()

    async def _events(self) -> AsyncGenerator[ReadEvent, None]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_BATCHES)
        stopping = self._stopping

        def emit(event: ReadEvent) -> None:
            if stopping.is_set():
                raise ConnectorCancelledError("stopped")
            asyncio.run_coroutine_threadsafe(queue.put(event), loop).result()

        def run() -> None:
            outcome: Any = _DONE
            try:
                self._produce(emit)
            except BaseException as exc:
                outcome = exc
            if not stopping.is_set():
                asyncio.run_coroutine_threadsafe(queue.put(outcome), loop).result()

        thread = threading.Thread(target=run, name=f"read-{self._label}", daemon=True)
        thread.start()
        cancel_wait = asyncio.ensure_future(self._cancel.wait())
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, cancel_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    raise ConnectorCancelledError(f"{self._label} read was cancelled")
                item = getter.result()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    if self._cancel.is_set():
                        raise ConnectorCancelledError(f"{self._label} read was cancelled")
                    if isinstance(item, ConnectorError | InvalidRequestError):
                        raise item
                    raise ConnectorError(f"{self._label} read failed: {self._describe(item)}")
                yield item
        finally:
            cancel_wait.cancel()
            if thread.is_alive():
                stopping.set()
                await asyncio.to_thread(self._interrupt)
                # free a producer blocked on a full queue, then wait for it to end
                while thread.is_alive():
                    while not queue.empty():
                        queue.get_nowait()
                    await asyncio.sleep(0.05)
