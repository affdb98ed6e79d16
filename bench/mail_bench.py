"""Mailbox import benchmark: a 100k-message mbox through the API, against the standard library's reader.

    .venv/bin/python bench/mail_bench.py [--messages 100000] [--runs 3]

The mbox mixes plain messages (4 Received headers), text+HTML alternatives, messages with a 24 KB
base64 attachment (one in ten), RFC 2047 subjects with quoted-printable Latin-1 bodies, and threads
(every third message replies). Each round runs, in this order (interleaved, the machine being shared):

- baseline: the standard library alone in a fresh process: `mailbox.mbox` iterated (it scans the file for
  its table of contents first) and each message parsed by `email` (`BytesParser`, compat32): what any
  mbox importer pays before doing anything with the messages. Peak RSS from getrusage.
- reader (with `--reader`): `ingest.formats.mail.mail_reader` drained in a fresh process (parse and
  Arrow batches, no write).
- api: `ingest serve` (API + in-process worker, its own data dir and embedded PostgreSQL): upload, schema,
  import, status polled to COMPLETED; import seconds from POST /import to COMPLETED; the server's peak
  RSS while importing (the embedded PostgreSQL excluded), as bench/files_bench.py measures it.

Medians of `--runs` rounds; ratios are baseline seconds / candidate seconds of the same run.
Results go to bench/out/mail.json.
"""

import argparse
import json
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import OUT, Server, import_through_api, run_child, stop_postgres

_RECEIVED = "".join(
    f"Received: from mx{i}.example.net (mx{i}.example.net [192.0.2.{i}]) by mail.example.com"
    f" with ESMTPS id Q{i}x{{i}}; Tue, 1 Dec 2026 10:0{i}:00 +0100\n"
    for i in range(4)
)
_PLAIN = (
    "From: Alice Example <alice{a}@example.com>\nTo: Bob <bob@example.com>, carol@example.com\n"
    "Subject: Quarterly numbers, part {i}\nDate: Tue, 1 Dec 2026 10:{m:02d}:00 +0100\n"
    "Message-ID: <msg-{i}@example.com>\n{thread}" + _RECEIVED + "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    + "Hello Bob, here are the figures for line {i}. Nothing unusual this week.\n"
    * 16
)
_ALTERNATIVE = (
    "From: Dora <dora{a}@example.org>\nTo: team@example.com\nSubject: Weekly digest {i}\n"
    "Date: Wed, 2 Dec 2026 09:{m:02d}:00 -0500\nMessage-ID: <msg-{i}@example.com>\n{thread}"
    'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="alt{i}"\n\n'
    "--alt{i}\nContent-Type: text/plain; charset=utf-8\n\n"
    + "Digest entry {i}: all systems nominal.\n" * 12
    + "--alt{i}\nContent-Type: text/html; charset=utf-8\n\n<html><body>"
    + "<p>Digest entry {i}: <b>all systems nominal</b>.</p>\n" * 12
    + "</body></html>\n--alt{i}--\n"
)
_ATTACHED = (
    "From: Erin <erin{a}@example.com>\nTo: bob@example.com\nSubject: Report {i}\n"
    "Date: Thu, 3 Dec 2026 14:{m:02d}:00 +0000\nMessage-ID: <msg-{i}@example.com>\n{thread}"
    'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="mix{i}"\n\n'
    "--mix{i}\nContent-Type: text/plain; charset=utf-8\n\nThe report is attached.\n"
    '--mix{i}\nContent-Type: application/pdf; name="report-{i}.pdf"\n'
    'Content-Disposition: attachment; filename="report-{i}.pdf"\nContent-Transfer-Encoding: base64\n\n'
    "{attachment}\n--mix{i}--\n"
)
_ENCODED = (
    "From: =?iso-8859-1?q?Fran=E7ois?= <francois{a}@example.fr>\nTo: zoe@example.com\n"
    "Subject: =?utf-8?b?UsOpdW5pb24g5pel5pys6Kqe?= {i}\nDate: Fri, 4 Dec 2026 08:{m:02d}:00 +0900\n"
    "Message-ID: <msg-{i}@example.com>\n{thread}MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
    + "Ch=E8re Zo=EB, voici le num=E9ro {i}.\n"
    * 14
)


def generate(path: Path, messages: int) -> None:
    import base64

    blob = base64.encodebytes(bytes(range(256)) * 96).decode()  # 24 KB decoded
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for i in range(messages):
            thread = f"In-Reply-To: <msg-{i - 1}@example.com>\nReferences: <msg-{i - 1}@example.com>\n"
            values = {"i": i, "a": i % 97, "m": i % 60, "thread": thread if i % 3 else "", "attachment": blob}
            template = _ATTACHED if i % 10 == 9 else (_PLAIN, _ALTERNATIVE, _ENCODED)[i % 3]
            f.write(f"From sender@example.com Tue Dec  1 10:00:00 2026\n{template.format(**values)}\n")


def child(mode: str, path: Path) -> dict[str, float]:
    start = time.perf_counter()
    if mode == "baseline":
        import mailbox
        from email import policy
        from email.parser import BytesParser

        parser = BytesParser(policy=policy.compat32)
        box = mailbox.mbox(path, create=False)
        count = sum(1 for key in box.iterkeys() if parser.parsebytes(box.get_bytes(key)) is not None)
        box.close()
    else:
        from ingest.formats import FileFormat
        from ingest.formats.mail import mail_reader

        count = sum(batch.num_rows for batch in mail_reader(path, FileFormat.MBOX))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "messages": count, "peak_rss_mb": peak}


def run_mode(mode: str, path: Path) -> dict[str, float]:
    return run_child(__file__, mode, "--path", str(path))


def api_import(server: Server, path: Path, table: str) -> dict[str, float]:
    run = import_through_api(server, path, {"targetTableName": table}, poll=0.1)
    return {
        "seconds": run["import_seconds"],
        "messages": run["status"]["recordsImported"],
        "peak_rss_mb": run["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reader", action="store_true", help="also time the reader alone (no write)")
    parser.add_argument("--child")
    parser.add_argument("--path", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.path)))
        return

    # a SIGTERM ends the run through the `finally` below: the server and its PostgreSQL are stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="ingest-bench-mail-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        path = work / "archive.mbox"
        print(f"... generating {args.messages} messages", flush=True)
        generate(path, args.messages)
        size_mb = path.stat().st_size / 1e6
        data_dir = work / "server"
        data_dir.mkdir()
        server = Server(data_dir)
        rounds: list[dict[str, dict[str, float]]] = []
        try:
            server.wait_ready()
            for r in range(args.runs):
                print(f"... round {r + 1}/{args.runs}", flush=True)
                found = {"baseline": run_mode("baseline", path)}
                if args.reader:
                    found["reader"] = run_mode("reader", path)
                found["api"] = api_import(server, path, f"mail_{r}")
                rounds.append(found)
                print(f"    {json.dumps(rounds[-1])}", flush=True)
        finally:
            server.stop()
            stop_postgres(data_dir)

    for row in rounds:
        assert all(v["messages"] == args.messages for v in row.values()), row
    result: dict[str, object] = {"messages": args.messages, "file_mb": round(size_mb, 1), "runs": args.runs}
    modes = [m for m in ("baseline", "reader", "api") if m in rounds[0]]
    for mode in modes:
        seconds = statistics.median(r[mode]["seconds"] for r in rounds)
        result[mode] = {
            "seconds": round(seconds, 2),
            "messages_s": round(args.messages / seconds),
            "mb_s": round(size_mb / seconds, 1),
            "peak_rss_mb": round(statistics.median(r[mode]["peak_rss_mb"] for r in rounds)),
            "ratio_to_baseline": round(
                statistics.median(r["baseline"]["seconds"] / r[mode]["seconds"] for r in rounds), 3
            ),
        }
    result["each_round"] = rounds
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mail.json").write_text(json.dumps(result, indent=2))
    print(
        f"{'mode':9s} {'seconds':>8s} {'msgs/s':>8s} {'MB/s':>6s} {'peak RSS MB':>11s} {'vs baseline':>11s}"
    )
    for mode in modes:
        m = result[mode]
        assert isinstance(m, dict)
        print(
            f"{mode:9s} {m['seconds']:>8.2f} {m['messages_s']:>8d} {m['mb_s']:>6.1f}"
            f" {m['peak_rss_mb']:>11d} {m['ratio_to_baseline']:>11.3f}"
        )


if __name__ == "__main__":
    main()
