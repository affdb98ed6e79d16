"""File import benchmarks: through the API (`--api`, what `make bench` runs) and at the adapter level.

    .venv/bin/python bench/files_bench.py --api [--quick]
    .venv/bin/python bench/files_bench.py [--rows 1000000] [--runs 3]

`--api` starts `ingest serve` (API + in-process worker, its own data dir and embedded PostgreSQL) on a free
port, uploads each file with httpx (streamed multipart), sets the schema, starts the import and polls the
status until COMPLETED. It reports upload MB/s, import rows/s and MB/s (POST /import -> COMPLETED seen by the
poller), the server process's peak RSS during the import (psutil, sampled every 20 ms; the embedded
PostgreSQL excluded), and the ceiling: the fastest reader of the format into Arrow in a fresh process.
Results go to bench/out/files.json.

Each measurement runs in a fresh process (imports excluded from the timing); the median of `--runs`
is reported with rows/s, MB/s and the child's peak RSS. The import goes through `SourceFile.scan` and
`ingest.iceberg.writer.write_frame` into a pyiceberg SQL catalog (SQLite file here, to measure the
adapter alone) with a local warehouse, ending at a committed snapshot.
"""

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

from common import OUT, Server, import_through_api, run_child, stop_postgres


def generate(path: Path, rows: int) -> None:
    """12 columns: ints, decimals, dates, timestamps, booleans, short and long strings, nulls (~230 B/row)."""
    import datetime as dt

    import polars as pl

    i = pl.col("i")
    df = pl.DataFrame({"i": pl.int_range(0, rows, eager=True)}).select(
        order_id=i,
        customer_id=(i * 7919) % 100_000,
        quantity=(i % 50) + 1,
        unit_price=((i * 37) % 100_000) / 100,
        discount=pl.when(i % 5 < 2).then(None).otherwise((i % 20) / 100),
        order_date=pl.lit(dt.date(2020, 1, 1)) + pl.duration(days=(i * 7) % 3650),
        created_at=pl.lit(dt.datetime(2024, 1, 1)) + pl.duration(seconds=(i * 7907) % 31_536_000),
        is_paid=(i % 3) == 0,
        is_gift=pl.when(i % 4 == 2).then(None).otherwise(i % 2 == 0),
        country=pl.format("C{}", i % 6),
        customer_name=pl.format("Customer {} {}", i, (i * 31) % 997),
        comment=pl.format(
            "Order {} shipped by standard carrier; note: please leave the parcel at the front desk"
            " of building {} (ring twice, ask for the duty manager)",
            i,
            (i * 13) % 10_007,
        ),
    )
    df.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S")


def child_read(csv: Path) -> dict[str, float]:
    import polars as pl

    start = time.perf_counter()
    table = pl.read_csv(csv, try_parse_dates=True).to_arrow()
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "rows": table.num_rows}


def child_import(csv: Path) -> dict[str, float]:
    from ingest.core.settings import Settings
    from ingest.formats import FileFormat, SourceFile
    from ingest.iceberg import Warehouse

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        settings = Settings.from_env(
            environ={}, data_dir=Path(tmp), catalog_uri=f"sqlite:///{tmp}/catalog.db"
        )
        warehouse = Warehouse.from_settings(settings)
        import uuid

        tenant = uuid.uuid4()
        source = SourceFile(csv, FileFormat.CSV)
        start = time.perf_counter()
        result = warehouse.write_frame(
            tenant,
            "bench",
            "orders",
            source.scan,
            job_id="bench-1",
            column_mappings={"customer_name": "customer"},
            explain=source.explain,
            progress=lambda rows: None,
        )
        elapsed = time.perf_counter() - start
        return {"seconds": elapsed, "rows": result.rows_written}


# --- through the API ----------------------------------------------------------------------------------

FORMAT_FILES = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "xlsx": "xlsx"}


def data_file(fmt: str, rows: int) -> Path:
    """The 12-column test table in `fmt`, generated once into bench/out."""
    OUT.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"orders_{rows}.csv"
    if not csv.exists():
        generate(csv, rows)
    if fmt == "csv":
        return csv
    path = OUT / f"orders_{rows}.{fmt}"
    if path.exists():
        return path
    import polars as pl

    df = pl.read_csv(csv, try_parse_dates=True)
    if fmt == "jsonl":
        df.write_ndjson(path)
    elif fmt == "parquet":
        df.write_parquet(path)
    elif fmt == "xlsx":
        import openpyxl

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("orders")
        sheet.append(df.columns)
        for row in df.iter_rows():
            sheet.append(list(row))
        book.save(path)
    return path


def child_ceiling(path: Path, fmt: str) -> dict[str, float]:
    """The fastest reader of the format, file -> Arrow (docs/performance-facts)."""
    import polars as pl

    start = time.perf_counter()
    if fmt == "csv":
        rows = pl.read_csv(path, try_parse_dates=True).to_arrow().num_rows
    elif fmt == "jsonl":
        rows = pl.read_ndjson(path).to_arrow().num_rows
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).num_rows
    else:
        import fastexcel

        rows = fastexcel.read_excel(path).load_sheet(0).to_arrow().num_rows
    return {"seconds": time.perf_counter() - start, "rows": rows}


def api_import(
    server: Server, path: Path, table: str, schema: dict[str, object] | None = None
) -> dict[str, float]:
    """Upload (streamed), schema, import, poll status: one file through the API."""
    size_mb = path.stat().st_size / 1e6
    run = import_through_api(
        server,
        path,
        {"targetTableName": table, "columnMappings": {"customer_name": "customer"}, **(schema or {})},
        poll=0.05,
    )
    return {
        "upload_seconds": run["upload_seconds"],
        "upload_mb_s": size_mb / run["upload_seconds"],
        "import_seconds": run["import_seconds"],
        "rows": run["status"]["recordsImported"],
        "rejected": run["status"].get("recordsRejected") or 0,
        "cpu_seconds": run["cpu_seconds"],
        "peak_rss_mb": run["peak_rss_mb"],
    }


def run_api_case(fmt: str, rows: int, runs: int) -> dict[str, object]:
    path = data_file(fmt, rows)
    size_mb = path.stat().st_size / 1e6
    ceilings = [run_ceiling(path, fmt) for _ in range(runs)]
    with tempfile.TemporaryDirectory(prefix="ingest-bench-api-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)
        server = Server(data_dir)
        try:
            server.wait_ready()
            results = [api_import(server, path, f"orders_{i}") for i in range(runs)]
        finally:
            server.stop()
            stop_postgres(data_dir)
    assert all(r["rows"] == rows for r in results), results
    ceiling_s = statistics.median(c["seconds"] for c in ceilings)
    import_s = statistics.median(r["import_seconds"] for r in results)
    upload_s = statistics.median(r["upload_seconds"] for r in results)
    return {
        "format": fmt,
        "rows": rows,
        "file_mb": round(size_mb, 1),
        "runs": runs,
        "upload_mb_s": round(size_mb / upload_s, 1),
        "import_seconds": round(import_s, 3),
        "import_rows_s": round(rows / import_s),
        "import_mb_s": round(size_mb / import_s, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results)),
        "ceiling_seconds": round(ceiling_s, 3),
        "ceiling_rows_s": round(rows / ceiling_s),
        "ratio_to_ceiling": round(ceiling_s / import_s, 3),
        "each_run": results,
    }


def run_ceiling(path: Path, fmt: str) -> dict[str, float]:
    return run_child(__file__, "ceiling", "--csv", str(path), "--format", fmt)


API_CASES = [
    ("csv", 1_000_000, 3),
    ("csv", 5_000_000, 1),
    ("jsonl", 1_000_000, 3),
    ("parquet", 1_000_000, 3),
    ("xlsx", 200_000, 3),
]


def api_main(cases: list[tuple[str, int, int]]) -> list[dict[str, object]]:
    results = []
    for fmt, rows, runs in cases:
        print(f"... {fmt} {rows} rows x{runs}", flush=True)
        results.append(run_api_case(fmt, rows, runs))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "files.json").write_text(json.dumps(results, indent=2))
    header = (
        f"{'format':8s} {'rows':>9s} {'MB':>7s} {'runs':>4s} {'upload MB/s':>11s} {'import s':>9s}"
        f" {'rows/s':>9s} {'MB/s':>7s} {'peak RSS MB':>11s} {'ceiling rows/s':>14s} {'ratio':>6s}"
    )
    print(header)
    for r in results:
        print(
            f"{r['format']:8s} {r['rows']:>9d} {r['file_mb']:>7.1f} {r['runs']:>4d} {r['upload_mb_s']:>11.1f}"
            f" {r['import_seconds']:>9.2f} {r['import_rows_s']:>9d} {r['import_mb_s']:>7.1f}"
            f" {r['peak_rss_mb']:>11d} {r['ceiling_rows_s']:>14d} {r['ratio_to_ceiling']:>6.2f}"
        )
    return results


# --- onError skip: a file with 1% bad rows against a clean one -----------------------------------------

SAMPLE_ROWS = 10_000  # the csv's types come from its first rows: bad values after them are rejected rows
SKIP = {"onError": "skip", "maxErrorRatio": 0.02}


def dirty_file(rows: int) -> tuple[Path, int]:
    """The 12-column csv with 1% of its rows bad (after the type sample): a bad integer, an amount with
    more decimals than its DECIMAL(18,2) holds, or a date that does not exist, in turn."""
    clean = data_file("csv", rows)
    path = OUT / f"orders_{rows}_dirty.csv"
    bad = 0
    with clean.open() as src, path.open("w") as out:
        out.write(next(src))
        for i, line in enumerate(src, start=1):
            if i > SAMPLE_ROWS and i % 99 == 0:
                # the first 8 columns hold no commas (order_id ... is_paid)
                cells = line.split(",", 8)
                kind = (i // 99) % 3
                if kind == 0:
                    cells[2] = "n/a"  # quantity: INTEGER
                elif kind == 1:
                    cells[4] = "0.125"  # discount: DECIMAL(18,2), never rounded
                else:
                    cells[5] = "2024-02-30"  # order_date: DATE
                line = ",".join(cells)
                bad += 1
            out.write(line)
    return path, bad


def forgiving_main(rows: int, runs: int) -> dict[str, object]:
    """Interleaved rounds on one server: clean (abort, the default), clean under skip, dirty under skip."""
    clean = data_file("csv", rows)
    dirty, bad = dirty_file(rows)
    cases = {"clean_abort": (clean, None), "clean_skip": (clean, SKIP), "dirty_skip": (dirty, SKIP)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-forgiving-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)
        server = Server(data_dir)
        try:
            server.wait_ready()
            for round_ in range(runs):
                for name, (path, schema) in cases.items():
                    result = api_import(server, path, f"{name}_{round_}", schema)
                    results[name].append(result)
                    print(f"... round {round_ + 1} {name}: {result['import_seconds']:.2f} s", flush=True)
        finally:
            server.stop()
            stop_postgres(data_dir)
    assert all(r["rows"] == rows for name in ("clean_abort", "clean_skip") for r in results[name]), results
    assert all(r["rows"] == rows - bad and r["rejected"] == bad for r in results["dirty_skip"]), results
    medians = {name: statistics.median(r["import_seconds"] for r in rs) for name, rs in results.items()}
    cpu = {name: statistics.median(r["cpu_seconds"] for r in rs) for name, rs in results.items()}
    summary: dict[str, object] = {
        "rows": rows,
        "bad_rows": bad,
        "runs": runs,
        "median_seconds": {k: round(v, 3) for k, v in medians.items()},
        "median_cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_dirty_skip_over_clean_abort": round(cpu["dirty_skip"] / cpu["clean_abort"], 3),
        "cpu_clean_skip_over_clean_abort": round(cpu["clean_skip"] / cpu["clean_abort"], 3),
        "peak_rss_mb": {k: round(max(r["peak_rss_mb"] for r in rs)) for k, rs in results.items()},
        "dirty_skip_over_clean_abort": round(medians["dirty_skip"] / medians["clean_abort"], 3),
        "clean_skip_over_clean_abort": round(medians["clean_skip"] / medians["clean_abort"], 3),
        "dirty_skip_over_clean_skip": round(medians["dirty_skip"] / medians["clean_skip"], 3),
        "each_run": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "forgiving.json").write_text(json.dumps(summary, indent=2))
    print(f"{rows} rows, {bad} bad (1%), medians of {runs} interleaved runs:")
    for name, seconds in medians.items():
        rss_mb = summary["peak_rss_mb"][name]  # type: ignore[index]
        print(f"  {name:12s} {seconds:6.2f} s  server CPU {cpu[name]:6.2f} s  peak RSS {rss_mb:5d} MB")
    print(
        f"  dirty skip / clean abort: {summary['dirty_skip_over_clean_abort']:.2f}x wall,"
        f" {summary['cpu_dirty_skip_over_clean_abort']:.2f}x CPU (aim <= 1.30)"
    )
    print(
        f"  clean skip / clean abort: {summary['clean_skip_over_clean_abort']:.2f}x wall,"
        f" {summary['cpu_clean_skip_over_clean_abort']:.2f}x CPU"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["read", "import", "ceiling"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--format", default="csv")
    parser.add_argument("--api", action="store_true", help="the API benchmark (what `make bench` runs)")
    parser.add_argument("--quick", action="store_true", help="with --api: small files, one run each")
    parser.add_argument(
        "--forgiving",
        action="store_true",
        help="onError skip: 1%% bad rows against a clean file (--rows, --runs)",
    )
    args = parser.parse_args()

    if args.forgiving:
        forgiving_main(args.rows, args.runs)
        return

    if args.api:
        cases = (
            [(f, 100_000 if r > 200_000 else 20_000, 1) for f, r, _ in API_CASES] if args.quick else API_CASES
        )
        api_main(cases)
        return
    if args.child == "ceiling":
        result = child_ceiling(args.csv, args.format)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    if args.child:
        result = child_read(args.csv) if args.child == "read" else child_import(args.csv)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"orders_{args.rows}.csv"
    if not csv.exists():
        generate(csv, args.rows)
    size_mb = csv.stat().st_size / 1e6
    print(
        f"{args.rows} rows, {size_mb:.0f} MB ({csv.stat().st_size / args.rows:.0f} B/row), runs={args.runs}"
    )
    medians = {}
    for mode in ("read", "import"):
        results = [run_child(__file__, mode, "--csv", str(csv)) for _ in range(args.runs)]
        assert all(r["rows"] == args.rows for r in results), results
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["peak_rss_mb"] for r in results)
        medians[mode] = seconds
        label = "polars read_csv -> Arrow" if mode == "read" else "import -> committed snapshot"
        print(
            f"{label:32s} {seconds:6.2f} s  {args.rows / seconds / 1e3:7.0f} k rows/s"
            f"  {size_mb / seconds:6.0f} MB/s  peak RSS {rss:5.0f} MB"
        )
    print(f"import / read time ratio: {medians['import'] / medians['read']:.2f}x")


if __name__ == "__main__":
    main()
