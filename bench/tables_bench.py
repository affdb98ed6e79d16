"""Table care benchmark: maintenance of a table made by many small appends; partitioned vs unpartitioned scan.

`.venv/bin/python bench/tables_bench.py [--appends 500] [--rows 1000000]` (also run by `bench/run.py`);
results in `bench/out/tables.json`. The tables live in a temporary warehouse with pyiceberg's SQL catalog
on SQLite (the same code paths as the service; only the catalog's database differs).
"""

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import polars as pl
from pyiceberg.expressions import EqualTo

from ingest.core.settings import Settings
from ingest.iceberg import MaintenancePolicy, Warehouse
from ingest.iceberg.partitioning import PartitionField

OUT = Path(__file__).resolve().parent / "out"


def warehouse_in(tmp: Path) -> Warehouse:
    settings = Settings.from_env(
        environ={}, data_dir=tmp, catalog_uri=f"sqlite:///{tmp}/catalog.db", warehouse=(tmp / "wh").as_uri()
    )
    return Warehouse.from_settings(settings)


def maintenance_bench(wh: Warehouse, appends: int) -> dict[str, object]:
    tenant = uuid.uuid4()
    started = time.perf_counter()
    for i in range(appends):
        frame = pl.DataFrame(
            {
                "id": list(range(i * 20, i * 20 + 20)),
                "label": [f"row-{i}-{j}" for j in range(20)],
                "v": [i * 0.5] * 20,
            }
        )
        wh.write_frame(tenant, "bench", "small", frame.lazy(), job_id=f"import-{uuid.uuid4()}")
    append_seconds = time.perf_counter() - started
    before = wh.health(tenant, "bench", "small", 128 * 1024**2)
    rows_before = wh.read_all(tenant, "bench", "small").sort("id")
    policy = MaintenancePolicy(
        retention=dt.timedelta(0),
        keep_last=10,
        orphan_min_age=dt.timedelta(0),
        target_file_bytes=128 * 1024**2,
    )
    started = time.perf_counter()
    result = wh.maintain(tenant, "bench", "small", policy)
    seconds = time.perf_counter() - started
    after = wh.health(tenant, "bench", "small", 128 * 1024**2)
    rows_after = wh.read_all(tenant, "bench", "small").sort("id")
    return {
        "appends": appends,
        "append_seconds_total": round(append_seconds, 2),
        "maintenance_seconds": round(seconds, 2),
        "data_files_before": before.data_files,
        "data_files_after": after.data_files,
        "snapshots_before": before.snapshots,
        "snapshots_after": after.snapshots,
        "avg_file_bytes_before": before.data_bytes // max(before.data_files, 1),
        "avg_file_bytes_after": after.data_bytes // max(after.data_files, 1),
        "orphan_files_removed": result.orphan_files_removed,
        "rows": rows_after.height,
        "rows_unchanged": rows_before.equals(rows_after),
    }


def scan_bench(wh: Warehouse, rows: int, runs: int = 3) -> dict[str, object]:
    tenant = uuid.uuid4()
    days = 100
    frame = pl.DataFrame(
        {
            "id": pl.arange(0, rows, eager=True),
            "day": pl.Series([dt.date(2026, 1, 1) + dt.timedelta(days=i % days) for i in range(rows)]),
            "region": pl.Series([f"r{i % 8}" for i in range(rows)]),
            "amount": pl.arange(0, rows, eager=True) * 0.25,
        }
    )
    wanted = dt.date(2026, 1, 1) + dt.timedelta(days=42)
    out: dict[str, object] = {"rows": rows, "filter": f"day = {wanted}", "days": days}
    for name, spec in (("unpartitioned", None), ("partitioned_by_day", [PartitionField("day", "day")])):
        started = time.perf_counter()
        wh.write_frame(
            tenant, "bench", name, frame.lazy(), job_id=f"import-{uuid.uuid4()}", partition_spec=spec
        )
        write_seconds = time.perf_counter() - started
        table = wh.catalog.load_table(wh.ref(tenant, "bench", name).identifier)
        total_files = len(list(table.scan().plan_files()))
        times, planned, matched = [], 0, 0
        for _ in range(runs):
            started = time.perf_counter()
            scan = table.scan(row_filter=EqualTo("day", wanted))
            planned = len(list(scan.plan_files()))
            matched = scan.to_arrow().num_rows
            times.append(time.perf_counter() - started)
        out[name] = {
            "write_seconds": round(write_seconds, 2),
            "data_files": total_files,
            "files_planned": planned,
            "rows_matched": matched,
            "scan_seconds_median": round(statistics.median(times), 3),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tables-bench-") as tmp:
        wh = warehouse_in(Path(tmp))
        results = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "load_1min": round(os.getloadavg()[0], 2),
            "maintenance": maintenance_bench(wh, args.appends),
            "scan": scan_bench(wh, args.rows),
            "load_1min_after": round(os.getloadavg()[0], 2),
        }
    OUT.mkdir(exist_ok=True)
    (OUT / "tables.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
