"""Scale-out: two API processes and two workers on one database; every sync runs exactly once.

The processes are the real commands a deployment runs (`ingest serve --no-worker`, `ingest worker`). Syncs
are triggered through both APIs alternately; the proof of "exactly once" is threefold: each sync row ran one
attempt and SUCCEEDED, the queue holds one job per sync that was started once, and each sync's Iceberg table
has exactly one snapshot tagged with that sync's id.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest.db.session import libpq_url
from ingest.iceberg.warehouse import Warehouse
from tests.conftest import headers_for
from tests.processes import free_port, running, serve_command, wait_ready

SYNCS = 6
DEADLINE_SECONDS = 150


@pytest.fixture
def cluster(env_for_subprocess: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    """2 x `ingest serve --no-worker` + 2 x `ingest worker`; yields the API base URLs; always cleaned up."""
    env = dict(
        env_for_subprocess,
        INGEST_WORKER_CONCURRENCY="2",
        INGEST_LOG_FORMAT="json",
        # a worker starved of CPU on this shared machine must not look dead: stall recovery is not under test
        INGEST_JOB_STALL_SECONDS="60",
    )
    ports = [free_port(), free_port()]
    commands = [*(serve_command(p) for p in ports), ["worker"], ["worker"]]
    with running(commands, env, tmp_path) as processes:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        wait_ready(urls, processes, tmp_path)
        yield urls


async def test_every_sync_runs_exactly_once(cluster, settings, database_url):
    tenant = uuid.uuid4()
    headers = headers_for(tenant)
    async with httpx.AsyncClient(timeout=120) as http:
        apis = list(cluster)

        def api(i: int) -> str:
            return apis[i % len(apis)]

        source = await http.post(
            f"{api(0)}/api/v1/sources",
            json={
                "name": "shop",
                "connectorType": "faker",
                "connectionConfig": {"count": 5, "seed": 3, "parallelism": 1, "always_updated": False},
            },
            headers=headers,
        )
        assert source.status_code == 201, source.text
        await http.post(f"{api(1)}/api/v1/sources/{source.json()['id']}/discover", headers=headers)
        connections = []
        for i in range(SYNCS):  # one connection per sync, each into its own namespace (one table per sync)
            body = {
                "sourceId": source.json()["id"],
                "name": f"c{i}",
                "namespace": f"n{i}",
                "selectedStreams": ["products"],
            }
            response = await http.post(f"{api(i)}/api/v1/connections", json=body, headers=headers)
            assert response.status_code == 201, response.text
            connections.append(response.json()["id"])

        triggered = await asyncio.gather(
            *(
                http.post(f"{api(i + 1)}/api/v1/syncs/connections/{c}/trigger", headers=headers)
                for i, c in enumerate(connections)
            )
        )
        assert [r.status_code for r in triggered] == [202] * SYNCS, [r.text for r in triggered]
        syncs = {r.json()["id"]: f"n{i}" for i, r in enumerate(triggered)}

        deadline = time.monotonic() + DEADLINE_SECONDS
        ended: dict[str, dict] = {}
        while len(ended) < SYNCS:
            assert time.monotonic() < deadline, f"still running: {set(syncs) - set(ended)}"
            for i, sync_id in enumerate(set(syncs) - set(ended)):
                body = (await http.get(f"{api(i)}/api/v1/syncs/{sync_id}", headers=headers)).json()
                if body["status"] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
                    ended[sync_id] = body
            await asyncio.sleep(0.5)
    assert {b["status"] for b in ended.values()} == {"SUCCEEDED"}, ended

    ids = list(syncs)
    with psycopg.connect(libpq_url(database_url)) as conn:
        attempts = dict(
            conn.execute("SELECT id::text, attempts FROM syncs WHERE id::text = ANY(%s)", (ids,)).fetchall()
        )
        jobs = conn.execute(
            "SELECT j.args->>'sync_id', j.status, j.attempts, "
            "(SELECT count(*) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'started') "
            "FROM procrastinate_jobs j WHERE j.task_name = 'ingest:syncs.run' AND j.args->>'sync_id' = ANY(%s)",
            (ids,),
        ).fetchall()
    assert attempts == dict.fromkeys(ids, 1)  # our own counter: one run of each sync
    assert sorted(job[0] for job in jobs) == sorted(ids)  # one queue job per sync
    # procrastinate counts the finished attempt: 1 attempt, one `started` event, no retry
    assert {(job[1], job[2], job[3]) for job in jobs} == {("succeeded", 1, 1)}

    warehouse = Warehouse.from_settings(settings, database_url)
    for sync_id, namespace in syncs.items():
        info = warehouse.describe(tenant, namespace, "products")
        tagged = [s.summary.get("ingest.job-id") for s in info.snapshots if s.summary.get("ingest.job-id")]
        assert tagged == [f"sync-{sync_id}"], (namespace, tagged)
        assert warehouse.read_all(tenant, namespace, "products").height == 5
