"""Database sources benchmark (issue 9): a PostgreSQL `orders` table -> Iceberg through the API, against the
server's own export rate, the drivers alone, and dlt's sql_database source, interleaved round by round.

    .venv/bin/python bench/databases_bench.py [--rows 1000000] [--runs 3] [--mysql] [--no-dlt]
                                              [--dlt-venv] [--psycopg-rows]

On the machine's PostgreSQL at 127.0.0.1:5432 (a database created for the run and dropped after), each
round runs, one fresh run each and in this order (so every ratio compares runs of the same minutes):

1. export: `COPY (SELECT ...) TO STDOUT (FORMAT binary)` read with psycopg and thrown away (/dev/null).
2. the drivers alone, ingest's own SELECT (numerics as text) -> Arrow batches in this process: ADBC's
   PostgreSQL driver (what ingest uses) and ConnectorX (`arrow_stream`).
3. ingest: a fresh `ingest serve` (API + in-process worker), a postgres source and a FULL_REFRESH
   connection, trigger -> SUCCEEDED seen by a 0.1 s poller; peak RSS and CPU seconds of the server process.
4. dlt `sql_database` (pyarrow backend) into a local Iceberg table, when `dlt` can be imported from
   bench/out/.dlt-venv (made by `--dlt-venv` when it is missing); otherwise reported as not run.

`--psycopg-rows` adds, in the first round only, psycopg's binary COPY decoded row by row into Arrow (about
a tenth of the export rate: it is there to show why it is not used). With `--mysql`: the same table in
MariaDB/MySQL (127.0.0.1:3306, root), rounds of the client's export (`mysql --batch --quick` to
/dev/null), ConnectorX alone and ingest through the API.
Results: bench/out/databases-<rows>.json (every run, medians) and a table of medians on stdout.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
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
# what ingest's reader sends for this table (numerics as text, cast to decimal(12,2) in Arrow)
INGEST_SELECT = (
    "SELECT id, customer_id, quantity, amount::text AS amount, discount::text AS discount, ordered_on,"
    " shipped_on, updated_at, paid, gift, status, note FROM public.orders"
)
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
        cur.execute(INGEST_SELECT)
        for batch in cur.fetch_record_batch():
            rows += batch.num_rows
    return rows


def pg_connectorx(url: str) -> int:
    import connectorx

    rows = 0
    for batch in connectorx.read_sql(url, INGEST_SELECT, return_type="arrow_stream", batch_size=65536):
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
    """One fresh server, one source and connection, one sync: trigger -> SUCCEEDED."""
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
        "read_cpu_seconds": committed.get("read_cpu_seconds"),
        "commit_cpu_seconds": committed.get("commit_cpu_seconds"),
        "cpu_seconds": round(rss.cpu_seconds, 2),
        "idle_rss_mb": mb(idle),
        "peak_rss_mb": mb(rss.peak_self),
        # MySQL reads run ConnectorX in a child process: its peak RSS and CPU, apart from the server's
        "child_peak_rss_mb": mb(rss.peak_connector),
        "child_cpu_seconds": round(rss.children_cpu_seconds, 2),
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
    shutil.rmtree(warehouse, ignore_errors=True)
    out = subprocess.run(
        [str(python), str(script), url.replace("postgresql://", "postgresql+psycopg2://"), str(warehouse)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"failed": out.stderr.strip().splitlines()[-1:] or ["?"]}
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["seconds"] = round(result["seconds"], 3)
    result["peak_rss_mb"] = round(result.pop("ru_maxrss_mb"), 1)
    return result


def make_dlt_venv() -> None:
    """bench/out/.dlt-venv with dlt, unless it is there already."""
    python = DLT_VENV / "bin" / "python"
    if (
        python.exists()
        and subprocess.run([str(python), "-c", "import dlt"], capture_output=True).returncode == 0
    ):
        return
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


def mysql_part(rows: int, runs: int, service: Service, results: dict[str, Any]) -> None:
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
        config = {"host": "127.0.0.1", "port": 3306, "database": name, "username": "root", "password": ""}

        def export() -> int:
            subprocess.run(
                ["mysql", "-h", "127.0.0.1", "-uroot", "--batch", "--quick", name, "-e", SELECT],
                stdout=subprocess.DEVNULL,
                check=True,
            )
            return rows

        def connectorx_alone() -> int:
            return sum(
                b.num_rows
                for b in connectorx.read_sql(url, SELECT, return_type="arrow_stream", batch_size=65536)
            )

        for round_no in range(runs):
            exported = timed(export)
            exported.pop("peak_rss_mb")  # the client is another process
            record(results, "mysql_export", exported)
            record(results, "mysql_connectorx", timed(connectorx_alone))
            record(results, "mysql_ingest", run_ingest(service, "mysql", config, f"{name}.orders"))
            print(f"mysql round {round_no + 1}/{runs} done, load {os.getloadavg()}", flush=True)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def record(results: dict[str, Any], key: str, run: dict[str, Any]) -> None:
    run["load1"] = round(os.getloadavg()[0], 2)
    results["runs"].setdefault(key, []).append(run)
    # every run as it comes, so a long run that is stopped still leaves its rounds
    (OUT / f"databases-{results['rows']}.partial.json").write_text(json.dumps(results, indent=2, default=str))


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if values:
            out[key] = round(statistics.median(values), 3)
    out["runs"] = len(runs)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds (medians are reported)")
    parser.add_argument("--drivers-only", action="store_true", help="skip ingest and dlt")
    parser.add_argument("--no-dlt", action="store_true")
    parser.add_argument("--mysql", action="store_true")
    parser.add_argument("--psycopg-rows", action="store_true", help="also psycopg's row decoding, round 1")
    parser.add_argument("--dlt-venv", action="store_true", help="create bench/out/.dlt-venv with dlt first")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.dlt_venv:
        make_dlt_venv()
    import adbc_driver_postgresql.dbapi  # noqa: F401  (imports outside the timed runs)
    import connectorx  # noqa: F401
    import psycopg

    name = f"ingest_bench_{uuid.uuid4().hex[:8]}"
    url = PG_URL.format(db=name)
    work = OUT / "databases-work"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"rows": args.rows, "load_start": os.getloadavg(), "runs": {}}
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
        if not args.drivers_only:
            service.migrate()
        config = {"host": "127.0.0.1", "port": 5432, "database": name, "username": "postgres"}
        for round_no in range(args.runs):
            record(results, "pg_copy_export", timed(lambda: pg_copy_export(url)))
            record(results, "pg_adbc", timed(lambda: pg_adbc(url)))
            record(results, "pg_connectorx", timed(lambda: pg_connectorx(url)))
            if args.psycopg_rows and round_no == 0:
                record(results, "pg_psycopg_copy_rows", timed(lambda: pg_psycopg_copy(url)))
            if not args.drivers_only:
                record(results, "pg_ingest", run_ingest(service, "postgres", config, "public.orders"))
                if not args.no_dlt:
                    record(results, "pg_dlt", run_dlt(url, work))
            print(f"round {round_no + 1}/{args.runs} done, load {os.getloadavg()}", flush=True)
        if args.mysql and not args.drivers_only:
            mysql_part(args.rows, args.runs, service, results)
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
    results["medians"] = {
        key: medians(runs) for key, runs in results["runs"].items() if all("seconds" in r for r in runs)
    }
    (OUT / f"databases-{args.rows}.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"rows={args.rows} table={results.get('table_mb')} MB")
    report(results)
    return 0


def report(results: dict[str, Any]) -> None:
    med = results["medians"]
    loads = [r["load1"] for runs in results["runs"].values() for r in runs]
    print(f"1-minute load during the runs: {min(loads)} - {max(loads)}")
    for prefix, export_key in (("pg_", "pg_copy_export"), ("mysql_", "mysql_export")):
        export = med.get(export_key, {}).get("seconds")
        for key, value in med.items():
            if not key.startswith(prefix):
                continue
            rows = value.get("rows", results["rows"])
            rate = rows / value["seconds"] if value["seconds"] else 0
            ratio = f"{export / value['seconds']:5.2f}x export" if export else ""
            extra = ""
            if "read_seconds" in value:
                extra = (
                    f" (read {value['read_seconds']} s, commit {value['commit_seconds']} s;"
                    f" server CPU {value.get('cpu_seconds')} s: read {value.get('read_cpu_seconds')},"
                    f" commit {value.get('commit_cpu_seconds')}; idle RSS {value.get('idle_rss_mb')} MB)"
                )
                if value.get("child_peak_rss_mb"):
                    extra += (
                        f" + ConnectorX child: peak RSS {value['child_peak_rss_mb']} MB,"
                        f" CPU {value.get('child_cpu_seconds')} s"
                    )
            print(
                f"{key:22} median of {value['runs']} {value['seconds']:8.2f} s {rate:11,.0f} rows/s {ratio}"
                f"  peak RSS {value.get('peak_rss_mb', '-')} MB{extra}"
            )
    ingest, dlt = med.get("pg_ingest"), med.get("pg_dlt")
    if ingest and dlt:
        pairs = zip(results["runs"]["pg_ingest"], results["runs"]["pg_dlt"], strict=False)
        per_round = [round(d["seconds"] / i["seconds"], 2) for i, d in pairs]
        print(f"ingest vs dlt: {dlt['seconds'] / ingest['seconds']:.2f}x (medians); per round {per_round}")
    export = results["runs"].get("pg_copy_export")
    if ingest and export:
        pairs = zip(results["runs"]["pg_ingest"], export, strict=False)
        per_round = [round(e["seconds"] / i["seconds"], 2) for i, e in pairs]
        print(f"ingest / COPY export per round: {per_round}")


if __name__ == "__main__":
    sys.exit(main())
