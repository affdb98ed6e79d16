"""`make bench`: the file import benchmark through the API, then the sync benchmark when it exists."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    code = subprocess.call([sys.executable, str(HERE / "files_bench.py"), "--api", *sys.argv[1:]])
    syncs = HERE / "syncs_bench.py"
    if syncs.exists():
        code = subprocess.call([sys.executable, str(syncs)]) or code
    else:
        print("bench/syncs_bench.py not found: sync benchmark skipped")
    return code


if __name__ == "__main__":
    sys.exit(main())
