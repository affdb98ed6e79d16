"""Serve a FakeAirbyte with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.fake_airbyte.app import FakeAirbyte


@contextmanager
def serve(fake: FakeAirbyte) -> Iterator[str]:
    """Run `fake.app` until the block ends; yields the base URL (also stored on `fake.url`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app,
        log_level="warning",
        lifespan="off",
        interface="asgi3",
        access_log=False,
        # hung handlers must not hold the shutdown up
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-airbyte")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Airbyte server did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake.url
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
