"""The durable job queue (procrastinate on PostgreSQL) and transactional enqueueing."""

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import procrastinate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.core import observe

NAMESPACE = "ingest"

# Every task of every domain is registered on this blueprint (`<domain>/jobs.py`).
tasks = procrastinate.Blueprint()

# Called with a job's args when the job is given up on (its worker died too often), so the domain can
# mark its own row FAILED instead of leaving it IMPORTING/RUNNING forever.
AbandonHook = Callable[[dict[str, Any], str], Awaitable[None]]
abandon_hooks: dict[str, AbandonHook] = {}


def on_abandoned(task_name: str) -> Callable[[AbandonHook], AbandonHook]:
    def register(fn: AbandonHook) -> AbandonHook:
        abandon_hooks[task_name] = fn
        return fn

    return register


# Tasks that continue the trace of the request that enqueued them: `defer` stores its `traceparent`.
traced_tasks: set[str] = set()
Task = TypeVar("Task", bound=Callable[..., Awaitable[Any]])


def traced(task_name: str) -> Callable[[Task], Task]:
    """Under `@tasks.task(name=...)`: the job runs in a span that is a child of the enqueuing request."""

    def wrap(fn: Task) -> Task:
        traced_tasks.add(task_name)

        @functools.wraps(fn)
        async def run(*args: Any, traceparent: str | None = None, **kwargs: Any) -> Any:
            with observe.continue_trace(f"job {task_name}", traceparent):
                return await fn(*args, **kwargs)

        return cast(Task, run)

    return wrap


TASK_MODULES = [
    "ingest.jobs.builtin",
    "ingest.syncs.jobs",
    "ingest.connections.jobs",
    "ingest.files.jobs",
    "ingest.tables.jobs",
    "ingest.webhooks.jobs",
    "ingest.uploads.jobs",
]


def create_job_app(conninfo: str) -> procrastinate.App:
    import importlib

    for module in TASK_MODULES:  # importing a module registers its tasks on `tasks`
        importlib.import_module(module)

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    if not any(name.startswith(f"{NAMESPACE}:") for name in tasks.tasks):
        app.add_tasks_from(tasks, namespace=NAMESPACE)
        return app
    # `add_tasks_from` namespaces the shared blueprint's tasks in place, so a second app in the same process
    # (tests build one per app) takes the already-namespaced tasks and points them at itself.
    for task in tasks.tasks.values():
        task.blueprint = app
    app.tasks.update(tasks.tasks)
    for periodic_task in tasks.periodic_registry.periodic_tasks.values():
        app.periodic_registry.register_task(
            task=periodic_task.task,
            cron=periodic_task.cron,
            periodic_id=periodic_task.periodic_id,
            configure_kwargs=periodic_task.configure_kwargs,
        )
    return app


_DEFER_SQL = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, :lock, :queueing_lock, "
    "CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


async def defer(
    session: AsyncSession,
    task_name: str,
    *,
    queue: str = "default",
    lock: str | None = None,
    queueing_lock: str | None = None,
    priority: int = 0,
    **args: Any,
) -> int:
    """Enqueue a job inside the caller's transaction: it exists exactly when the rows it works on do."""
    if task_name in traced_tasks:
        args["traceparent"] = observe.traceparent()
    result = await session.execute(
        _DEFER_SQL,
        {
            "queue": queue,
            "task": f"{NAMESPACE}:{task_name}",
            "priority": priority,
            "lock": lock,
            "queueing_lock": queueing_lock,
            "args": json.dumps(args),
        },
    )
    ids = result.scalar_one()
    return int(ids[0])
