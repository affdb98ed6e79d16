"""PostgreSQL sources: catalog and checks over psycopg, table reads as Arrow through ADBC's libpq driver.

ADBC's PostgreSQL driver reads with `COPY ... TO STDOUT (FORMAT binary)` and decodes straight into Arrow
in C++ (bench/databases_bench.py measured it against ConnectorX and psycopg's binary COPY; see README).
Types are decided from the catalog at discover time: what Arrow/Iceberg hold exactly is selected as is
(numerics as text, then cast to decimal(p,s) in Arrow); what they do not is selected as PostgreSQL's text.
"""

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg
import pyarrow as pa
from psycopg import sql

from ingest.core.errors import InvalidRequestError
from ingest.core.types import ColumnType
from ingest.engines.base import (
    CheckResult,
    DiscoveredColumn,
    DiscoveredStream,
    ReadEvent,
    ReadRequest,
)
from ingest.engines.embedded.databases.common import (
    BATCH_ROWS,
    CONNECT_TIMEOUT_SECONDS,
    Column,
    CursorTracker,
    DatabaseRead,
    StreamPlan,
    checkpoint,
    chunks,
    empty_batch,
    event_batch,
    load_spec,
    plans,
    quote_literal,
    ssl_mode,
    stream_for,
    unsupported_options,
    url_params,
)

SPEC = load_spec("postgres")
# libpq parameters a `jdbc_url_params` may carry; JDBC-only ones are refused by name
_LIBPQ_PARAMS = frozenset(
    {
        "application_name",
        "connect_timeout",
        "options",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "target_session_attrs",
        "gssencmode",
    }
)
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})

_INTEGERS = {"int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64()}
_FLOATS = {"float4": pa.float32(), "float8": pa.float64()}
_TEXTS = frozenset({"text", "varchar", "bpchar", "name", "citext", "char"})
_ARRAY_ELEMENTS: dict[str, pa.DataType] = {
    **_INTEGERS,
    **_FLOATS,
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "date": pa.date32(),
}


def check_options(config: Mapping[str, Any]) -> None:
    """400 naming every option the embedded engine cannot honour."""
    problems = unsupported_options(config)
    unknown = sorted(set(url_params(config)) - _LIBPQ_PARAMS)
    if unknown:
        problems.append(f"jdbc_url_params {', '.join(unknown)} (only libpq parameters are honoured)")
    mode = ssl_mode(config, "prefer")
    if mode not in _SSL_MODES:
        problems.append(f"ssl_mode {mode}")
    if problems:
        raise InvalidRequestError(
            "The embedded engine cannot honour connectionConfig option(s): "
            + "; ".join(problems)
            + " (use INGEST_ENGINE=airbyte for them)"
        )


@contextlib.contextmanager
def _conninfo(config: Mapping[str, Any], *, timeout: float = CONNECT_TIMEOUT_SECONDS) -> Iterator[str]:
    """A libpq connection string for `config`; certificates live in private temp files meanwhile."""
    check_options(config)
    params: dict[str, Any] = {
        "host": config.get("host"),
        "port": config.get("port", 5432),
        "dbname": config.get("database"),
        "user": config.get("username"),
        "sslmode": ssl_mode(config, "prefer"),
        "connect_timeout": max(1, int(timeout)),
        "application_name": "ingest",
    }
    if config.get("password"):
        params["password"] = config["password"]
    params.update(url_params(config))
    ssl = config.get("ssl_mode")
    workdir: str | None = None
    try:
        if isinstance(ssl, Mapping):
            for key, param in (
                ("ca_certificate", "sslrootcert"),
                ("client_certificate", "sslcert"),
                ("client_key", "sslkey"),
            ):
                if ssl.get(key):
                    workdir = workdir or tempfile.mkdtemp(prefix="ingest-pg-")
                    path = os.path.join(workdir, param)
                    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                        handle.write(str(ssl[key]))
                    params[param] = path
            if ssl.get("client_key_password"):
                params["sslpassword"] = ssl["client_key_password"]
        yield psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})
    finally:
        if workdir is not None:
            for name in os.listdir(workdir):
                os.unlink(os.path.join(workdir, name))
            os.rmdir(workdir)


def _schemas(config: Mapping[str, Any]) -> list[str]:
    schemas = config.get("schemas")
    return [str(s) for s in schemas] if schemas else ["public"]


def _explain_connect_error(exc: BaseException, config: Mapping[str, Any]) -> str:
    """Which of the usual causes it is, in words; never the password."""
    text = str(exc)
    host, port = config.get("host"), config.get("port", 5432)
    lower = text.lower()
    if "password authentication failed" in lower or ("role" in lower and "does not exist" in lower):
        user = config.get("username")
        return f"Wrong credentials: the server refused user '{user}' (check username and password)"
    if "no pg_hba.conf entry" in lower:
        return "The server does not accept this user from this host (pg_hba.conf), or requires SSL"
    if "database" in lower and "does not exist" in lower:
        return f"Database '{config.get('database')}' does not exist on {host}:{port}"
    if "could not translate host name" in lower or "name or service not known" in lower:
        return f"Unknown host '{host}': its name does not resolve"
    if "connection refused" in lower:
        return f"Connection refused by {host}:{port}: no PostgreSQL listens there"
    if "timeout expired" in lower or "timed out" in lower:
        return f"Could not reach {host}:{port} within {CONNECT_TIMEOUT_SECONDS} s"
    if "certificate" in lower or "ssl" in lower:
        # which check failed (unknown CA, name mismatch, ...); the server's words, never a secret
        mode = ssl_mode(config, "prefer")
        return f"SSL negotiation failed with ssl_mode {mode}: " + _scrub(text, config)
    return "Could not connect to PostgreSQL: " + _scrub(text, config)


def _scrub(text: str, config: Mapping[str, Any]) -> str:
    password = config.get("password")
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if password:
        first = first.replace(str(password), "********")
    return first[:300]


async def _connect(config: Mapping[str, Any]) -> psycopg.AsyncConnection[Any]:
    with _conninfo(config) as conninfo:
        return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)


async def check(config: Mapping[str, Any]) -> CheckResult:
    """Connect with a time limit, then check the configured schemas can be read."""
    try:
        connection = await _connect(config)
    except psycopg.Error as exc:
        return CheckResult(False, _explain_connect_error(exc, config))
    async with connection:
        schemas = _schemas(config)
        rows = await (
            await connection.execute(
                "SELECT s, n.oid IS NOT NULL, COALESCE(has_schema_privilege(n.oid, 'USAGE'), false)"
                " FROM unnest(%s::text[]) AS s LEFT JOIN pg_namespace n ON n.nspname = s",
                [schemas],
            )
        ).fetchall()
    missing = [r[0] for r in rows if not r[1]]
    denied = [r[0] for r in rows if r[1] and not r[2]]
    if missing:
        return CheckResult(
            False, f"Schema(s) not found in database '{config.get('database')}': {', '.join(missing)}"
        )
    if denied:
        return CheckResult(
            False, f"User '{config.get('username')}' has no privilege on schema(s): {', '.join(denied)}"
        )
    return CheckResult(True, None)


# -- discover ----------------------------------------------------------------------------------------------

_TABLES = """
SELECT c.oid, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname = ANY(%s) AND NOT c.relispartition
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typtype, a.attnotnull,
       a.atttypmod, et.typname
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_PRIMARY_KEYS = """
SELECT i.indrelid, array_agg(a.attname ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary AND i.indrelid = ANY(%s)
GROUP BY i.indrelid
"""


def column_of(
    name: str, db_type: str, typname: str, typtype: str, not_null: bool, typmod: int, element: str | None
) -> Column:
    """The exact type a PostgreSQL column lands as (see the README's type table)."""
    nullable = not not_null

    facts = {"typname": typname, "typtype": typtype, "typmod": typmod, "element": element}

    def col(api: ColumnType, arrow: pa.DataType, **extra: Any) -> Column:
        return Column(name, db_type, nullable, api, arrow, facts=facts, **extra)

    if typname in _INTEGERS:
        return col(ColumnType.INTEGER, _INTEGERS[typname], cursor_candidate=True)
    if typname == "numeric":
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if typmod >= 4 and 1 <= precision <= 38 and scale <= precision:
            return col(
                ColumnType.DECIMAL,
                pa.decimal128(precision, scale),
                select_as_text=True,
                precision=precision,
                scale=scale,
                cursor_candidate=True,
            )
        # unconstrained or wider than Iceberg's 38 digits: kept exact as text
        return col(ColumnType.STRING, pa.string(), select_as_text=True)
    if typname in _FLOATS:
        return col(ColumnType.DECIMAL, _FLOATS[typname])
    if typname == "bool":
        return col(ColumnType.BOOLEAN, pa.bool_())
    if typname == "date":
        return col(ColumnType.DATE, pa.date32(), cursor_candidate=True)
    if typname == "timestamp":
        return col(ColumnType.TIMESTAMP, pa.timestamp("us"), cursor_candidate=True)
    if typname == "timestamptz":
        return col(ColumnType.TIMESTAMP, pa.timestamp("us", tz="UTC"), cursor_candidate=True)
    if typname == "time":
        return col(ColumnType.STRING, pa.time64("us"))
    if typname in _TEXTS and typtype != "d":
        return col(ColumnType.STRING, pa.string())
    if typname in ("json", "jsonb"):
        return col(ColumnType.JSON, pa.string(), select_as_text=True)
    if typname == "bytea":
        return col(ColumnType.STRING, pa.binary())
    if element is not None and element in _ARRAY_ELEMENTS:
        return col(ColumnType.JSON, pa.list_(_ARRAY_ELEMENTS[element]))
    # uuid, enums, interval, inet, money, timetz, geometric, ranges, domains, ...: PostgreSQL's text form
    return col(ColumnType.STRING, pa.string(), select_as_text=True)


async def discover(config: Mapping[str, Any]) -> list[DiscoveredStream]:
    connection = await _connect(config)
    async with connection:
        tables = await (await connection.execute(_TABLES, [_schemas(config)])).fetchall()
        oids = [t[0] for t in tables]
        columns: dict[int, list[Column]] = {}
        for oid, name, db_type, typname, typtype, not_null, typmod, element in await (
            await connection.execute(_COLUMNS, [oids])
        ).fetchall():
            columns.setdefault(oid, []).append(
                column_of(name, db_type, typname, typtype, not_null, typmod, element)
            )
        keys = {
            oid: list(names)
            for oid, names in await (await connection.execute(_PRIMARY_KEYS, [oids])).fetchall()
        }
    return [
        stream_for(schema, table, columns.get(oid, []), keys.get(oid, [])) for oid, schema, table in tables
    ]


# -- read --------------------------------------------------------------------------------------------------


def _rebuild(column: DiscoveredColumn) -> Column:
    """The Column a discovered column was decided as, from the catalog facts stored with it."""
    facts = column.json_schema.get("facts") or {}
    if not facts:
        raise InvalidRequestError(f"Column '{column.name}' has no catalog facts: discover the source again")
    return column_of(
        column.name,
        str(column.json_schema.get("db_type", "")),
        str(facts["typname"]),
        str(facts["typtype"]),
        not column.nullable,
        int(facts["typmod"]),
        facts.get("element"),
    )


def select_sql(plan: StreamPlan) -> str:
    items = []
    for name, _, as_text in plan.columns:
        ident = sql.Identifier(name).as_string(None)
        items.append(f"{ident}::text AS {ident}" if as_text else ident)
    table = f"{sql.Identifier(plan.schema).as_string(None)}.{sql.Identifier(plan.table).as_string(None)}"
    query = f"SELECT {', '.join(items) or '*'} FROM {table}"
    if plan.incremental and plan.cursor and plan.since is not None:
        db_type = next(t for n, t, _ in plan.columns if n == plan.cursor)
        cursor = sql.Identifier(plan.cursor).as_string(None)
        query += f" WHERE {cursor} >= CAST({quote_literal(plan.since)} AS {db_type})"
    return query


def read(request: ReadRequest, cancel: Any) -> DatabaseRead:
    """Every selected table in ONE repeatable-read, read-only transaction (one consistent snapshot)."""
    import adbc_driver_postgresql.dbapi as adbc

    stream_plans = plans(request, _rebuild)
    config = request.config
    backend: list[int] = []
    tracker = CursorTracker()

    def produce(emit: Callable[[ReadEvent], None]) -> None:
        with _conninfo(config) as conninfo, adbc.connect(conninfo) as connection:
            with connection.cursor() as cursor:
                # autocommit is off: the driver opened a transaction; make it one snapshot for every table
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_backend_pid()")
                row = cursor.fetchone()
                backend.append(int(row[0]) if row else 0)
                for plan in stream_plans:
                    cursor.execute(select_sql(plan))
                    reader = cursor.fetch_record_batch()
                    empty = True
                    for batch in chunks(reader, BATCH_ROWS):
                        event = event_batch(plan, batch)
                        tracker.see(plan, event.batch)
                        empty = False
                        emit(event)
                    if empty:  # a 0-row table still carries its exact schema
                        emit(empty_batch(plan))
            connection.rollback()
        state = checkpoint(tracker, request.state, stream_plans)
        if state is not None:
            emit(state)

    def interrupt() -> None:
        if not backend:
            return
        with (
            _conninfo(config) as conninfo,
            contextlib.suppress(psycopg.Error),
            psycopg.connect(conninfo, autocommit=True) as admin,
        ):
            admin.execute("SELECT pg_cancel_backend(%s)", [backend[0]])

    return DatabaseRead(produce, interrupt, cancel, lambda exc: _scrub(str(exc), config), "postgres")
