"""Webhooks: registration, the event outbox, and one signed delivery attempt.

Events are emitted with `emit(session, tenant_id, event_type, data)` by the code that changes the state,
in the SAME transaction (the outbox pattern): a delivery row and its durable job exist exactly when the
change was committed. Payloads carry ids, statuses, counts and times, never configs or secrets.

Delivery (`attempt_delivery`, run by the `webhooks.deliver` job): signed per the Standard Webhooks
specification by the `standardwebhooks` library (`webhook-id` = the delivery's message id, the same on
every attempt; `webhook-timestamp`; `webhook-signature`). Timeouts, connection errors, 408, 429 and 5xx are
retried with exponential backoff (`INGEST_WEBHOOK_RETRY_BASE_SECONDS`, doubling, capped at
`INGEST_WEBHOOK_RETRY_MAX_WAIT_SECONDS`) until `INGEST_WEBHOOK_RETRY_FOR_SECONDS` (a day) after the event;
other answers fail at once. Jobs of one webhook share a procrastinate lock, so its deliveries go out in
order (a delivery waiting for its retry holds back the later ones). A webhook whose deliveries have failed
for `INGEST_WEBHOOK_DISABLE_AFTER_SECONDS` is disabled with a reason.
"""

import base64
import json
import math
import random
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook as Signer

from ingest.core.errors import InvalidRequestError, NotFoundError
from ingest.core.logging import get_logger
from ingest.core.settings import Settings
from ingest.db.models import Webhook, WebhookAttempt, WebhookDelivery
from ingest.jobs.queue import defer
from ingest.jobs.runtime import Runtime
from ingest.outbound import check_url
from ingest.webhooks.repository import WebhookRepository

log = get_logger("ingest.webhooks")

EVENT_TYPES = (
    "sync.started",
    "sync.succeeded",
    "sync.failed",
    "sync.cancelled",
    "import.completed",
    "import.failed",
    "source.status_changed",
    "connection.paused",
    "connection.failure_warning",
)
TEST_EVENT = "webhook.test"
MAX_PAGE_SIZE = 200


class DeliveryStatus:
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payload(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The Standard Webhooks payload shape: `type`, `timestamp`, `data`."""
    return {"type": event_type, "timestamp": datetime.now(UTC).isoformat(), "data": data}


async def _enqueue(
    session: AsyncSession, webhook: Webhook, event_type: str, body: dict[str, Any]
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=webhook.tenant_id,
        webhook_id=webhook.id,
        event_type=event_type,
        message_id=f"msg_{uuid.uuid4().hex}",
        payload=body,
        status=DeliveryStatus.PENDING,
        attempts=0,
        created_at=datetime.now(UTC),
    )
    await WebhookRepository(session, webhook.tenant_id).add(delivery)
    await enqueue_delivery(session, delivery)
    return delivery


async def enqueue_delivery(session: AsyncSession, delivery: WebhookDelivery) -> None:
    await defer(
        session,
        "webhooks.deliver",
        queue="webhooks",
        lock=f"webhook:{delivery.webhook_id}",  # one webhook's deliveries run one at a time, in order
        delivery_id=str(delivery.id),
        tenant_id=str(delivery.tenant_id),
    )


async def emit(session: AsyncSession, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any]) -> int:
    """Queue `event_type` for every enabled webhook of the tenant that wants it, in the caller's transaction.

    `data` must hold ids, statuses, counts and times only. Returns how many deliveries were queued.
    """
    assert event_type in EVENT_TYPES, event_type
    webhooks = await WebhookRepository(session, tenant_id).subscribed(event_type)
    if not webhooks:
        return 0
    body = payload(event_type, data)
    for webhook in webhooks:
        await _enqueue(session, webhook, event_type, body)
    return len(webhooks)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def retry_delay(attempts: int, created_at: datetime, now: datetime, settings: Settings) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when the day is over."""
    wait = min(
        settings.webhook_retry_base_seconds * 2.0 ** max(attempts - 1, 0),
        settings.webhook_retry_max_wait_seconds,
    )
    wait *= 1 + random.random() * 0.1  # jitter: receivers that failed together are not hit together again
    if (now - created_at).total_seconds() + wait > settings.webhook_retry_for_seconds:
        return None
    return wait


class RetryDeliveryError(Exception):
    """The attempt failed in a way worth retrying: the job is retried after `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.1f}s")
        self.delay = delay


async def attempt_delivery(runtime: Runtime, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """One delivery attempt; raises RetryDeliveryError when another attempt should follow.

    The attempt is counted (and committed) before the request is sent: a worker killed mid-request leaves
    a delivery that is PENDING with one more attempt, and the recovered job sends it again (same message
    id, so a receiver that got it the first time can tell).
    """
    settings = runtime.settings
    async with runtime.session_maker() as session, session.begin():
        repository = WebhookRepository(session, tenant_id)
        delivery = await repository.delivery(delivery_id, for_update=True)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return  # delivered, failed, or its webhook was deleted
        webhook = await repository.get(delivery.webhook_id)
        if webhook is None:
            return
        if not webhook.enabled and delivery.event_type != TEST_EVENT:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = "The webhook is disabled"
            return
        # attempts counted but never recorded: a worker died while sending them (the job was recovered)
        for lost in range(await repository.recorded_attempts(delivery.id) + 1, delivery.attempts + 1):
            await repository.add(
                WebhookAttempt(
                    id=uuid.uuid4(),
                    tenant_id=tenant_id,
                    delivery_id=delivery.id,
                    attempt=lost,
                    status_code=None,
                    duration_ms=0,
                    error="No outcome: the worker stopped during this attempt",
                    created_at=datetime.now(UTC),
                )
            )
        delivery.attempts += 1
        attempt_number = delivery.attempts
        url, message_id, created_at = webhook.url, delivery.message_id, delivery.created_at
        body = json.dumps(delivery.payload, separators=(",", ":"))
        secret = runtime.secret_box.decrypt(webhook.secret)
    now = datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, now, body),
        "User-Agent": "ingest-webhooks/1",
    }
    result = await outbound(runtime).post(url, body.encode(), headers)
    finished = datetime.now(UTC)
    retry: float | None = None
    async with runtime.session_maker() as session, session.begin():
        repository = WebhookRepository(session, tenant_id)
        delivery = await repository.delivery(delivery_id, for_update=True)
        if delivery is None:
            return
        await repository.add(
            WebhookAttempt(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                delivery_id=delivery.id,
                attempt=attempt_number,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                error=result.error,
                created_at=finished,
            )
        )
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error
        webhook = await repository.get(delivery.webhook_id, for_update=True)
        if result.error is None:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = finished
            if webhook is not None:
                webhook.failing_since = None
        else:
            if webhook is not None and webhook.failing_since is None:
                webhook.failing_since = finished
            retry = retry_delay(attempt_number, created_at, finished, settings) if result.retryable else None
            if retry is None:
                delivery.status = DeliveryStatus.FAILED
                if webhook is not None and webhook.enabled and webhook.failing_since is not None:
                    failing = (finished - webhook.failing_since).total_seconds()
                    if failing >= settings.webhook_disable_after_seconds:
                        webhook.enabled = False
                        webhook.disabled_reason = (
                            f"Disabled after its deliveries failed for {failing / 86400:.1f} days "
                            f"(last: {result.error})"
                        )
                        log.warning("webhooks.disabled", webhook_id=str(webhook.id), tenant=str(tenant_id))
    log.info(
        "webhooks.attempt",
        delivery_id=str(delivery_id),
        attempt=attempt_number,
        status_code=result.status_code,
        error=result.error,
        retry_in=round(retry, 2) if retry is not None else None,
    )
    if retry is not None:
        raise RetryDeliveryError(retry)


def outbound(runtime: Runtime) -> Any:
    """The process's one outbound client (`ingest.outbound.OutboundClient`), closed with the runtime."""
    from ingest.outbound import OutboundClient

    client = runtime.extras.get("outbound")
    if client is None:
        client = runtime.extras["outbound"] = OutboundClient(runtime.settings)
    return client


async def requeue_abandoned(
    runtime: Runtime, tenant_id: uuid.UUID, delivery_id: uuid.UUID, message: str
) -> None:
    """The delivery's job was given up on after worker crashes: queue it again unless its day is over."""
    async with runtime.session_maker() as session, session.begin():
        delivery = await WebhookRepository(session, tenant_id).delivery(delivery_id, for_update=True)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return
        if (
            datetime.now(UTC) - delivery.created_at
        ).total_seconds() > runtime.settings.webhook_retry_for_seconds:
            delivery.status = DeliveryStatus.FAILED
            delivery.last_error = message
            return
        await enqueue_delivery(session, delivery)


class WebhookService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, runtime: Runtime) -> None:
        self.repository = WebhookRepository(session, tenant_id)
        self.tenant_id = tenant_id
        self.runtime = runtime

    async def get(self, webhook_id: uuid.UUID, *, for_update: bool = False) -> Webhook:
        webhook = await self.repository.get(webhook_id, for_update=for_update)
        if webhook is None:
            raise NotFoundError(f"Webhook {webhook_id} not found")
        return webhook

    async def list_all(self) -> list[Webhook]:
        return await self.repository.list_all()

    async def _apply(self, webhook: Webhook, data: Any) -> None:
        unknown = [e for e in data.events if e not in EVENT_TYPES]
        if unknown:
            raise InvalidRequestError(
                f"events not known: {', '.join(e[:64] for e in unknown)}; known: {', '.join(EVENT_TYPES)}"
            )
        await check_url(data.url, self.runtime.settings)
        webhook.url = data.url
        webhook.events = list(dict.fromkeys(data.events))
        if data.enabled and not webhook.enabled:
            webhook.disabled_reason = None
            webhook.failing_since = None
        webhook.enabled = data.enabled
        webhook.description = data.description

    async def create(self, data: Any) -> tuple[Webhook, str]:
        secret = new_secret()
        webhook = Webhook(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            enabled=True,
            secret=self.runtime.secret_box.encrypt(secret),
        )
        await self._apply(webhook, data)
        await self.repository.add(webhook)
        log.info("webhooks.created", webhook_id=str(webhook.id), tenant=str(self.tenant_id))
        return webhook, secret

    async def update(self, webhook_id: uuid.UUID, data: Any) -> Webhook:
        webhook = await self.get(webhook_id, for_update=True)
        await self._apply(webhook, data)
        webhook.updated_at = datetime.now(UTC)
        await self.repository.session.flush()
        return webhook

    async def delete(self, webhook_id: uuid.UUID) -> None:
        await self.repository.delete(await self.get(webhook_id, for_update=True))

    async def test(self, webhook_id: uuid.UUID) -> WebhookDelivery:
        """Queue a `webhook.test` ping (sent even when the webhook is disabled or does not want it)."""
        webhook = await self.get(webhook_id)
        return await _enqueue(
            self.repository.session, webhook, TEST_EVENT, payload(TEST_EVENT, {"webhookId": str(webhook.id)})
        )

    async def deliveries(
        self, webhook_id: uuid.UUID, page: int, size: int
    ) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], int]:
        if page < 0:
            raise InvalidRequestError("page must be >= 0")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise InvalidRequestError(f"size must be between 1 and {MAX_PAGE_SIZE}")
        await self.get(webhook_id)
        return await self.repository.deliveries(webhook_id, page, size)
