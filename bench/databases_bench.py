"""Database sources benchmark (issue 9): a PostgreSQL `orders` table -> Iceberg through the API, against the
server's own export rate, the candidate drivers alone, and dlt's sql_database source.

    .venv/bin/python bench/databases_bench.py [--rows 1000000] [--drivers-only] [--mysql]

What it measures, one fresh run each, on the machine's PostgreSQL at 127.0.0.1:5432 (a database created
for the run and dropped after):

1. export: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` read with psycopg and thrown away (/dev/null).
2. drivers alone, table -> Arrow batches in this process: ADBC's PostgreSQL driver (what ingest uses),
   ConnectorX (`arrow_stream`), psycopg binary COPY decoded row by row (`copy.rows()`) into Arrow.
3. ingest: `ingest serve` on a fresh data dir (API + in-process worker), a postgres source and a
   FULL_REFRESH connection, trigger -> SUCCEEDED seen by a 0.1 s poller; peak RSS of the server process.
4. dlt `sql_database` (pyarrow backend) into a local Iceberg table, when `dlt` can be imported from
   bench/out/.dlt-venv (made with `--dlt-venv`); otherwise reported as not run.

With `--mysql`: the same table in MariaDB/MySQL (127.0.0.1:3306, root), the server's export
(`mysql --batch` to /dev/null), ConnectorX alone and ingest through the API.
Results: bench/out/databases.json and a table on stdout.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from syncs_bench import OUT, Sampler, Service, mb

PG_URL = "postgresql://postgres@127.0.0.1:5432/{db}"
SELECT = "SELECT * FROM orders"
DLT_VENV = OUT / ".dlt-venv"

ORDERS = """
CREATE TABLE orders (
  id bigint PRIMARY KEY, customer_id int NOT NULL, quantity smallint, amount numeric(12,2) NOT NULL,
  discount numeric(12,2), ordered_on date NOT NULL, shipped_on date, updated_at timestamptz NOT NULL,
  paid boolean NOT NULL, gift boolean, status varchar(16) NOT NULL, note text
);
INSERT INTO orders
SELECT g, (g::bigint * 7919) % 100000, (g % 20)::smallint, ((g::bigint * 37) % 1000000) / 100.0,
       CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 1000) / 100.0 END,
       DATE '2020-01-01' + (g % 1500), CASE WHEN g % 3 = 0 THEN NULL ELSE DATE '2020-01-05' + (g % 1500) END,
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * INTERVAL '1 second', g % 2 = 0,
       CASE WHEN g % 7 = 0 THEN NULL ELSE g % 3 = 0 END,
       (ARRAY['new','paid','shipped','delivered','returned'])[g % 5 + 1],
       CASE WHEN g % 4 = 0 THEN NULL ELSE repeat('order note ' || g, 1 + g % 6) END
FROM generate_series(1, {rows}) g;
ANALYZE orders;
"""


def timed(fn: Any) -> dict[str, Any]:
    with Sampler(os.getpid()) as rss:
        start = time.perf_counter()
        rows = fn()
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 3), "rows": rows, "peak_rss_mb": mb(rss.peak_self)}


def pg_copy_export(url: str) -> int:
    import psycopg

    total = 0
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        open(os.devnull, "wb") as sink,
        cur.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT binary)") as copy,
    ):
        for block in copy:
            sink.write(block)
            total += len(block)
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]


def pg_adbc(url: str) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    rows = 0
    with adbc.connect(url) as conn, conn.cursor() as cur:
        cur.execute(SELECT)
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
    return rows


def pg_connectorx(url: str) -> int:
    import connectorx

    rows = 0
    for batch in connectorx.read_sql(url, SELECT, return_type="arrow_stream", batch_size=65536):
        rows += batch.num_rows
    return rows


def pg_psycopg_copy(url: str) -> int:
    """psycopg's binary COPY decodes to Python values row by row; then pa.Table.from_pylist per 64k rows."""
    import psycopg

    rows = 0
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY ({SELECT}) TO STDOUT (FORMAT binary)") as copy,
    ):
        copy.set_types(
            [
                "int8",
                "int4",
                "int2",
                "numeric",
                "numeric",
                "date",
                "date",
                "timestamptz",
                "bool",
                "bool",
                "varchar",
                "text",
            ]
        )
        names = [
            "id",
            "customer_id",
            "quantity",
            "amount",
            "discount",
            "ordered_on",
            "shipped_on",
            "updated_at",
            "paid",
            "gift",
            "status",
            "note",
        ]
        buffer: list[tuple[Any, ...]] = []
        for row in copy.rows():
            buffer.append(row)
            if len(buffer) == 65536:
                rows += pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in buffer]).num_rows
                buffer = []
        if buffer:
            rows += pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in buffer]).num_rows
    return rows


def run_ingest(service: Service, connector: str, config: dict[str, Any], stream: str) -> dict[str, Any]:
    service.start()
    try:
        assert service.process is not None
        tenant = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {service.token(tenant)}", "X-Tenant-Id": tenant}
        with httpx.Client(base_url=service.base, headers=headers, timeout=600) as client:
            response = client.post(
                "/api/v1/sources",
                json={"name": "bench", "connectorType": connector, "connectionConfig": config},
            )
            response.raise_for_status()
            source_id = response.json()["id"]
            response = client.post(
                "/api/v1/connections",
                json={"sourceId": source_id, "name": "bench", "selectedStreams": [stream]},
            )
            response.raise_for_status()
            connection_id = response.json()["id"]
            idle = psutil.Process(service.process.pid).memory_info().rss
            with Sampler(service.process.pid) as rss:
                start = time.perf_counter()
                response = client.post(f"/api/v1/syncs/connections/{connection_id}/trigger")
                response.raise_for_status()
                sync_id = response.json()["id"]
                while True:
                    sync = client.get(f"/api/v1/syncs/{sync_id}").json()
                    if sync["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                        break
                    time.sleep(0.1)
                seconds = time.perf_counter() - start
        if sync["status"] != "SUCCEEDED":
            raise RuntimeError(f"sync {sync['status']}: {sync.get('errorMessage')}")
    finally:
        service.stop()
    committed = service.committed_log(sync_id)
    return {
        "seconds": round(seconds, 3),
        "rows": sync["recordsSynced"],
        "duration_ms": sync["durationMs"],
        "read_seconds": committed.get("read_seconds"),
        "commit_seconds": committed.get("commit_seconds"),
        "idle_rss_mb": mb(idle),
        "peak_rss_mb": mb(rss.peak_self),
    }


DLT_CHILD = r"""
import json, resource, sys, time
import dlt
from dlt.sources.sql_database import sql_table
url, warehouse = sys.argv[1], sys.argv[2]
source = sql_table(credentials=url, table="orders", backend="pyarrow", chunk_size=65536)
destination = dlt.destinations.filesystem(bucket_url=warehouse)
pipeline = dlt.pipeline(pipeline_name="bench_orders", destination=destination,
                        dataset_name="bench", pipelines_dir=warehouse + "/.dlt")
start = time.perf_counter()
info = pipeline.run(source, table_format="iceberg", write_disposition="replace")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "ru_maxrss_mb": peak}))
"""


def run_dlt(url: str, work: Path) -> dict[str, Any]:
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        return {"skipped": f"dlt not installed in {DLT_VENV} (run with --dlt-venv to make it)"}
    script = work / "dlt_child.py"
    script.write_text(DLT_CHILD)
    warehouse = work / "dlt-warehouse"
    out = subprocess.run(
        [str(python), str(script), url.replace("postgresql://", "postgresql+psycopg2://"), str(warehouse)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or ["?"]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def make_dlt_venv() -> None:
    subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
    subprocess.run(
        [
            str(DLT_VENV / "bin" / "pip"),
            "install",
            "--quiet",
            "dlt[pyiceberg,sql_database,filesystem]",
            "psycopg2-binary",
            "pyarrow",
        ],
        check=True,
    )


def mysql_part(rows: int, service: Service, results: dict[str, Any]) -> None:
    import connectorx
    import pymysql

    name = f"ingest_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"USE `{name}`")
            cur.execute(
                "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, quantity smallint,"
                " amount decimal(12,2) NOT NULL, discount decimal(12,2), ordered_on date NOT NULL,"
                " shipped_on date, updated_at timestamp(6) NOT NULL, paid boolean NOT NULL, gift boolean,"
                " status varchar(16) NOT NULL,"
                " note text)"
            )
            cur.execute(
                "INSERT INTO orders SELECT seq, (seq * 7919) % 100000, seq % 20,"
                " ((seq * 37) % 1000000) / 100.0,"
                " IF(seq % 5 = 0, NULL, (seq % 1000) / 100.0), DATE '2020-01-01' + INTERVAL (seq % 1500) DAY,"
                " IF(seq % 3 = 0, NULL, DATE '2020-01-05' + INTERVAL (seq % 1500) DAY),"
                " TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq SECOND, seq % 2 = 0,"
                " IF(seq % 7 = 0, NULL, seq % 3 = 0),"
                " ELT(seq % 5 + 1, 'new','paid','shipped','delivered','returned'),"
                " IF(seq % 4 = 0, NULL, REPEAT(CONCAT('order note ', seq), 1 + seq % 6))"
                f" FROM seq_1_to_{rows}"
            )
        url = f"mysql://root:@127.0.0.1:3306/{name}"
        start = time.perf_counter()
        subprocess.run(
            ["mysql", "-h", "127.0.0.1", "-uroot", "--batch", "--quick", name, "-e", SELECT],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        results["mysql_export"] = {"seconds": round(time.perf_counter() - start, 3), "rows": rows}
        results["mysql_connectorx"] = timed(
            lambda: sum(
                b.num_rows
                for b in connectorx.read_sql(url, SELECT, return_type="arrow_stream", batch_size=65536)
            )
        )
        config = {"host": "127.0.0.1", "port": 3306, "database": name, "username": "root", "password": ""}
        results["mysql_ingest"] = run_ingest(service, "mysql", config, f"{name}.orders")
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--drivers-only", action="store_true", help="skip ingest and dlt")
    parser.add_argument("--mysql", action="store_true")
    parser.add_argument("--dlt-venv", action="store_true", help="create bench/out/.dlt-venv with dlt first")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.dlt_venv:
        make_dlt_venv()
    import psycopg

    name = f"ingest_bench_{uuid.uuid4().hex[:8]}"
    url = PG_URL.format(db=name)
    work = OUT / "databases-work"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"rows": args.rows, "load_start": os.getloadavg()}
    with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    (work / "ingest-data").mkdir(parents=True, exist_ok=True)
    service = Service(work / "ingest-data", OUT / "connectors" / "none")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            start = time.perf_counter()
            conn.execute(ORDERS.format(rows=args.rows))
            results["load_seconds"] = round(time.perf_counter() - start, 1)
            size = conn.execute("SELECT pg_total_relation_size('orders')").fetchone()
            results["table_mb"] = mb(size[0]) if size else None
        results["pg_copy_export"] = timed(lambda: pg_copy_export(url))
        results["pg_adbc"] = timed(lambda: pg_adbc(url))
        results["pg_connectorx"] = timed(lambda: pg_connectorx(url))
        results["pg_psycopg_copy_rows"] = timed(lambda: pg_psycopg_copy(url))
        if not args.drivers_only:
            service.migrate()
            config = {"host": "127.0.0.1", "port": 5432, "database": name, "username": "postgres"}
            results["pg_ingest"] = run_ingest(service, "postgres", config, "public.orders")
            results["pg_dlt"] = run_dlt(url, work)
            if args.mysql:
                mysql_part(args.rows, service, results)
    finally:
        with contextlib.suppress(Exception):
            service.stop_postgres()
        with psycopg.connect(PG_URL.format(db="postgres"), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    results["load_end"] = os.getloadavg()
    (OUT / f"databases-{args.rows}.json").write_text(json.dumps(results, indent=2, default=str))
    export = results["pg_copy_export"]["seconds"]
    print(f"rows={args.rows} table={results.get('table_mb')} MB load={results['load_start']}")
    for key, value in results.items():
        if isinstance(value, dict) and "seconds" in value:
            rate = value.get("rows", args.rows) / value["seconds"] if value["seconds"] else 0
            print(
                f"{key:24} {value['seconds']:8.2f} s {rate:12,.0f} rows/s"
                f"  {export / value['seconds']:5.2f}x export"
                f"  peak RSS {value.get('peak_rss_mb', value.get('ru_maxrss_mb', '-'))} MB"
            )
        elif isinstance(value, dict):
            print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
