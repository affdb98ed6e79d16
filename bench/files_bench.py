"""File import benchmark, adapter level: polars CSV -> Arrow (the ceiling) vs the import pipeline.

    .venv/bin/python bench/files_bench.py [--rows 1000000] [--runs 3]

Each measurement runs in a fresh process (imports excluded from the timing); the median of `--runs`
is reported with rows/s, MB/s and the child's peak RSS. The import goes through `SourceFile.scan` and
`ingest.iceberg.writer.write_frame` into a pyiceberg SQL catalog (SQLite file here, to measure the
adapter alone) with a local warehouse, ending at a committed snapshot.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


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


def run_child(mode: str, csv: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--csv", str(csv)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=["read", "import"])
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()

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
        results = [run_child(mode, csv) for _ in range(args.runs)]
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
