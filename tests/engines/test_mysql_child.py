"""The MySQL reader's ConnectorX child: rows arrive as Arrow, the caller's threads keep running while the
server is slow, failures carry the server's message, and a closed stream ends the child."""

import threading
import time

import pyarrow as pa
import pytest

from ingest.engines.embedded.databases import mysql

URL = "mysql://root:@127.0.0.1:3306/mysql"  # the machine's MariaDB, as in tests/syncs/test_databases.py


def test_rows_arrive_as_arrow_batches_of_the_asked_size() -> None:
    query = "SELECT seq AS n, CONCAT('row ', seq) AS label FROM seq_1_to_2500"
    batches = list(mysql._child_stream(URL, query, 1000))
    table = pa.Table.from_batches(batches)
    assert table.column("n").to_pylist() == list(range(1, 2501))
    assert table.column("label")[2499].as_py() == "row 2500"


def test_a_slow_query_does_not_stop_the_callers_other_threads() -> None:
    """ConnectorX in this process held the GIL for the whole wait (a 1.96 s gap in a 50 ms ticker)."""
    gaps: list[float] = []
    done = threading.Event()

    def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            time.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        rows = sum(b.num_rows for b in mysql._child_stream(URL, "SELECT SLEEP(2) AS slept", 10))
    finally:
        done.set()
        ticker.join()
    assert rows == 1
    assert len(gaps) >= 20, gaps  # the ticker ran through the 2 s wait
    assert max(gaps) < 0.75, max(gaps)


def test_a_failing_query_raises_with_the_servers_message() -> None:
    with pytest.raises(RuntimeError, match="no_such_table_x"):
        list(mysql._child_stream(URL, "SELECT * FROM no_such_table_x", 10))


def test_closing_the_stream_early_ends_the_child() -> None:
    before = _children()
    stream = mysql._child_stream(URL, "SELECT seq FROM seq_1_to_5000000", 1000)
    assert next(stream).num_rows == 1000
    stream.close()
    assert _children() == before


def _children() -> set[int]:
    import psutil

    return {
        p.pid for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"
    }


def test_the_child_dies_with_a_killed_service_process() -> None:
    """SIGKILL of the reading process (a crashed worker) while the server still computes: no reader left."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    script = (
        "import sys, threading, time\n"
        "from ingest.engines.embedded.databases import mysql\n"
        f"stream = mysql._child_stream({URL!r}, 'SELECT SLEEP(30) AS s', 10)\n"
        "threading.Thread(target=lambda: next(stream, None), daemon=True).start()\n"
        "time.sleep(60)\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        children: list[psutil.Process] = []
        while time.monotonic() < deadline and not children:
            children = [
                c
                for c in psutil.Process(reader.pid).children()
                if "connectorx_child" in " ".join(c.cmdline())
            ]
            time.sleep(0.1)
        assert children, "the reader never started its child"
        time.sleep(1)  # the child is waiting on the server's SLEEP
        os.kill(reader.pid, signal.SIGKILL)
        reader.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=5)
        assert not alive, "the ConnectorX child outlived the killed reader"
    finally:
        if reader.poll() is None:
            reader.kill()
