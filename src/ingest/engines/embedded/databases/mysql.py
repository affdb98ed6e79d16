"""MySQL / MariaDB sources: catalog, checks and cancel over PyMySQL, table reads as Arrow through ConnectorX.

ConnectorX decodes the binary protocol into Arrow in Rust and streams it (`return_type="arrow_stream"`).
Its own DECIMAL mapping is decimal(38,10) (scale lost, and it panics on wider values), so decimals are
selected as text and cast to decimal(p,s) in Arrow; TIME (it may pass 24 h) and unknown types as text too.
The session runs in UTC, so TIMESTAMP columns land as UTC instants, DATETIME as local (no zone) timestamps.

One snapshot: a run reads all its selected tables in ONE statement, `SELECT 0 AS ingest_branch, a.x, a.y
FROM a UNION ALL SELECT 1, b.z, NULL FROM b`, because InnoDB gives a statement one read view (opened at its
first InnoDB read) and read-locks non-transactional (MyISAM) tables for it. ConnectorX cannot share a
connection or transaction between queries, and it reads a result ahead without bound, so a stream per table
opened at once would hold whole tables in memory. Columns of one kind (signed integers, unsigned ones,
text of one collation, ...) share a UNION column, so MySQL's type aggregation keeps each value exact and the
statement is about as wide as its widest table. UNION ALL streams branch after branch (no temporary table);
each Arrow batch is split by the tag column into the tables' own columns. A run of one table is one plain
SELECT. Past `MAX_UNION_COLUMNS` columns or `MAX_UNION_CHARS` of statement text the tables are cut into
several statements in order, and the snapshot holds per statement.
"""

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
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
    collation: str | None = None,
) -> Column:
    """The exact type a MySQL column lands as (see the README's type table)."""
    kind = data_type.lower()
    unsigned = "unsigned" in column_type.lower()
    facts: dict[str, Any] = {
        "data_type": data_type,
        "column_type": column_type,
        "precision": precision,
        "scale": scale,
    }
    if collation:  # text columns share a column of a multi-table read only with their own collation
        facts["collation"] = collation

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
    # time (may pass 24 h), bit, ...: MySQL's text form; spatial types as WKT (see _text_of)
    return col(ColumnType.STRING, pa.string(), select_as_text=True)


_COLUMNS = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_NULLABLE, c.NUMERIC_PRECISION,
       c.NUMERIC_SCALE, c.COLLATION_NAME
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
    for table, name, data_type, column_type, is_nullable, precision, scale, collation in rows:
        tables.setdefault(str(table), []).append(
            column_of(
                str(name),
                str(data_type),
                str(column_type),
                is_nullable == "YES",
                precision,
                scale,
                str(collation) if collation else None,
            )
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
        facts.get("collation"),
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


def _where(plan: StreamPlan, tag: str) -> str:
    # the tag finds this query in the PROCESSLIST to KILL it on cancel
    where = f" WHERE {quote_literal(tag)} = {quote_literal(tag)}"
    if plan.incremental and plan.cursor and plan.since is not None:
        db_type = next(t for n, t, _ in plan.columns if n == plan.cursor)
        where += f" AND {_ident(plan.cursor)} >= {_cursor_literal(plan.since, db_type)}"
    return where


def _from(plan: StreamPlan) -> str:
    return f" FROM {_ident(plan.schema)}.{_ident(plan.table)}"


_GEOMETRIES = frozenset(
    {
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
        "geomcollection",
    }
)


def _text_of(name: str, db_type: str) -> str:
    """A column selected in its text form: spatial types as WKT (MariaDB refuses to CAST them to CHAR)."""
    if db_type.lower().split("(")[0].split()[0] in _GEOMETRIES:
        return f"ST_AsText({_ident(name)})"
    return f"CAST({_ident(name)} AS CHAR)"


def select_sql(plan: StreamPlan, tag: str) -> str:
    """One table's statement (the shape of a run that reads a single table)."""
    items = []
    for name, db_type, as_text in plan.columns:
        items.append(f"{_text_of(name, db_type)} AS {_ident(name)}" if as_text else _ident(name))
    return f"SELECT {', '.join(items)}" + _from(plan) + _where(plan, tag)


_TAG = "ingest_branch"
# A statement's select list stays under MySQL's 4096-column limit and its text well under the smallest
# default max_allowed_packet (4 MiB, MySQL 5.7): past either, tables are read in several statements.
MAX_UNION_COLUMNS = 4000
MAX_UNION_CHARS = 2 * 1024 * 1024
_UNION_BATCH_CELLS = 1 << 22  # rows x columns of one Arrow batch of a UNION (about 32 MB)
_INTEGERS = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"})


def _kind(db_type: str, as_text: bool, collation: str | None) -> str | None:
    """Columns of one kind share a UNION column: MySQL aggregates them into a type that holds each exactly.

    None: a column of its own (a text column of unknown collation: MySQL refuses a UNION column that mixes
    collations, and a CAST to one collation cost a 2-table read twice the time in MariaDB).
    """
    if as_text:
        return "cast"  # CAST(... AS CHAR): the connection's charset and collation
    spelled = db_type.lower()
    kind = spelled.split("(")[0].split()[0]
    if kind == "json":
        return "json"
    if kind in _TEXTS:
        return f"text {collation}" if collation else None
    if kind in _BINARIES:
        return "binary"
    unsigned = "unsigned" in spelled
    if kind in _INTEGERS:
        return "uint" if unsigned else "int"  # signed with unsigned would aggregate into DECIMAL
    return kind + (" unsigned" if unsigned else "")  # year, float, double, date, datetime, timestamp


def _kinds(plan: StreamPlan) -> list[str | None]:
    facts = [c.json_schema.get("facts") or {} for c in plan.stream.columns]
    return [
        _kind(db_type, as_text, f.get("collation"))
        for (_, db_type, as_text), f in zip(plan.columns, facts, strict=True)
    ]


def _placeholder(kind: str | None) -> str:
    # a bare NULL is a signed integer to MySQL: with unsigned integers it would make the column DECIMAL
    return "CAST(NULL AS UNSIGNED)" if kind == "uint" else "NULL"


def layout(group: list[StreamPlan]) -> tuple[list[str | None], list[list[int]]]:
    """The UNION's columns (their kinds) and, per table, where each of its columns sits (the tag is 0).

    The n-th column of a kind in every table shares one UNION column, so the statement is about as wide
    as the widest table, not the sum of all (a row carries every column of the statement, NULL or not).
    """
    kinds: list[str | None] = []
    slots: dict[tuple[str, int], int] = {}
    positions: list[list[int]] = []
    for plan in group:
        seen: dict[str, int] = {}
        mine: list[int] = []
        for kind in _kinds(plan):
            if kind is None:
                mine.append(len(kinds) + 1)
                kinds.append(kind)
                continue
            key = (kind, seen.get(kind, 0))
            seen[kind] = key[1] + 1
            if key not in slots:
                slots[key] = len(kinds)
                kinds.append(kind)
            mine.append(slots[key] + 1)
        positions.append(mine)
    return kinds, positions


def union_sql(group: list[StreamPlan], tag: str) -> str:
    """Tables in ONE statement (one read view): branch k tags its rows k and fills the shared columns."""
    kinds, positions = layout(group)
    branches = []
    for k, plan in enumerate(group):
        items = [_placeholder(kind) for kind in kinds]
        for (name, db_type, as_text), position in zip(plan.columns, positions[k], strict=True):
            items[position - 1] = _text_of(name, db_type) if as_text else _ident(name)
        if k == 0:  # UNION takes the first branch's names: positional, as names collide across tables
            items = [f"0 AS {_TAG}"] + [f"{item} AS c{i}" for i, item in enumerate(items, 1)]
        else:
            items = [str(k), *items]
        branches.append(f"SELECT {', '.join(items)}" + _from(plan) + _where(plan, tag))
    return " UNION ALL ".join(branches)


def groups(stream_plans: list[StreamPlan]) -> list[list[StreamPlan]]:
    """The plans in order, cut into statements of bounded width and text (one snapshot per statement)."""
    result: list[list[StreamPlan]] = []
    current: list[StreamPlan] = []
    widest: dict[str, int] = {}
    own_chars = alone = 0
    for plan in stream_plans:
        counts: dict[str, int] = {}
        kinds = _kinds(plan)
        for kind in kinds:
            if kind is not None:
                counts[kind] = counts.get(kind, 0) + 1
        merged = {k: max(widest.get(k, 0), counts.get(k, 0)) for k in widest.keys() | counts.keys()}
        width = sum(merged.values()) + alone + kinds.count(None)
        own = sum(len(name) + 20 for name, _, _ in plan.columns) + 200  # CAST(`name` AS CHAR), FROM, WHERE
        size = own_chars + own + (len(current) + 1) * width * len("CAST(NULL AS UNSIGNED), ")
        if current and (width + 1 > MAX_UNION_COLUMNS or size > MAX_UNION_CHARS):
            result.append(current)
            current, own_chars, alone = [], 0, 0
            merged = counts
        current.append(plan)
        widest = merged
        own_chars += own
        alone += kinds.count(None)
    if current:
        result.append(current)
    return result


def union_batch_rows(group: list[StreamPlan]) -> int:
    """Rows per Arrow batch of a UNION: fewer when it is wide, as every row holds every column."""
    width = len(layout(group)[0]) + 1
    return max(1024, min(BATCH_ROWS, _UNION_BATCH_CELLS // width))


def split(
    batch: pa.RecordBatch, group: list[StreamPlan], positions: list[list[int]]
) -> list[tuple[StreamPlan, pa.RecordBatch]]:
    """A UNION batch as per-table batches (their own column names), by the tag column; no per-row Python."""
    if batch.num_rows == 0:
        return []
    tag = batch.column(0)
    low, high = (v.as_py() for v in pc.min_max(tag).values())
    pieces = []
    for k in [low] if low == high else sorted(pc.unique(tag).to_pylist()):
        plan = group[k]
        part = pa.RecordBatch.from_arrays(
            [batch.column(i) for i in positions[k]], names=[n for n, _, _ in plan.columns]
        )
        if low != high:  # UNION ALL sends branch after branch: only a batch across a border is filtered
            part = part.filter(pc.equal(tag, k))
        if part.num_rows:
            pieces.append((plan, part))
    return pieces


def _url(config: Mapping[str, Any]) -> str:
    user = quote(str(config.get("username")), safe="")
    password = quote(str(config.get("password") or ""), safe="")
    host, port = config.get("host"), int(config.get("port", 3306))
    return f"mysql://{user}:{password}@{host}:{port}/{quote(str(config.get('database')), safe='')}"


_CHILD = Path(__file__).with_name("connectorx_child.py")


def _child_stream(url: str, query: str, rows: int) -> Iterator[pa.RecordBatch]:
    """ConnectorX's Arrow stream of `query`, run in a child process (it holds the GIL while it waits)."""
    job = {
        "url": url,
        "query": query,
        "batch_rows": rows,
        "pre_execution_query": ["SET SESSION time_zone = '+00:00'"],
        "parent": os.getpid(),
    }
    child = subprocess.Popen(
        [sys.executable, str(_CHILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stderr is not None
    try:
        child.stdin.write(json.dumps(job).encode())
        child.stdin.close()
        # a stream that breaks off is explained by the child's exit status and stderr
        with contextlib.suppress(pa.ArrowInvalid, OSError):
            yield from pa.ipc.open_stream(child.stdout)
        if child.wait() != 0:
            raise RuntimeError(child.stderr.read().decode(errors="replace") or "the MySQL read failed")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()


def read(request: ReadRequest, cancel: Any) -> DatabaseRead:
    """The selected tables in ONE statement (one consistent read across them), streamed as Arrow."""
    check_options(request.config)
    stream_plans = plans(request, _rebuild)
    config = request.config
    tag = f"ingest-{uuid.uuid4().hex}"
    tracker = CursorTracker()

    def stream(query: str, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        return chunks(_child_stream(_url(config), query, rows), rows)

    def produce(emit: Callable[[ReadEvent], None]) -> None:
        for group in groups(stream_plans):
            seen: set[str] = set()
            if len(group) == 1:  # one table: its own statement, no tag column to split on
                pieces = ([(group[0], batch)] for batch in stream(select_sql(group[0], tag)))
            else:
                positions = layout(group)[1]
                batches = stream(union_sql(group, tag), union_batch_rows(group))
                pieces = (split(batch, group, positions) for batch in batches)
            for piece in pieces:
                for plan, batch in piece:
                    if batch.num_rows == 0:
                        continue
                    event = event_batch(plan, batch)
                    tracker.see(plan, event.batch)
                    seen.add(plan.stream.name)
                    emit(event)
            for plan in group:
                if plan.stream.name not in seen:  # a 0-row table still lands with its exact schema
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
