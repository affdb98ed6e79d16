"""Sources: config checked against the connector's spec, secrets encrypted, status, over the engine."""

import copy
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.core.crypto import SecretBox, is_envelope
from ingest.core.errors import ConflictError, ConnectorError, InvalidRequestError, NotFoundError
from ingest.core.logging import get_logger
from ingest.db.models import Source
from ingest.engines.airbyte.client import RemoteNotFoundError
from ingest.engines.base import (
    CheckResult,
    ColumnType,
    ConnectorType,
    DiscoveredColumn,
    DiscoveredStream,
    SyncMode,
)
from ingest.engines.registry import get_connector, normalize_config, runnable_by
from ingest.engines.secrets import MASK, _replace_at, secret_paths
from ingest.jobs.runtime import Runtime
from ingest.sources.repository import SourceRepository, all_tenant_ids, tenant_row

log = get_logger("ingest.sources")
T = TypeVar("T")


class SourceStatus:
    INACTIVE = "INACTIVE"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"


class SourceHasConnectionsError(ConflictError):
    pass


def _is_platform(engine: Any) -> bool:
    return bool(getattr(engine, "runs_syncs_remotely", False))


# -- config helpers -------------------------------------------------------------------------------------


def _at(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _contains_mask(config: Mapping[str, Any], spec: Mapping[str, Any]) -> list[str]:
    """Dotted paths of secrets that the request sent as `********`."""
    found: list[str] = []
    for path in secret_paths(spec):

        def look(parent: Any, key: Any, _path: tuple[str, ...] = path) -> None:
            if parent[key] == MASK:
                found.append(".".join(_path))

        _replace_at(copy.deepcopy(dict(config)), path, look)
    return found


def _validation_problem(error: ValidationError) -> str:
    """The problem in words, never the submitted value (it may be a secret)."""
    kind = error.validator
    expected = error.validator_value
    if kind == "required":
        missing = [
            name for name in expected if isinstance(error.instance, dict) and name not in error.instance
        ]
        return "is missing required field " + ", ".join(f"'{name}'" for name in missing)
    messages = {
        "type": f"must be of type {expected}",
        "enum": f"must be one of {expected}",
        "const": f"must be {expected!r}",
        "minimum": f"must be >= {expected}",
        "maximum": f"must be <= {expected}",
        "exclusiveMinimum": f"must be > {expected}",
        "exclusiveMaximum": f"must be < {expected}",
        "minLength": f"must be at least {expected} characters",
        "maxLength": f"must be at most {expected} characters",
        "pattern": "does not match the expected pattern",
        "format": f"must be a valid {expected}",
        "minItems": f"must have at least {expected} items",
        "maxItems": f"must have at most {expected} items",
        "additionalProperties": "has fields the connector does not accept",
        "oneOf": "does not match any of the allowed options",
        "anyOf": "does not match any of the allowed options",
    }
    return messages.get(str(kind), f"fails the '{kind}' rule")


def validate_config(config: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """400 naming each bad field of `connectionConfig`, checked against the connector's own JSON Schema."""
    validator = Draft7Validator(dict(spec))
    problems = []
    for error in sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.absolute_path))):
        field = ".".join(["connectionConfig", *map(str, error.absolute_path)])
        problems.append(f"{field} {_validation_problem(error)}")
    if problems:
        raise InvalidRequestError("Invalid connectionConfig: " + "; ".join(dict.fromkeys(problems)))


def encrypt_secrets(config: Mapping[str, Any], spec: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """A copy of `config` with every secret value replaced by an encrypted envelope."""
    stored = copy.deepcopy(dict(config))

    def seal(parent: Any, key: Any) -> None:
        if parent[key] is not None and parent[key] != "":
            parent[key] = box.encrypt(json.dumps(parent[key]))

    for path in secret_paths(spec):
        _replace_at(stored, path, seal)
    return stored


def _walk_envelopes(node: Any, fn: Any) -> Any:
    if is_envelope(node):
        return fn(node)
    if isinstance(node, dict):
        return {k: _walk_envelopes(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk_envelopes(v, fn) for v in node]
    return node


def masked_config(stored: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _walk_envelopes(dict(stored), lambda _: MASK)
    return result


def decrypted_config(stored: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    result: dict[str, Any] = _walk_envelopes(dict(stored), lambda env: json.loads(box.decrypt(env)))
    return result


# -- catalog (stored with the source for connections to use) ---------------------------------------------


def stream_to_dict(stream: DiscoveredStream) -> dict[str, Any]:
    return dataclasses.asdict(stream)


def stream_from_dict(data: Mapping[str, Any]) -> DiscoveredStream:
    return DiscoveredStream(
        name=data["name"],
        namespace=data.get("namespace"),
        columns=[
            DiscoveredColumn(
                c["name"],
                ColumnType(c["type"]),
                bool(c["nullable"]),
                c.get("json_schema") or {},
                c.get("precision"),
                c.get("scale"),
            )
            for c in data.get("columns", [])
        ],
        supported_sync_modes=[SyncMode(m) for m in data.get("supported_sync_modes", [])],
        json_schema=data.get("json_schema") or {},
        primary_key=[list(p) for p in data.get("primary_key") or []],
        cursor_field=list(data.get("cursor_field") or []),
        source_defined_cursor=bool(data.get("source_defined_cursor", False)),
    )


class SourceService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = SourceRepository(session, tenant_id)
        self.tenant_id = tenant_id
        self.runtime = runtime
        self.engine = runtime.engine
        self.box: SecretBox = runtime.secret_box

    # -- connector types

    @staticmethod
    def connector_types(engine_name: str) -> list[str]:
        return [c.id for c in runnable_by(engine_name)]

    @classmethod
    def connector_for_engine(cls, connector_type: str, engine_name: str) -> ConnectorType:
        """The registry entry, or 400 when it is unknown or the engine cannot run it."""
        connector = get_connector(connector_type)
        if connector is None:
            raise InvalidRequestError(
                f"Unknown connectorType '{connector_type}'; available: "
                + ", ".join(cls.connector_types(engine_name))
            )
        if engine_name not in connector.engines:
            needed = " or ".join(sorted(connector.engines))
            raise InvalidRequestError(
                f"Connector '{connector.id}' needs the {needed} engine (INGEST_ENGINE={needed}); "
                f"this service runs the {engine_name} engine"
            )
        return connector

    @classmethod
    def connector_by_path(cls, connector_type: str, engine_name: str) -> ConnectorType:
        """As `connector_for_engine`, for a connector type named in a path: an unknown one is 404."""
        if get_connector(connector_type) is None:
            raise NotFoundError(f"No connector type '{connector_type[:100]}'")
        return cls.connector_for_engine(connector_type, engine_name)

    def connector(self, connector_type: str) -> ConnectorType:
        return self.connector_for_engine(connector_type, self.engine.name)

    async def spec(self, connector: ConnectorType) -> dict[str, Any]:
        spec: dict[str, Any] = await self.engine.spec(connector)
        return spec

    # -- CRUD

    async def get(self, source_id: uuid.UUID) -> Source:
        source = await self.repository.get(source_id)
        if source is None:
            raise NotFoundError(f"Source {source_id} not found")
        return source

    async def list_all(self) -> list[Source]:
        return await self.repository.list_all()

    async def create(
        self, name: str, connector_type: str, config: dict[str, Any], description: str | None
    ) -> Source:
        connector = self.connector(connector_type)
        if await self.repository.name_taken(name):
            raise ConflictError(f"A source named '{name}' already exists")
        spec = await self.spec(connector)
        # a masked value on create has nothing to keep: it is dropped and reported missing if required
        plain = self._merge(normalize_config(connector, config), {}, spec)
        validate_config(plain, spec)
        self.engine.check_options(connector, plain)
        source = Source(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            name=name,
            description=description,
            connector_type=connector.id,
            connector_version=connector.version,
            config=encrypt_secrets(plain, spec, self.box),
            status=SourceStatus.INACTIVE,
        )
        try:
            # our row first: a name taken meanwhile fails here, before anything exists in Airbyte
            async with self.repository.session.begin_nested():
                await self.repository.add(source)
        except IntegrityError:
            raise ConflictError(f"A source named '{name}' already exists") from None
        if _is_platform(self.engine):
            await self.create_remote(source, plain)
        log.info(
            "sources.created", source_id=str(source.id), connector=connector.id, tenant=str(self.tenant_id)
        )
        return source

    def _merge(
        self, new: dict[str, Any], stored_plain: dict[str, Any], spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        from ingest.engines.secrets import merge_masked

        return merge_masked(new, stored_plain, spec)

    async def update(
        self,
        source_id: uuid.UUID,
        name: str | None,
        description: str | None,
        config: dict[str, Any] | None,
    ) -> Source:
        source = await self.repository.get(source_id, for_update=True)
        if source is None:
            raise NotFoundError(f"Source {source_id} not found")
        if name is not None and name != source.name:
            if await self.repository.name_taken(name, exclude=source.id):
                raise ConflictError(f"A source named '{name}' already exists")
            source.name = name
        if description is not None:
            source.description = description
        plain: dict[str, Any] | None = None
        if config is not None:
            connector = self.connector(source.connector_type)
            spec = await self.spec(connector)
            stored_plain = decrypted_config(source.config, self.box)
            config = normalize_config(connector, config)
            masked_paths = _contains_mask(config, spec)
            merged = self._merge(config, stored_plain, spec)
            if masked_paths:
                moved = [f for f in connector.endpoint_fields if _at(merged, f) != _at(stored_plain, f)]
                if moved:
                    raise InvalidRequestError(
                        f"connectionConfig changes where the connector connects ({', '.join(moved)}); "
                        f"send the secret value(s) again instead of '{MASK}': {', '.join(masked_paths)}"
                    )
            validate_config(merged, spec)
            self.engine.check_options(connector, merged)
            if merged != stored_plain:
                source.config = encrypt_secrets(merged, spec, self.box)
                source.status = SourceStatus.INACTIVE
                source.status_message = None
                source.catalog = None
                plain = merged
        if _is_platform(self.engine) and (plain is not None or name is not None):
            connector = self.connector(source.connector_type)
            sent = plain if plain is not None else decrypted_config(source.config, self.box)
            await self.on_remote(
                source,
                lambda external_id: self.engine.update_source(
                    str(self.tenant_id), external_id, source.name, connector, sent
                ),
                again=False,  # a re-created copy already has the new name and config
            )
        source.updated_at = datetime.now(UTC)
        await self.repository.session.flush()
        return source

    async def delete(self, source_id: uuid.UUID) -> None:
        source = await self.get(source_id)
        connections = await self.repository.count_connections(source.id)
        if connections:
            raise SourceHasConnectionsError(
                f"Source {source_id} has {connections} connection(s); delete them first"
            )
        if _is_platform(self.engine) and source.external_id:
            await self.engine.delete_source(str(self.tenant_id), source.external_id)
        await self.repository.delete(source)
        log.info("sources.deleted", source_id=str(source_id), tenant=str(self.tenant_id))

    # -- engine operations

    def plain_config(self, source: Source) -> dict[str, Any]:
        """The decrypted config, for engine calls only (never for responses or logs)."""
        return decrypted_config(source.config, self.box)

    async def test_connection(self, source_id: uuid.UUID) -> Source:
        source = await self.get(source_id)
        connector = self.connector(source.connector_type)
        try:
            if _is_platform(self.engine):
                result = await self.on_remote(
                    source, lambda external_id: self.engine.check_source(str(self.tenant_id), external_id)
                )
            else:
                result = await self.engine.check(connector, self.plain_config(source))
        except ConnectorError as exc:
            # the connector could not even run its check: the source is in error, with the (scrubbed) reason
            result = CheckResult(False, exc.message)
        previous = source.status
        source.status = SourceStatus.ACTIVE if result.succeeded else SourceStatus.ERROR
        source.status_message = None if result.succeeded else (result.message or "Connection check failed")
        source.last_tested_at = datetime.now(UTC)
        await self.repository.session.flush()
        if previous != source.status:
            from ingest.webhooks.service import emit, iso

            await emit(
                self.repository.session,
                self.tenant_id,
                "source.status_changed",
                {
                    "sourceId": str(source.id),
                    "status": source.status,
                    "previousStatus": previous,
                    "testedAt": iso(source.last_tested_at),
                },
            )
        log.info("sources.tested", source_id=str(source.id), status=source.status, tenant=str(self.tenant_id))
        return source

    async def discover(self, source_id: uuid.UUID) -> list[DiscoveredStream]:
        source = await self.get(source_id)
        connector = self.connector(source.connector_type)
        streams: list[DiscoveredStream]
        if _is_platform(self.engine):
            streams = await self.on_remote(
                source, lambda external_id: self.engine.discover_source(str(self.tenant_id), external_id)
            )
        else:
            streams = await self.engine.discover(connector, self.plain_config(source))
        source.catalog = [stream_to_dict(s) for s in streams]
        source.discovered_at = datetime.now(UTC)
        await self.repository.session.flush()
        return streams

    # -- the platform copy (INGEST_ENGINE=airbyte)
    #
    # Our database is the source of truth; Airbyte holds copies. Drift (a copy deleted in Airbyte's UI, or
    # never created because the engine was switched) is repaired when an operation needs the copy: it is
    # re-created from our stored config and the operation retried once. Plain reads (GET) never call
    # Airbyte; `ingest airbyte reconcile` finds the rest.

    async def prepare_platform(self) -> None:
        """Hand the engine the tenant's persisted workspace id, finding or creating (and saving) it once.

        The tenants row is locked meanwhile, so two processes never create two workspaces for one tenant.
        It is saved in a transaction of its own: the workspace stays useful even if this request fails.
        """
        tenant = str(self.tenant_id)
        async with self.runtime.session_maker() as session, session.begin():
            row = await tenant_row(session, self.tenant_id)
            if row is not None and row.airbyte_workspace_id:
                self.engine.remember_workspace(tenant, row.airbyte_workspace_id)
                return
            row = await tenant_row(session, self.tenant_id, lock=True)
            assert row is not None
            if row.airbyte_workspace_id:
                self.engine.remember_workspace(tenant, row.airbyte_workspace_id)
                return
            row.airbyte_workspace_id = await self.engine.workspace_id(tenant)
            log.info("sources.workspace_saved", tenant=tenant, workspace_id=row.airbyte_workspace_id)

    async def remember_workspace(self) -> str | None:
        """Hand the engine the tenant's persisted workspace id, if there is one (never creates it)."""
        row = await tenant_row(self.repository.session, self.tenant_id)
        if row is None or not row.airbyte_workspace_id:
            return None
        self.engine.remember_workspace(str(self.tenant_id), row.airbyte_workspace_id)
        return row.airbyte_workspace_id

    async def create_remote(self, source: Source, plain: dict[str, Any] | None = None) -> str:
        """Create the source's copy in Airbyte and store its id (replacing a lost one)."""
        await self.prepare_platform()
        connector = self.connector(source.connector_type)
        config = plain if plain is not None else self.plain_config(source)
        external_id: str = await self.engine.create_source(
            str(self.tenant_id), source.name, connector, config
        )
        try:
            source.external_id = external_id
            await self.repository.session.flush()
        except BaseException:
            # our row could not record it: do not leave an orphan behind in Airbyte
            await self.delete_remote_quietly(external_id)
            raise
        return external_id

    async def delete_remote_quietly(self, external_id: str) -> None:
        try:
            await self.engine.delete_source(str(self.tenant_id), external_id)
        except Exception:
            log.warning("sources.remote_orphaned", external_id=external_id, tenant=str(self.tenant_id))

    async def on_remote(
        self, source: Source, call: Callable[[str], Awaitable[T]], *, again: bool = True
    ) -> Any:
        """`call(external_id)`; when Airbyte lost the copy (or it never existed), re-create it first.

        With `again=False` the call is not repeated after a re-create (the new copy already reflects it).
        """
        if not source.external_id:
            await self._recreate(source, "missing")
            if not again:
                return None
        assert source.external_id is not None
        try:
            return await call(source.external_id)
        except RemoteNotFoundError:
            await self._recreate(source, "deleted in Airbyte")
            if not again:
                return None
            return await call(source.external_id)

    async def _recreate(self, source: Source, reason: str) -> None:
        previous = source.external_id
        await self.create_remote(source)
        log.warning(
            "sources.remote_recreated",
            source_id=str(source.id),
            tenant=str(self.tenant_id),
            reason=reason,
            previous_external_id=previous,
            external_id=source.external_id,
        )

    async def catalog(self, source: Source) -> list[DiscoveredStream]:
        """The stored catalog, discovering first when there is none yet."""
        if source.catalog is None:
            return await self.discover(source.id)
        return [stream_from_dict(s) for s in source.catalog]


async def rotate_secrets(runtime: Runtime) -> int:
    """Re-encrypt every source's secrets with the primary key (after a new key was put first)."""
    from sqlalchemy import select

    box: SecretBox = runtime.secret_box
    count = 0
    async with runtime.session_maker() as session, session.begin():
        for source in (await session.execute(select(Source).with_for_update())).scalars():
            rotated = _walk_envelopes(source.config, lambda env: box.encrypt(box.decrypt(env)))
            if rotated != source.config:
                source.config = rotated
                count += 1
    return count


async def tenant_ids(runtime: Runtime) -> list[uuid.UUID]:
    """Every tenant with a source, a connection or an Airbyte workspace on record."""
    async with runtime.session_maker() as session:
        return await all_tenant_ids(session)
