"""Table maintenance: expire snapshots, remove files nothing references, compact small data files.

pyiceberg 0.12 expires snapshots (metadata only: it deletes no file) but has neither orphan-file removal
nor compaction; both are implemented here, carefully:
- orphan removal deletes only data/manifest files (`.parquet`, `.avro`) under the table's location that no
  remaining snapshot references (manifest lists, manifests, live manifest entries), and only when older
  than a safety window, so a file a writer is about to commit is never taken;
- compaction reads the small files of one partition (projected to the table schema, so files written
  before a schema change read right), writes them again as larger files and swaps them in ONE overwrite
  commit; the row counts are checked before the commit and the table's total after, and any table with
  delete files is left alone (ours never has them: pyiceberg rewrites copy-on-write).
The caller holds the table's lock: no load commits while this runs.
"""

import contextlib
import datetime as dt
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, PyArrowFileIO, _dataframe_to_data_files
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table, TableProperties

from ingest.iceberg.care import MAINTENANCE_PROPERTY, lineage, loads
from ingest.iceberg.writer import JOB_ID_PROPERTY

_ORPHAN_SUFFIXES = (".parquet", ".avro")


class CompactionCheckError(Exception):
    """The rewritten files do not hold the rows they replace: nothing was committed."""


@dataclass(frozen=True)
class MaintenancePolicy:
    retention: dt.timedelta  # snapshots younger than this are kept
    keep_last: int  # the newest N snapshots of the current history are always kept
    orphan_min_age: dt.timedelta  # unreferenced files younger than this are kept (a commit may be coming)
    target_file_bytes: int  # data files below this are compacted into files of about this size
    expire: bool = True
    remove_orphans: bool = True
    compact: bool = True


@dataclass
class MaintenanceResult:
    snapshots_before: int = 0
    snapshots_after: int = 0
    snapshots_expired: int = 0
    data_files_before: int = 0
    data_files_after: int = 0
    files_compacted: int = 0
    files_written: int = 0
    partitions_compacted: int = 0
    orphan_files_removed: int = 0
    orphan_bytes_removed: int = 0
    records: int = 0
    compaction_snapshot_id: int | None = None
    kept_for_rollback: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if k == "compaction_snapshot_id" and v is not None else v)
            for k, v in vars(self).items()
        }


def _data_files(table: Table) -> list[FileScanTask]:
    if table.current_snapshot() is None:
        return []
    return list(table.scan().plan_files())


def snapshots_to_keep(table: Table, policy: MaintenancePolicy, now: dt.datetime) -> tuple[set[int], set[int]]:
    """(every snapshot kept, the ones kept only because undoing a kept load needs them).

    Kept: the current one, the newest `keep_last` of the current history, every snapshot younger than the
    retention, and the snapshot before every load that is itself kept (the target of `toBeforeImport`).
    """
    horizon = int((now - policy.retention).timestamp() * 1000)
    chain = lineage(table)
    keep = {s.snapshot_id for s in table.snapshots() if s.timestamp_ms >= horizon}
    keep |= {s.snapshot_id for s in chain[-policy.keep_last :]} if policy.keep_last > 0 else set()
    current = table.current_snapshot()
    if current is not None:
        keep.add(current.snapshot_id)
    for_rollback: set[int] = set()
    for load in loads(table):
        if any(i in keep for i in load.snapshot_ids):
            keep.update(load.snapshot_ids)
            if load.before_id is not None and load.before_id not in keep:
                for_rollback.add(load.before_id)
    return keep | for_rollback, for_rollback


def expire_snapshots(
    table: Table, policy: MaintenancePolicy, now: dt.datetime
) -> tuple[Table, int, set[int]]:
    keep, for_rollback = snapshots_to_keep(table, policy, now)
    expired = [s.snapshot_id for s in table.snapshots() if s.snapshot_id not in keep]
    if expired:
        table.maintenance.expire_snapshots().by_ids(expired).commit()
        table = table.refresh()
    return table, len(expired), for_rollback


def _path(location: str) -> str:
    return PyArrowFileIO.parse_location(location)[2]


def referenced_files(table: Table) -> set[str]:
    """Paths (scheme stripped) of every manifest list, manifest and live data/delete file of any snapshot."""
    io = table.io
    seen_manifests: set[str] = set()
    paths: set[str] = set()
    for snapshot in table.snapshots():
        paths.add(_path(snapshot.manifest_list))
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            paths.add(_path(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=True):
                paths.add(_path(entry.data_file.file_path))
    return paths


def remove_orphans(table: Table, min_age: dt.timedelta, now: dt.datetime) -> tuple[int, int]:
    """Delete data and manifest files no snapshot references, older than `min_age`; (files, bytes)."""
    from pyarrow import fs as pafs

    io = table.io
    if not isinstance(io, PyArrowFileIO):
        return 0, 0
    scheme, netloc, root = PyArrowFileIO.parse_location(table.location())
    filesystem = io.fs_by_scheme(scheme, netloc)
    referenced = referenced_files(table)
    cutoff = now - min_age
    removed = removed_bytes = 0
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return 0, 0
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.endswith(_ORPHAN_SUFFIXES):
            continue
        if _path(info.path) in referenced:
            continue
        mtime = info.mtime
        if mtime is None or mtime.replace(tzinfo=mtime.tzinfo or dt.UTC) > cutoff:
            continue
        filesystem.delete_file(info.path)
        removed += 1
        removed_bytes += info.size or 0
    return removed, removed_bytes


def _bins(tasks: list[FileScanTask], target: int) -> list[list[FileScanTask]]:
    """Small files of one partition packed into groups of about `target` bytes (groups of one are dropped)."""
    groups: list[list[FileScanTask]] = []
    current: list[FileScanTask] = []
    size = 0
    for task in sorted(tasks, key=lambda t: t.file.file_path):
        if current and size + task.file.file_size_in_bytes > target:
            groups.append(current)
            current, size = [], 0
        current.append(task)
        size += task.file.file_size_in_bytes
    if current:
        groups.append(current)
    return [g for g in groups if len(g) > 1]


def compact(table: Table, target_file_bytes: int) -> tuple[Table, int, int, int, int | None]:
    """Rewrite small data files per partition in ONE overwrite commit that changes no row.

    Returns (table, files replaced, files written, partitions, snapshot id or None when nothing to do).
    Raises CompactionCheckError (after deleting what it wrote) if the rewritten rows do not add up.
    """
    tasks = _data_files(table)
    if not tasks or any(t.delete_files for t in tasks):
        return table, 0, 0, 0, None
    small: dict[tuple[int, str], list[FileScanTask]] = {}
    for task in tasks:
        if task.file.file_size_in_bytes < target_file_bytes:
            small.setdefault((task.file.spec_id, repr(task.file.partition)), []).append(task)
    groups = [g for part in small.values() for g in _bins(part, target_file_bytes)]
    if not groups:
        return table, 0, 0, 0, None
    metadata = table.metadata
    # the output target size is this run's, on the in-memory metadata only (the commit sends updates)
    props = {**metadata.properties, TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(target_file_bytes)}
    write_metadata = metadata.model_copy(update={"properties": props})
    commit_uuid = uuid.uuid4()
    counter = itertools.count(0)
    replaced: list[DataFile] = []
    written: list[DataFile] = []
    try:
        for group in groups:
            rows_in = sum(t.file.record_count for t in group)
            data: pa.Table = ArrowScan(
                table_metadata=metadata,
                io=table.io,
                projected_schema=metadata.schema(),
                row_filter=AlwaysTrue(),
            ).to_table(tasks=group)
            if data.num_rows != rows_in:
                raise CompactionCheckError(f"read {data.num_rows} rows from files holding {rows_in}")
            new_files = list(
                _dataframe_to_data_files(
                    table_metadata=write_metadata,
                    df=data,
                    io=table.io,
                    write_uuid=commit_uuid,
                    counter=counter,
                )
            )
            written.extend(new_files)
            if sum(f.record_count for f in new_files) != rows_in:
                raise CompactionCheckError("the rewritten files do not hold the rows they replace")
            replaced.extend(t.file for t in group)
        before = table.current_snapshot()
        before_total = _total(before)
        with (
            table.transaction() as tx,
            tx.update_snapshot(snapshot_properties={MAINTENANCE_PROPERTY: "compaction"}).overwrite() as snap,
        ):
            for f in replaced:
                snap.delete_data_file(f)
            for f in written:
                snap.append_data_file(f)
    except BaseException:
        _delete_files(table, written)
        raise
    table = table.refresh()
    after = table.current_snapshot()
    if _total(after) != before_total:  # cannot happen unless pyiceberg misbehaves: say so loudly
        raise CompactionCheckError(f"total records changed from {before_total} to {_total(after)}")
    return table, len(replaced), len(written), len(small), after.snapshot_id if after else None


def _total(snapshot: Any) -> int | None:
    if snapshot is None or snapshot.summary is None:
        return 0
    value = snapshot.summary.get("total-records")
    return int(value) if value is not None else None


def _delete_files(table: Table, files: list[DataFile]) -> None:
    # best effort: a file left here is unreferenced, so orphan removal takes it later
    for f in files:
        with contextlib.suppress(Exception):
            table.io.delete(f.file_path)


def maintain(table: Table, policy: MaintenancePolicy, now: dt.datetime | None = None) -> MaintenanceResult:
    """Compact, then expire, then remove orphans (in that order, so expired compaction inputs go too)."""
    started = time.monotonic()
    now = now or dt.datetime.now(dt.UTC)
    result = MaintenanceResult(
        snapshots_before=len(table.snapshots()), data_files_before=len(_data_files(table))
    )
    if policy.compact:
        table, result.files_compacted, result.files_written, result.partitions_compacted, sid = compact(
            table, policy.target_file_bytes
        )
        result.compaction_snapshot_id = sid
    if policy.expire:
        table, result.snapshots_expired, kept = expire_snapshots(table, policy, now)
        result.kept_for_rollback = sorted(kept)
    if policy.remove_orphans:
        result.orphan_files_removed, result.orphan_bytes_removed = remove_orphans(
            table, policy.orphan_min_age, now
        )
    result.snapshots_after = len(table.snapshots())
    tasks = _data_files(table)
    result.data_files_after = len(tasks)
    result.records = sum(t.file.record_count for t in tasks)
    result.seconds = round(time.monotonic() - started, 3)
    return result


__all__ = ["JOB_ID_PROPERTY", "CompactionCheckError", "MaintenancePolicy", "MaintenanceResult", "maintain"]
