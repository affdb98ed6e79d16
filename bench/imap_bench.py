"""IMAP source benchmark (issue 16): a 10,000-message mailbox -> Iceberg through the API, against the raw IMAP
fetch of the same messages and that fetch plus the shared message parser.

    .venv/bin/python bench/imap_bench.py [--messages 10000] [--runs 3]

A Dovecot (tests/imap_server.py; `make dovecot` installs it) is started for the run on free ports, and one
user's INBOX is seeded over IMAP APPEND with `--messages` messages (every 10th multipart with a 20 KB base64
attachment, every 7th with an RFC 2047 unicode subject, the rest plain text of 1-4 KB; about 4.6 KB a
message on average). Then, round by round (so load drift on the shared machine hits all three alike):

1. fetch: IMAPClient in this process, `EXAMINE INBOX`, `BODY.PEEK[]` of every message in chunks of 200, the
   bytes thrown away: what the server and the transport can give (the ceiling).
2. fetch + parse: the same, each message through `ingest.mail.parse_message` (rows kept per chunk only):
   the ceiling of any reader built on the shared model.
3. ingest: a fresh `ingest serve` (API + in-process worker) on its own data dir, an `imap` source over
   STARTTLS, a FULL_REFRESH connection of the `messages` stream, trigger -> SUCCEEDED seen by a 0.1 s
   poller; peak RSS of the server process (sampled every 50 ms).

Medians of `--runs` rounds; ratios against the fetch measured in the same round. Results:
bench/out/imap.json and a table on stdout.
"""

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from databases_bench import run_ingest  # noqa: E402
from syncs_bench import OUT, Sampler, Service, mb  # noqa: E402
from tests.imap_server import dovecot  # noqa: E402

PASSWORD = "bench-imap-password"
CHUNK = 200


def message(i: int) -> bytes:
    subject = f"Message {i}"
    if i % 7 == 0:
        subject = "=?utf-8?b?" + base64.b64encode(f"Grüße Nr. {i} — 東京".encode()).decode() + "?="
    head = (
        f"From: Sender {i % 97} <sender{i % 97}@example.com>\r\nTo: alice@example.com\r\n"
        f"Subject: {subject}\r\nDate: Mon, 02 Dec 2024 10:{i % 60:02d}:00 +0100\r\n"
        f"Message-ID: <bench-{i}@example.com>\r\nMIME-Version: 1.0\r\n"
    )
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * (20 + i % 60)) + "\r\n"
    if i % 10:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    attachment = base64.encodebytes(os.urandom(20_000)).decode().replace("\n", "\r\n")
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + text
        + '--b\r\nContent-Type: application/octet-stream; name="data.bin"\r\n'
        + "Content-Disposition: attachment; filename=data.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + "--b--\r\n"
    ).encode()


def seed(server: Any, count: int) -> int:
    from imapclient import IMAPClient

    client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.login("alice", PASSWORD)
    total = 0
    for start in range(0, count, 500):
        batch = [message(i) for i in range(start, min(count, start + 500))]
        total += sum(len(m) for m in batch)
        client.multiappend("INBOX", batch)
    client.logout()
    return total


def fetch_all(server: Any, parse: bool) -> dict[str, Any]:
    from imapclient import IMAPClient

    from ingest.mail import parse_message

    with Sampler(os.getpid()) as rss:
        start = time.perf_counter()
        client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
        client.login("alice", PASSWORD)
        client.select_folder("INBOX", readonly=True)
        uids = client.search()
        count = nbytes = 0
        for offset in range(0, len(uids), CHUNK):
            fetched = client.fetch(uids[offset : offset + CHUNK], ["BODY.PEEK[]"])
            rows = []
            for data in fetched.values():
                raw = data[b"BODY[]"]
                nbytes += len(raw)
                count += 1
                if parse:
                    rows.append(parse_message(raw, folders=["INBOX"]))
        client.logout()
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "rows": count, "bytes": nbytes, "peak_rss_mb": mb(rss.peak_self)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "imap-work"
    results: dict[str, Any] = {"messages": args.messages, "load_start": os.getloadavg(), "rounds": []}
    with dovecot({"alice": PASSWORD}) as server:
        start = time.perf_counter()
        results["mailbox_bytes"] = seed(server, args.messages)
        results["seed_seconds"] = round(time.perf_counter() - start, 1)
        service = Service(work / f"ingest-data-{os.getpid()}", OUT / "connectors" / "none")
        service.migrate()
        config = {
            "host": "127.0.0.1",
            "port": server.port,
            "tls": "starttls",
            "tls_ca_certificate": server.cert_pem,
            "username": "alice",
            "password": PASSWORD,
            "folders": ["INBOX"],
        }
        try:
            for _ in range(args.runs):
                round_result = {
                    "fetch": fetch_all(server, parse=False),
                    "fetch_parse": fetch_all(server, parse=True),
                    "ingest": run_ingest(service, "imap", config, "messages"),
                    "load": os.getloadavg(),
                }
                results["rounds"].append(round_result)
                print(json.dumps(round_result), flush=True)
        finally:
            service.stop()
            service.stop_postgres()
            shutil.rmtree(service.data_dir, ignore_errors=True)  # ~110 MB a run; the figures are in imap.json
    results["load_end"] = os.getloadavg()

    def med(kind: str, key: str) -> float:
        return float(statistics.median(r[kind][key] for r in results["rounds"]))

    summary = {}
    for kind in ("fetch", "fetch_parse", "ingest"):
        seconds = med(kind, "seconds")
        summary[kind] = {
            "seconds": seconds,
            "messages_per_s": round(args.messages / seconds),
            "peak_rss_mb": med(kind, "peak_rss_mb"),
            "ratio_to_fetch": round(
                statistics.median(r["fetch"]["seconds"] / r[kind]["seconds"] for r in results["rounds"]), 3
            ),
            "ratio_to_fetch_parse": round(
                statistics.median(
                    r["fetch_parse"]["seconds"] / r[kind]["seconds"] for r in results["rounds"]
                ),
                3,
            ),
        }
    summary["ingest"]["read_seconds"] = med("ingest", "read_seconds")
    summary["ingest"]["commit_seconds"] = med("ingest", "commit_seconds")
    summary["ingest"]["idle_rss_mb"] = med("ingest", "idle_rss_mb")
    results["summary"] = summary
    (OUT / "imap.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"messages={args.messages} mailbox={mb(results['mailbox_bytes'])} MB load={results['load_start']}")
    for kind, value in summary.items():
        print(
            f"{kind:12} {value['seconds']:8.2f} s {value['messages_per_s']:8,} msg/s "
            f"{value['peak_rss_mb']:7.1f} MB peak  {value['ratio_to_fetch']:.3f} of fetch  "
            f"{value['ratio_to_fetch_parse']:.3f} of fetch + parse"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
