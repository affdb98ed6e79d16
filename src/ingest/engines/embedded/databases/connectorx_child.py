"""Run one ConnectorX query in a process of its own and stream the result to stdout as Arrow IPC.

ConnectorX holds Python's GIL while it waits for the server's rows (measured: a thread ticking every 50 ms
saw one 1.96 s gap during a `SELECT SLEEP(2)`), which would freeze the service's event loop (API, job
heartbeats, progress) for as long as a slow query runs. So the query runs here, started as a plain script
(`python connectorx_child.py`, no `ingest` import), and the service reads the pipe, which blocks without the
GIL and pushes back on this process when the sync is slower than the database.

stdin: one JSON object {"url", "query", "batch_rows", "pre_execution_query"} (the URL carries the password,
so it never goes on the command line). stdout: an Arrow IPC stream. On failure: the error's text on
stderr and exit status 1. On Linux the child dies with the thread that started it (PR_SET_PDEATHSIG), so a
service process killed while the database is still computing the first rows leaves no reader behind.
"""

import json
import sys


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import os
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent was gone before the request took effect
        os._exit(1)


def main() -> int:
    job = json.loads(sys.stdin.read())
    _die_with_parent(int(job["parent"]))
    try:
        import connectorx
        import pyarrow as pa

        reader = connectorx.read_sql(
            job["url"],
            job["query"],
            return_type="arrow_stream",
            batch_size=int(job["batch_rows"]),
            pre_execution_query=job["pre_execution_query"],
        )
        with pa.ipc.new_stream(sys.stdout.buffer, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except BrokenPipeError:
        return 0  # the reader went away (cancel, or a failure on its side): nothing to say
    except BaseException as exc:
        sys.stderr.write(" ".join(str(exc).split())[:2000] or type(exc).__name__)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
