"""Snapshots as a tool: history, rollback, time travel, and the table's file health (blocking calls).

pyiceberg 0.12 gives `manage_snapshots().set_current_snapshot` (one catalog commit that moves `main`,
guarded by an assert on the current snapshot id, so a concurrent commit makes it fail instead of being
lost) and time travel through `scan(snapshot_id=...)` and the snapshot log. Which snapshots are loads,
and which loads depend on which, is ours: every load's snapshot carries `ingest.job-id` in its summary.
"""

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot, ancestors_of
from pyiceberg.table.update.snapshot import ManageSnapshots

from ingest.core.errors import ConflictError, InvalidRequestError, NotFoundError
from ingest.iceberg.writer import JOB_ID_PROPERTY

MAINTENANCE_PROPERTY = "ingest.maintenance"
# when a rollback last emptied the table (removed `main`): the snapshot log records no entry for that
EMPTIED_AT_PROPERTY = "ingest.emptied-at-ms"


@dataclass(frozen=True)
class SnapshotEntry:
    snapshot_id: int
    parent_id: int | None
    timestamp_ms: int
    operation: str | None
    job_id: str | None
    maintenance: str | None
    added_records: int | None
    deleted_records: int | None
    total_records: int | None
    current: bool  # the table's current snapshot
    in_history: bool  # an ancestor of the current snapshot (False: undone by a rollback)


@dataclass(frozen=True)
class Load:
    """One import or sync as the table sees it: its snapshots (an upsert makes two) and what preceded it."""

    job_id: str
    snapshot_ids: list[int]
    before_id: int | None  # the snapshot current before the load: where undoing it goes back to


@dataclass(frozen=True)
class RollbackPlan:
    target_id: int | None  # None: back to before the first snapshot (the table stays, empty)
    undone: list[Load]  # loads in the current history after the target, oldest first
    other_snapshots: int  # non-load snapshots (compaction) after the target


@dataclass
class FileHealth:
    data_files: int = 0
    data_bytes: int = 0
    delete_files: int = 0
    records: int = 0
    small_files: int = 0
    partitions: int = 0
    snapshots: int = 0
    files_per_partition: dict[str, int] = field(default_factory=dict)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def history(table: Table) -> list[SnapshotEntry]:
    """Every snapshot the table still has, oldest first, marked current / in the current history."""
    current = table.current_snapshot()
    lineage = {s.snapshot_id for s in ancestors_of(current, table.metadata)}
    entries = []
    for s in sorted(table.snapshots(), key=lambda s: (s.timestamp_ms, s.sequence_number or 0)):
        summary = s.summary
        props = summary.additional_properties if summary is not None else {}
        entries.append(
            SnapshotEntry(
                snapshot_id=s.snapshot_id,
                parent_id=s.parent_snapshot_id,
                timestamp_ms=s.timestamp_ms,
                operation=summary.operation.value if summary is not None else None,
                job_id=props.get(JOB_ID_PROPERTY),
                maintenance=props.get(MAINTENANCE_PROPERTY),
                added_records=_int(props.get("added-records")),
                deleted_records=_int(props.get("deleted-records")),
                total_records=_int(props.get("total-records")),
                current=current is not None and s.snapshot_id == current.snapshot_id,
                in_history=s.snapshot_id in lineage,
            )
        )
    return entries


def lineage(table: Table) -> list[Snapshot]:
    """The current snapshot's ancestors, oldest first."""
    return list(reversed(list(ancestors_of(table.current_snapshot(), table.metadata))))


def loads(table: Table) -> list[Load]:
    """The loads in the current history, oldest first (consecutive snapshots of one job are one load)."""
    result: list[Load] = []
    for s in lineage(table):
        job = s.summary.additional_properties.get(JOB_ID_PROPERTY) if s.summary is not None else None
        if job is None:
            continue
        if result and result[-1].job_id == job and result[-1].snapshot_ids[-1] == s.parent_snapshot_id:
            result[-1].snapshot_ids.append(s.snapshot_id)
        else:
            result.append(Load(job, [s.snapshot_id], s.parent_snapshot_id))
    return result


def before_job(table: Table, job_id: str, what: str) -> int | None:
    """The snapshot current before `job_id`'s load; None when the load created the table's first snapshot."""
    for load in loads(table):
        if load.job_id == job_id:
            return load.before_id
    if any(e.job_id == job_id for e in history(table)):
        raise ConflictError(f"{what} was already undone: its snapshot is not in the table's current history")
    raise ConflictError(
        f"{what} has no snapshot in this table (it wrote another table, or its snapshot was expired)"
    )


def plan_rollback(table: Table, target_id: int | None) -> RollbackPlan:
    """What making `target_id` current again undoes; 404 for an unknown snapshot, 409 if not an ancestor.

    `target_id` None goes back to before the table's first snapshot.
    """
    chain = lineage(table)
    ids = [s.snapshot_id for s in chain]
    if target_id is None:
        if chain and chain[0].parent_snapshot_id is not None:  # the oldest snapshots were expired
            raise ConflictError("The table's first snapshots were expired: it cannot go back to empty")
        after = set(ids)
    else:
        if table.snapshot_by_id(target_id) is None:
            raise NotFoundError(f"Snapshot {target_id} not found (unknown, or expired by maintenance)")
        if target_id not in ids:
            raise ConflictError(
                f"Snapshot {target_id} is not in the table's current history (it was undone by a rollback)"
            )
        after = set(ids[ids.index(target_id) + 1 :])
    undone = [
        load for load in loads(table) if load.snapshot_ids[0] in after or load.snapshot_ids[-1] in after
    ]
    in_loads = {i for load in undone for i in load.snapshot_ids}
    return RollbackPlan(target_id, undone, len(after - in_loads))


def rollback(table: Table, target_id: int | None, expected_current: int | None) -> None:
    """Make `target_id` the current snapshot in one catalog commit (fails if the table moved meanwhile).

    None removes the `main` branch: the table has no current snapshot, as when it was created, and its
    next write starts a new history (the undone snapshots stay readable by id until expired).
    """
    current = table.current_snapshot()
    current_id = current.snapshot_id if current else None
    if current_id != expected_current:
        raise ConflictError("The table changed while the rollback was planned; try again")
    if current_id == target_id:
        return
    if target_id is None:
        now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        with table.transaction() as tx:
            ManageSnapshots(tx).remove_branch("main").commit()
            tx.set_properties({EMPTIED_AT_PROPERTY: str(now_ms)})
    else:
        table.manage_snapshots().set_current_snapshot(snapshot_id=target_id).commit()


def resolve_snapshot(table: Table, snapshot_id: int | None, as_of: dt.datetime | None) -> Snapshot | None:
    """The snapshot a read asks for: by id, or the one current at `as_of`; the current one otherwise."""
    if snapshot_id is not None and as_of is not None:
        raise InvalidRequestError("Give snapshotId or asOf, not both")
    if snapshot_id is not None:
        found = table.snapshot_by_id(snapshot_id)
        if found is None:
            raise NotFoundError(f"Snapshot {snapshot_id} not found (unknown, or expired by maintenance)")
        return found
    if as_of is not None:
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=dt.UTC)
        as_of_ms = int(as_of.timestamp() * 1000)
        found = table.snapshot_as_of_timestamp(as_of_ms, inclusive=True)
        emptied = int(table.properties.get(EMPTIED_AT_PROPERTY, "0"))
        if found is not None and emptied and as_of_ms >= emptied:
            logged = max(e.timestamp_ms for e in table.history() if e.snapshot_id == found.snapshot_id)
            if logged < emptied:
                return None  # a rollback emptied the table after that snapshot: it was empty at as_of
        if found is None:
            raise NotFoundError(
                f"The table has no snapshot as of {as_of.isoformat()} (before its first commit, or expired)"
            )
        return found
    return table.current_snapshot()


def read_at(table: Table, snapshot: Snapshot | None, limit: int | None = None) -> pa.Table:
    """Rows of `snapshot` (None: the empty table), in the schema that snapshot was written with."""
    if snapshot is None:
        return table.schema().as_arrow().empty_table()
    return table.scan(snapshot_id=snapshot.snapshot_id, limit=limit).to_arrow()


def schema_at(table: Table, snapshot: Snapshot | None) -> list[tuple[str, str, bool]]:
    """(name, Iceberg type, nullable) of the schema `snapshot` was written with (the current one if None)."""
    schema = table.schema()
    if snapshot is not None and snapshot.schema_id is not None:
        schema = table.schemas().get(snapshot.schema_id, schema)
    return [(f.name, str(f.field_type), not f.required) for f in schema.fields]


def file_health(table: Table, small_below: int) -> FileHealth:
    """Data files of the current snapshot: count, bytes, how many are small, per partition."""
    health = FileHealth(snapshots=len(table.snapshots()))
    if table.current_snapshot() is None:
        return health
    for task in table.scan().plan_files():
        f = task.file
        health.data_files += 1
        health.data_bytes += f.file_size_in_bytes
        health.records += f.record_count
        health.delete_files += len(task.delete_files)
        if f.file_size_in_bytes < small_below:
            health.small_files += 1
        key = partition_label(table, f.spec_id, f.partition)
        health.files_per_partition[key] = health.files_per_partition.get(key, 0) + 1
    health.partitions = len(health.files_per_partition)
    return health


def partition_label(table: Table, spec_id: int, partition: object) -> str:
    """`field=value/...` of a data file's partition ('' for an unpartitioned table)."""
    spec = table.specs().get(spec_id)
    if spec is None or spec.is_unpartitioned():
        return ""
    values = list(partition) if partition is not None else []  # type: ignore[call-overload]
    return "/".join(f"{pf.name}={values[i]}" for i, pf in enumerate(spec.fields) if i < len(values))
