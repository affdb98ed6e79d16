"""CSV encodings: what reading a cp1252 or UTF-16 CSV costs against the same data in UTF-8.

    .venv/bin/python bench/dialects_bench.py [--rows 1000000] [--runs 3]

The 12-column table of files_bench (with accented names, so the encodings differ) is written as UTF-8,
cp1252 and UTF-16 (with BOM). Each run reads each file in a fresh process through `SourceFile.scan`
(options detected, as an import does) into Arrow, and reports the seconds, the child's peak RSS and,
separately, the time the read options took to resolve (encoding detection and delimiter sniffing, the only
work a UTF-8 file gets on top of before) and the transcoding to the staged UTF-8 copy with the process's
peak RSS at its end (before the data is read into memory). Runs interleave the three files, so ratios
against UTF-8 compare runs taken under the same load. Results go to bench/out/dialects.json.
"""

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

from common import run_child

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ENCODINGS = ("utf-8", "cp1252", "utf-16")


def files(rows: int) -> dict[str, Path]:
    sys.path.insert(0, str(HERE))
    from files_bench import generate

    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / f"dialects_{rows}.utf-8.csv"
    paths = {enc: OUT / f"dialects_{rows}.{enc}.csv" for enc in ENCODINGS}
    if not base.exists():
        plain = OUT / f"dialects_{rows}.plain.csv"
        generate(plain, rows)
        # accented names, in chunks: the file is never held whole
        with plain.open(encoding="utf-8") as src, base.open("w", encoding="utf-8") as dst:
            for line in src:
                dst.write(line.replace("Customer", "Crème Brûlée"))
        plain.unlink()
    for enc, path in paths.items():
        if enc != "utf-8" and not path.exists():
            with base.open(encoding="utf-8") as src, path.open("w", encoding=enc) as dst:
                while chunk := src.read(8 * 1024**2):
                    dst.write(chunk)
    return paths


def child(path: Path) -> dict[str, float]:
    from ingest.formats import FileFormat, SourceFile

    with SourceFile(path, FileFormat.CSV) as source:
        start = time.perf_counter()
        options = source.read_options
        detect = time.perf_counter() - start
        _ = source._text_path  # the staged UTF-8 copy (none for UTF-8): what transcoding alone costs
        staged = time.perf_counter() - start - detect
        staged_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = source.scan().collect().height
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": elapsed,
        "detect_ms": detect * 1000,
        "transcode_s": staged,
        "transcode_peak_mb": staged_peak_mb,
        "rows": rows,
        "peak_mb": peak_mb,
        "encoding": options.encoding,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    paths = files(args.rows)
    results: dict[str, list[dict[str, float]]] = {enc: [] for enc in ENCODINGS}
    for _ in range(args.runs):
        for enc in ENCODINGS:  # interleaved: each round sees the same load
            results[enc].append(run_child(__file__, str(paths[enc])))
    base = statistics.median(r["seconds"] for r in results["utf-8"])
    summary = {}
    for enc in ENCODINGS:
        runs = results[enc]
        seconds = statistics.median(r["seconds"] for r in runs)
        summary[enc] = {
            "detected": runs[0]["encoding"],
            "mb": round(paths[enc].stat().st_size / 1e6),
            "seconds": round(seconds, 2),
            "detect_ms": round(statistics.median(r["detect_ms"] for r in runs), 1),
            "transcode_s": round(statistics.median(r["transcode_s"] for r in runs), 2),
            "transcode_peak_mb": round(statistics.median(r["transcode_peak_mb"] for r in runs)),
            "peak_mb": round(statistics.median(r["peak_mb"] for r in runs)),
            "vs_utf8": round(seconds / base, 2),
        }
        print(enc, summary[enc])
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    (OUT / "dialects.json").write_text(
        json.dumps({"rows": args.rows, "load": load, "results": summary}, indent=2)
    )


if __name__ == "__main__":
    main()
