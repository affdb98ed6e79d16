"""`ingest serve | worker | migrate | token | console | openapi | ...` (domains add their own commands)."""

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.core.settings import Settings, SettingsError
from ingest.jobs.runtime import open_runtime

Command = Callable[[argparse.Namespace, Settings], int]


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ingest.app import create_app
    from ingest.db.migrate import upgrade
    from ingest.db.session import resolve_database_url

    url = resolve_database_url(settings)
    if not args.no_migrate:
        upgrade(url)
    app = create_app(
        settings, database_url=url, run_worker_in_process=not args.no_worker and settings.run_worker
    )
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.core.logging import configure_logging
    from ingest.db.session import libpq_url, resolve_database_url
    from ingest.jobs.queue import create_job_app
    from ingest.jobs.runtime import set_runtime
    from ingest.jobs.worker import run_worker

    configure_logging(settings.log_level, settings.log_format)
    url = resolve_database_url(settings)

    from ingest import metrics, tracing

    metrics.install()
    tracing.install("ingest-worker")

    async def main() -> None:
        async with open_runtime(settings, url, pool_size=settings.worker_concurrency + 2) as runtime:
            set_runtime(runtime)
            job_app = create_job_app(libpq_url(url))
            async with job_app.open_async():
                await run_worker(job_app, settings, install_signal_handlers=True)

    try:
        asyncio.run(main())
    finally:
        metrics.process_exited()
        tracing.shutdown()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.db.migrate import upgrade
    from ingest.db.session import resolve_database_url

    upgrade(resolve_database_url(settings), args.revision)
    print(f"migrated to {args.revision}")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.auth import PERMISSION_MANAGE, PERMISSION_READ, TokenVerifier

    try:
        tenants = [uuid.UUID(t) for t in args.tenant]
    except ValueError:
        print("error: --tenant must be a UUID", file=sys.stderr)
        return 2
    permissions = args.permission or [PERMISSION_READ, PERMISSION_MANAGE]
    try:
        print(TokenVerifier(settings).issue(tenants, permissions, args.ttl, subject=args.subject))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_console(args: argparse.Namespace, settings: Settings) -> int:
    """Print a sign-in link to the console: a fresh token in the URL fragment, which browsers never send."""
    from ingest.auth import PERMISSION_MANAGE, PERMISSION_READ, TokenVerifier

    try:
        tenants = [uuid.UUID(t) for t in args.tenant]
    except ValueError:
        print("error: --tenant must be a UUID", file=sys.stderr)
        return 2
    permissions = args.permission or [PERMISSION_READ, PERMISSION_MANAGE]
    try:
        token = TokenVerifier(settings).issue(tenants, permissions, args.ttl, subject=args.subject)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.url:
        base = args.url.rstrip("/")
    else:
        host = settings.host if settings.host not in {"0.0.0.0", "::", ""} else "localhost"
        base = f"http://{host}:{settings.port}"
    print(f"{base}/console/#token={token}")
    return 0


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.openapi import render_openapi

    text = render_openapi()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def cmd_jobs_probe(args: argparse.Namespace, settings: Settings) -> int:
    """Defer the probe task and wait until a worker has run it."""
    from ingest.db.session import libpq_url, resolve_database_url
    from ingest.jobs.queue import NAMESPACE, create_job_app

    async def main() -> int:
        job_app = create_job_app(libpq_url(resolve_database_url(settings)))
        async with job_app.open_async():
            job_id = await job_app.configure_task(f"{NAMESPACE}:jobs.probe").defer_async()
            for _ in range(int(args.timeout * 10)):
                status = await job_app.job_manager.get_job_status_async(job_id)
                if status.value in {"succeeded", "failed"}:
                    print(f"job {job_id}: {status.value}")
                    return 0 if status.value == "succeeded" else 1
                await asyncio.sleep(0.1)
        print(f"job {job_id}: no worker picked it up within {args.timeout}s", file=sys.stderr)
        return 1

    return asyncio.run(main())


LOCAL_TENANT = "00000000-0000-0000-0000-000000000000"


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import a local file into an Iceberg table in-process, with the API's pipeline and a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ingest.core.errors import AppError
    from ingest.core.logging import configure_logging
    from ingest.db.session import resolve_database_url
    from ingest.files.plan import REJECTS_SUFFIX
    from ingest.files.service import import_local_file
    from ingest.jobs.runtime import set_runtime

    configure_logging("WARNING", "console")
    path = Path(args.file)
    if not path.is_file():
        print(f"error: {path} is not a file", file=sys.stderr)
        return 2
    try:
        tenant = uuid.UUID(args.tenant)
    except ValueError:
        print("error: --tenant must be a UUID", file=sys.stderr)
        return 2
    try:
        choices = _import_choices(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except AppError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    url = resolve_database_url(settings)

    async def main() -> int:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            async with open_runtime(settings, url) as runtime:
                set_runtime(runtime)
                with Progress(*columns) as bar:
                    task = bar.add_task(
                        f"{path.name} -> {args.namespace or 'default'}.{args.table}", total=None
                    )

                    def on_progress(rows: int, total: int | None) -> None:
                        bar.update(task, completed=rows, total=total)

                    file, outcome = await import_local_file(
                        runtime,
                        tenant,
                        path,
                        args.table,
                        args.namespace,
                        on_progress=on_progress,
                        choices=choices,
                    )
        except AppError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        if outcome is None or outcome.error_message:
            reason = outcome.error_message if outcome else "not run"
            print(f"file {file.id}: FAILED: {reason}", file=sys.stderr)
            return 1
        target = f"{args.namespace or 'default'}.{args.table}"
        print(f"file {file.id}: {outcome.records_imported} rows imported into {target} (tenant {tenant})")
        if outcome.records_rejected is not None:
            print(f"{outcome.records_rejected} rows rejected into {target}{REJECTS_SUFFIX}")
        return 0

    return asyncio.run(main())


def _json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} is not JSON: {e.msg}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object")
    return value


def _import_choices(args: argparse.Namespace) -> dict[str, Any]:
    """What the schema PUT takes besides the table, from the flags (read options by their API names)."""
    from ingest.formats.dialect import ReadOptions

    read_options = _json_object(args.read_options, "--read-options")
    choices: dict[str, Any] = {
        "column_mappings": _json_object(args.column_mappings, "--column-mappings"),
        "column_types": _json_object(args.column_types, "--column-types"),
        "mode": args.mode,
        "on_error": args.on_error,
        "max_error_rows": args.max_error_rows,
        "max_error_ratio": args.max_error_ratio,
    }
    if read_options is not None:
        choices["read_options"] = ReadOptions.from_wire(read_options).to_dict()
    return choices


def add_import_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser("import", help="import a local file into an Iceberg table (no API or worker needed)")
    imp.add_argument("file")
    imp.add_argument("--table", required=True, help="target table name")
    imp.add_argument("--namespace", help="target schema inside the tenant's namespace (default: default)")
    imp.add_argument("--tenant", default=LOCAL_TENANT, help=f"tenant UUID (default {LOCAL_TENANT})")
    imp.add_argument(
        "--mode", choices=["append", "overwrite"], help="into an existing table (default append)"
    )
    imp.add_argument(
        "--read-options",
        metavar="JSON",
        help='how to read the file, as the API\'s readOptions: {"delimiter": ";", "encoding": "cp1252",'
        ' "header": false, "skipRows": 2, "decimalComma": true, "quoteChar": "\'", "sheet": "Q1",'
        ' "recordsPath": "data.items"}',
    )
    imp.add_argument(
        "--column-types", metavar="JSON", help='as the API\'s columnTypes: {"amount": "DECIMAL(12,2)"}'
    )
    imp.add_argument("--column-mappings", metavar="JSON", help='as the API\'s columnMappings: {"src": "dst"}')
    imp.add_argument(
        "--on-error",
        choices=["abort", "skip"],
        default="abort",
        help="skip: rows that do not convert go to <table>__rejects (default abort)",
    )
    imp.add_argument("--max-error-rows", type=int, help="under skip: fail past this many rejected rows")
    imp.add_argument(
        "--max-error-ratio", type=float, help="under skip: fail past this share of rejected rows"
    )
    imp.set_defaults(func=cmd_import)


def cmd_connectors_list(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.engines.embedded import installer
    from ingest.engines.registry import all_connectors

    for connector in all_connectors():
        installed = ""
        if connector.package is not None:
            venv = installer.venv_dir(settings.connectors_dir, connector)
            installed = "installed" if installer.is_installed(venv, connector) else "not installed"
        if connector.package:
            package = f"{connector.package}=={connector.version}"
        elif "embedded" in connector.engines:
            package = "(read natively, nothing to install)"
        else:
            package = "(Docker image only)"
        print(f"{connector.id:20} {','.join(sorted(connector.engines)):17} {package:45} {installed}")
    return 0


def cmd_connectors_install(args: argparse.Namespace, settings: Settings) -> int:
    """Install connectors into their own virtualenvs ahead of first use."""
    from ingest.core.errors import AppError
    from ingest.engines.embedded import EmbeddedEngine
    from ingest.engines.registry import all_connectors, get_connector

    names = [c.id for c in all_connectors() if c.package] if args.all else args.name
    if not names:
        print("error: name a connector (see `ingest connectors list`) or pass --all", file=sys.stderr)
        return 2
    engine = EmbeddedEngine(settings)
    failed = 0
    for name in names:
        connector = get_connector(name)
        if connector is not None and connector.package is None and "embedded" in connector.engines:
            print(f"{name}: read natively by the embedded engine, nothing to install")
            continue
        if connector is None or connector.package is None:
            print(f"error: {name}: not a connector the embedded engine can run", file=sys.stderr)
            failed += 1
            continue
        try:
            venv = asyncio.run(engine.install(connector))
        except AppError as exc:
            print(f"error: {name}: {exc.message}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {connector.package}=={connector.version} in {venv}")
    return 1 if failed else 0


def cmd_secrets_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Re-encrypt every stored connector secret with the first key of INGEST_SECRET_KEY."""
    from ingest.db.session import resolve_database_url
    from ingest.sources.service import rotate_secrets

    url = resolve_database_url(settings)

    async def main() -> int:
        async with open_runtime(settings, url) as runtime:
            count = await rotate_secrets(runtime)
        print(f"re-encrypted the secrets of {count} source(s) with key '{runtime.secret_box.primary}'")
        return 0

    return asyncio.run(main())


def add_admin_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    connectors = sub.add_parser("connectors", help="connector types and their installs")
    connectors_sub = connectors.add_subparsers(dest="connectors_command", required=True)
    connectors_sub.add_parser("list", help="every connector type, its package and engines").set_defaults(
        func=cmd_connectors_list
    )
    install = connectors_sub.add_parser("install", help="install connectors ahead of first use")
    install.add_argument("name", nargs="*", help="connector ids (faker, s3, github, ...)")
    install.add_argument("--all", action="store_true", help="every connector the embedded engine can run")
    install.set_defaults(func=cmd_connectors_install)

    secrets = sub.add_parser("secrets", help="connector secrets at rest")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True)
    secrets_sub.add_parser(
        "rotate", help="re-encrypt stored secrets with the first INGEST_SECRET_KEY key"
    ).set_defaults(func=cmd_secrets_rotate)


def cmd_airbyte_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    """List drift between our sources/connections and Airbyte per tenant; with --repair, fix it."""
    from ingest.connections.service import reconcile_tenant
    from ingest.core.errors import AppError
    from ingest.db.session import resolve_database_url
    from ingest.sources.service import tenant_ids

    if settings.engine != "airbyte":
        print("error: INGEST_ENGINE is not 'airbyte': there is nothing to reconcile", file=sys.stderr)
        return 2
    try:
        only = [uuid.UUID(t) for t in args.tenant or []]
    except ValueError:
        print("error: --tenant must be a UUID", file=sys.stderr)
        return 2
    url = resolve_database_url(settings)

    async def main() -> int:
        drifted = failed = 0
        async with open_runtime(settings, url) as runtime:
            for tenant in only or await tenant_ids(runtime):
                try:
                    drift = await reconcile_tenant(runtime, tenant, repair=args.repair)
                except AppError as exc:
                    print(f"tenant {tenant}: error: {exc.message}", file=sys.stderr)
                    failed += 1
                    continue
                print(
                    f"tenant {tenant} (workspace {drift.workspace_id or 'none'}): "
                    + ("in sync" if drift.clean else "drift")
                )
                for source_id, name in drift.missing_sources:
                    print(f"  missing in Airbyte: source {source_id} ({name})")
                for connection_id, name in drift.missing_connections:
                    print(f"  missing in Airbyte: connection {connection_id} ({name})")
                for external_id in drift.orphan_sources:
                    print(f"  orphan in Airbyte: source {external_id}")
                for external_id in drift.orphan_connections:
                    print(f"  orphan in Airbyte: connection {external_id}")
                for connection_id, name, active in drift.status_mismatches:
                    want, has = ("active", "inactive") if active else ("inactive (paused)", "active")
                    print(
                        f"  status in Airbyte: connection {connection_id} ({name}) is {has}, should be {want}"
                    )
                for done in drift.repaired:
                    print(f"  repaired: {done}")
                drifted += 0 if drift.clean or drift.repaired else 1
        return 1 if drifted or failed else 0

    return asyncio.run(main())


def add_airbyte_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    airbyte = sub.add_parser("airbyte", help="tools for INGEST_ENGINE=airbyte")
    airbyte_sub = airbyte.add_subparsers(dest="airbyte_command", required=True)
    reconcile = airbyte_sub.add_parser(
        "reconcile", help="list drift between our database and Airbyte per tenant (exit 1 when unrepaired)"
    )
    reconcile.add_argument("--repair", action="store_true", help="re-create missing copies, delete orphans")
    reconcile.add_argument("--tenant", action="append", help="only this tenant UUID (repeatable)")
    reconcile.set_defaults(func=cmd_airbyte_reconcile)


EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    add_admin_commands,
    add_airbyte_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (and a worker, unless --no-worker)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-worker", action="store_true", help="API only; run `ingest worker` separately")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("worker", help="run a job worker").set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="print a bearer token the server accepts (HS256 / development key)")
    token.add_argument("--tenant", action="append", required=True, help="tenant UUID (repeatable)")
    token.add_argument("--permission", action="append", help="permission (repeatable; default read+manage)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--subject", default="cli")
    token.set_defaults(func=cmd_token)

    console = sub.add_parser("console", help="print a sign-in link to the admin console (local use)")
    console.add_argument("--tenant", action="append", required=True, help="tenant UUID (repeatable)")
    console.add_argument("--permission", action="append", help="permission (repeatable; default read+manage)")
    console.add_argument("--ttl", type=int, default=3600, help="token lifetime in seconds (default 3600)")
    console.add_argument("--subject", default="console")
    console.add_argument("--url", help="the service's base URL (default http://localhost:$INGEST_PORT)")
    console.set_defaults(func=cmd_console)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document as YAML")
    openapi.add_argument("--output", "-o", default="-")
    openapi.set_defaults(func=cmd_openapi)

    jobs = sub.add_parser("jobs", help="job queue tools")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    probe = jobs_sub.add_parser("probe", help="check that a worker runs jobs")
    probe.add_argument("--timeout", type=float, default=30.0)
    probe.set_defaults(func=cmd_jobs_probe)

    add_import_command(sub)
    for add in EXTRA_COMMANDS:
        add(sub)
    return parser


def check_startup(settings: Settings) -> None:
    """What a service process needs before it starts: sane settings and readable keys (SettingsError)."""
    settings.check()  # before the imports below: a bad value is reported in a fraction of a second

    from ingest.auth import TokenVerifier
    from ingest.core.crypto import SecretBox

    if settings.secret_key:
        try:
            SecretBox.from_setting(settings.secret_key)
        except (ValueError, TypeError) as e:
            # binascii.Error is a ValueError; the key material itself is never shown
            if str(e).startswith("INGEST_SECRET_KEY"):
                raise SettingsError(str(e)) from None
            raise SettingsError("INGEST_SECRET_KEY is malformed: a key is not valid base64") from None
    else:
        try:
            SecretBox.development(settings.data_dir)
        except (OSError, ValueError) as e:
            raise SettingsError(
                f"INGEST_SECRET_KEY is unset and the development key in INGEST_DATA_DIR"
                f" ({settings.data_dir}) cannot be read or created: {_reason(e)}"
            ) from None
    try:
        TokenVerifier(settings)
    except (OSError, ValueError) as e:
        setting = "INGEST_JWT_SECRET" if not settings.jwt_jwks_url else "INGEST_JWT_JWKS_URL"
        raise SettingsError(
            f"{setting} is unset and the development signing key in INGEST_DATA_DIR"
            f" ({settings.data_dir}) cannot be read or created: {_reason(e)}"
            if isinstance(e, OSError)
            else f"{setting}: {e}"
        ) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    return str(error).splitlines()[0] if str(error) else type(error).__name__


# commands that start a long-running service: they refuse to start on settings they cannot work with
SERVICE_COMMANDS = {cmd_serve, cmd_worker}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.func in SERVICE_COMMANDS:
            check_startup(settings)
    except SettingsError as e:
        # one line naming the setting, no traceback: the operator fixes the environment and starts again
        print(f"ingest: cannot start: {e}", file=sys.stderr)
        return 2
    result: int = args.func(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
