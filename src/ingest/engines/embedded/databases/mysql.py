"""MySQL / MariaDB sources: catalog, checks and cancel over PyMySQL, table reads as Arrow through ConnectorX.

ConnectorX decodes the binary protocol into Arrow in Rust and streams it (`return_type="arrow_stream"`).
Its own DECIMAL mapping is decimal(38,10) (scale lost, and it panics on wider values), so decimals are
selected as text and cast to decimal(p,s) in Arrow; TIME (it may pass 24 h) and unknown types as text too.
The session runs in UTC, so TIMESTAMP columns land as UTC instants, DATETIME as local (no zone) timestamps.
"""

import contextlib
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pymysql

from ingest.core.errors import InvalidRequestError
from ingest.core.types import ColumnType
from ingest.engines.base import CheckResult, DiscoveredColumn, DiscoveredStream, ReadEvent, ReadRequest
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

SPEC = load_spec("mysql")
_SSL_MODES = frozenset({"preferred", "required"})
_INT32 = frozenset({"tinyint", "smallint", "mediumint", "year"})
_TEXTS = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"})
_BINARIES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})


def check_options(config: Mapping[str, Any]) -> None:
    """400 naming every option the embedded engine cannot honour."""
    problems = unsupported_options(config)
    params = url_params(config)
    if params:
        problems.append(f"jdbc_url_params {', '.join(sorted(params))}")
    mode = ssl_mode(config, "preferred")
    if mode not in _SSL_MODES:
        problems.append(f"ssl_mode {mode} (certificate verification)")
    if problems:
        raise InvalidRequestError(
            "The embedded engine cannot honour connectionConfig option(s): "
            + "; ".join(problems)
            + " (use INGEST_ENGINE=airbyte for them)"
        )


def _connect(config: Mapping[str, Any], *, database: bool = True) -> "pymysql.connections.Connection[Any]":
    check_options(config)
    ssl: dict[str, Any] | None = None
    if ssl_mode(config, "preferred") == "required":
        ssl = {"check_hostname": False}  # encryption without verification, as MySQL's REQUIRED
    return pymysql.connect(
        host=str(config.get("host")),
        port=int(config.get("port", 3306)),
        user=str(config.get("username")),
        password=str(config.get("password") or ""),
        database=str(config.get("database")) if database else None,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        ssl=ssl,
        autocommit=True,
        charset="utf8mb4",
    )


def _explain(exc: BaseException, config: Mapping[str, Any]) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    host, port = config.get("host"), config.get("port", 3306)
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if code == 1045:
        user = config.get("username")
        return f"Wrong credentials: the server refused user '{user}' (check username and password)"
    if code == 1049:
        return f"Database '{config.get('database')}' does not exist on {host}:{port}"
    if code == 1044:
        return f"User '{config.get('username')}' has no privilege on database '{config.get('database')}'"
    if code == 2003:
        lower = text.lower()
        if "name or service not known" in lower or "nodename nor servname" in lower or "errno -2" in lower:
            return f"Unknown host '{host}': its name does not resolve"
        if "timed out" in lower:
            return f"Could not reach {host}:{port} within {CONNECT_TIMEOUT_SECONDS} s"
        return f"Connection refused by {host}:{port}: no MySQL server listens there"
    return "Could not connect to MySQL: " + _scrub(text, config)


def _scrub(text: str, config: Mapping[str, Any]) -> str:
    password = config.get("password")
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    if password:
        first = first.replace(str(password), "********")
    return first[:300]


def check(config: Mapping[str, Any]) -> CheckResult:
    """Connect with a time limit, then check that some table of the database can be read."""
    try:
        connection = _connect(config)
    except pymysql.MySQLError as exc:
        return CheckResult(False, _explain(exc, config))
    with connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", [config.get("database")]
        )
        visible = cursor.fetchone()
        cursor.execute("SHOW GRANTS")
        grants = " ".join(str(r[0]) for r in cursor.fetchall()).upper()
    if not (visible and visible[0]) and "SELECT" not in grants and "ALL PRIVILEGES" not in grants:
        return CheckResult(
            False, f"User '{config.get('username')}' has no privilege on database '{config.get('database')}'"
        )
    return CheckResult(True, None)


# -- discover ----------------------------------------------------------------------------------------------


def column_of(
    name: str,
    data_type: str,
    column_type: str,
    nullable: bool,
    precision: int | None,
    scale: int | None,
) -> Column:
    """The exact type a MySQL column lands as (see the README's type table)."""
    kind = data_type.lower()
    unsigned = "unsigned" in column_type.lower()
    facts = {
        "data_type": data_type,
        "column_type": column_type,
        "precision": precision,
        "scale": scale,
    }

    def col(api: ColumnType, arrow: pa.DataType, **extra: Any) -> Column:
        return Column(name, column_type, nullable, api, arrow, facts=facts, **extra)

    if kind in _INT32 or (kind == "int" and not unsigned):
        return col(ColumnType.INTEGER, pa.int32(), cursor_candidate=True)
    if kind == "int" or (kind == "bigint" and not unsigned):
        return col(ColumnType.INTEGER, pa.int64(), cursor_candidate=True)
    if kind == "bigint":  # unsigned: up to 2^64-1 does not fit a long
        return col(
            ColumnType.DECIMAL,
            pa.decimal128(20, 0),
            select_as_text=True,
            precision=20,
            scale=0,
            cursor_candidate=True,
        )
    if kind in ("decimal", "numeric"):
        p, s = int(precision or 10), int(scale or 0)
        if p <= 38:
            return col(
                ColumnType.DECIMAL,
                pa.decimal128(p, s),
                select_as_text=True,
                precision=p,
                scale=s,
                cursor_candidate=True,
            )
        return col(ColumnType.STRING, pa.string(), select_as_text=True)
    if kind == "float":
        return col(ColumnType.DECIMAL, pa.float32())
    if kind in ("double", "real"):
        return col(ColumnType.DECIMAL, pa.float64())
    if kind == "date":
        return col(ColumnType.DATE, pa.date32(), cursor_candidate=True)
    if kind == "datetime":
        return col(ColumnType.TIMESTAMP, pa.timestamp("us"), cursor_candidate=True)
    if kind == "timestamp":
        return col(ColumnType.TIMESTAMP, pa.timestamp("us", tz="UTC"), cursor_candidate=True)
    if kind == "json":
        return col(ColumnType.JSON, pa.string())
    if kind in _TEXTS:
        return col(ColumnType.STRING, pa.string())
    if kind in _BINARIES:
        return col(ColumnType.STRING, pa.binary())
    # time (may pass 24 h), bit, geometry, ...: MySQL's text form
    return col(ColumnType.STRING, pa.string(), select_as_text=True)


_COLUMNS = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, c.NUMERIC_PRECISION,
       c.NUMERIC_SCALE
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = %s AND t.TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
_KEYS = """
SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND CONSTRAINT_NAME = 'PRIMARY'
ORDER BY TABLE_NAME, ORDINAL_POSITION
"""


def discover(config: Mapping[str, Any]) -> list[DiscoveredStream]:
    database = str(config.get("database"))
    with _connect(config) as connection, connection.cursor() as cursor:
        cursor.execute(_COLUMNS, [database])
        rows = cursor.fetchall()
        cursor.execute(_KEYS, [database])
        keys: dict[str, list[str]] = {}
        for table, column in cursor.fetchall():
            keys.setdefault(str(table), []).append(str(column))
    tables: dict[str, list[Column]] = {}
    for table, name, data_type, column_type, is_nullable, precision, scale in rows:
        tables.setdefault(str(table), []).append(
            column_of(str(name), str(data_type), str(column_type), is_nullable == "YES", precision, scale)
        )
    return [stream_for(database, table, columns, keys.get(table, [])) for table, columns in tables.items()]


# -- read --------------------------------------------------------------------------------------------------


def _rebuild(column: DiscoveredColumn) -> Column:
    facts = column.json_schema.get("facts") or {}
    if not facts:
        raise InvalidRequestError(f"Column '{column.name}' has no catalog facts: discover the source again")
    return column_of(
        column.name,
        str(facts["data_type"]),
        str(facts["column_type"]),
        column.nullable,
        facts.get("precision"),
        facts.get("scale"),
    )


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _cursor_literal(value: str, db_type: str) -> str:
    kind = db_type.lower()
    if kind.startswith(("int", "tinyint", "smallint", "mediumint", "bigint", "decimal", "numeric", "year")):
        try:
            return str(Decimal(value))  # a bare number: a quoted one would compare as a double
        except InvalidOperation:
            raise InvalidRequestError(f"The saved cursor value is not a number: {value[:40]}") from None
    return quote_literal(value.removesuffix("+00:00"))


def select_sql(plan: StreamPlan, tag: str) -> str:
    items = []
    for name, _, as_text in plan.columns:
        items.append(f"CAST({_ident(name)} AS CHAR) AS {_ident(name)}" if as_text else _ident(name))
    query = f"SELECT {', '.join(items)} FROM {_ident(plan.schema)}.{_ident(plan.table)}"
    # the tag finds this query in the PROCESSLIST to KILL it on cancel
    query += f" WHERE {quote_literal(tag)} = {quote_literal(tag)}"
    if plan.incremental and plan.cursor and plan.since is not None:
        db_type = next(t for n, t, _ in plan.columns if n == plan.cursor)
        query += f" AND {_ident(plan.cursor)} >= {_cursor_literal(plan.since, db_type)}"
    return query


def _url(config: Mapping[str, Any]) -> str:
    user = quote(str(config.get("username")), safe="")
    password = quote(str(config.get("password") or ""), safe="")
    host, port = config.get("host"), int(config.get("port", 3306))
    return f"mysql://{user}:{password}@{host}:{port}/{quote(str(config.get('database')), safe='')}"


def read(request: ReadRequest, cancel: Any) -> DatabaseRead:
    """Each selected table in one statement (InnoDB: a consistent read per table), streamed as Arrow."""
    import connectorx

    check_options(request.config)
    stream_plans = plans(request, _rebuild)
    config = request.config
    tag = f"ingest-{uuid.uuid4().hex}"
    tracker = CursorTracker()

    def produce(emit: Callable[[ReadEvent], None]) -> None:
        for plan in stream_plans:
            reader = connectorx.read_sql(
                _url(config),
                select_sql(plan, tag),
                return_type="arrow_stream",
                batch_size=BATCH_ROWS,
                pre_execution_query=["SET SESSION time_zone = '+00:00'"],
            )
            empty = True
            for batch in chunks(reader, BATCH_ROWS):
                if batch.num_rows == 0:
                    continue
                event = event_batch(plan, batch)
                tracker.see(plan, event.batch)
                empty = False
                emit(event)
            if empty:
                emit(empty_batch(plan))
        state = checkpoint(tracker, request.state, stream_plans)
        if state is not None:
            emit(state)

    def interrupt() -> None:
        with contextlib.suppress(pymysql.MySQLError), _connect(config) as admin, admin.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                [f"%{tag}%"],
            )
            for (process_id,) in cursor.fetchall():
                cursor.execute(f"KILL QUERY {int(process_id)}")

    return DatabaseRead(produce, interrupt, cancel, lambda exc: _scrub(str(exc), config), "mysql")
