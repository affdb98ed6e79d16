"""`make bench`: files, syncs, database sources, rate-limit overhead, per-request cost, table care, mail
imports, IMAP, chunked vs one-request uploads, CSV encodings."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    code = subprocess.call([sys.executable, str(HERE / "files_bench.py"), "--api", *sys.argv[1:]])
    # onError skip: 1M rows with 1% bad rows against the clean file, interleaved
    forgiving = [
        sys.executable,
        str(HERE / "files_bench.py"),
        "--forgiving",
        "--rows",
        "1000000",
        "--runs",
        "3",
    ]
    code = subprocess.call(forgiving) or code
    syncs = HERE / "syncs_bench.py"
    if syncs.exists():
        code = subprocess.call([sys.executable, str(syncs)]) or code
    else:
        print("bench/syncs_bench.py not found: sync benchmark skipped")
    # database sources: PostgreSQL `orders` through the API against the server's export and dlt, at 1M (with
    # MySQL) and 5M rows: the aims are ratios at both sizes and the peak RSS growth between them
    databases = [sys.executable, str(HERE / "databases_bench.py"), "--dlt-venv"]
    code = subprocess.call([*databases, "--rows", "1000000", "--mysql"]) or code
    code = subprocess.call([*databases, "--rows", "5000000"]) or code
    code = subprocess.call([sys.executable, str(HERE / "ratelimit_bench.py")]) or code
    code = subprocess.call([sys.executable, str(HERE / "request_bench.py")]) or code
    code = subprocess.call([sys.executable, str(HERE / "tables_bench.py")]) or code
    # mailbox files: a 100k-message mbox through the API against the standard library's mbox reader
    code = subprocess.call([sys.executable, str(HERE / "mail_bench.py")]) or code
    # an IMAP mailbox of 10k messages (a Dovecot started for the run) through the API
    code = subprocess.call([sys.executable, str(HERE / "imap_bench.py")]) or code
    # resumable (tus) chunked uploads against the one-request upload, interleaved
    code = subprocess.call([sys.executable, str(HERE / "uploads_bench.py")]) or code
    # CSV encodings: UTF-8 read in place vs cp1252 and UTF-16 transcoded
    code = subprocess.call([sys.executable, str(HERE / "dialects_bench.py")]) or code
    return code


if __name__ == "__main__":
    sys.exit(main())
