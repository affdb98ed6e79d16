"""Tenant-scoped queries on webhooks, deliveries and attempts."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.db.models import Webhook, WebhookAttempt, WebhookDelivery


class WebhookRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self, webhook_id: uuid.UUID, *, for_update: bool = False) -> Webhook | None:
        query = select(Webhook).where(Webhook.tenant_id == self.tenant_id, Webhook.id == webhook_id)
        if for_update:
            query = query.with_for_update()
        result: Webhook | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def list_all(self) -> list[Webhook]:
        query = (
            select(Webhook)
            .where(Webhook.tenant_id == self.tenant_id)
            .order_by(Webhook.created_at, Webhook.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def subscribed(self, event_type: str) -> list[Webhook]:
        """Enabled webhooks that want `event_type` (JSONB containment on the events list)."""
        query = (
            select(Webhook)
            .where(
                Webhook.tenant_id == self.tenant_id,
                Webhook.enabled.is_(True),
                Webhook.events.contains([event_type]),
            )
            .order_by(Webhook.created_at, Webhook.id)
        )
        return list((await self.session.execute(query)).scalars())

    async def delivery(self, delivery_id: uuid.UUID, *, for_update: bool = False) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(
            WebhookDelivery.tenant_id == self.tenant_id, WebhookDelivery.id == delivery_id
        )
        if for_update:
            query = query.with_for_update()
        result: WebhookDelivery | None = (await self.session.execute(query)).scalar_one_or_none()
        return result

    async def recorded_attempts(self, delivery_id: uuid.UUID) -> int:
        query = select(func.count()).where(
            WebhookAttempt.tenant_id == self.tenant_id, WebhookAttempt.delivery_id == delivery_id
        )
        return int((await self.session.execute(query)).scalar_one())

    async def deliveries(
        self, webhook_id: uuid.UUID, page: int, size: int
    ) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], int]:
        where = [WebhookDelivery.tenant_id == self.tenant_id, WebhookDelivery.webhook_id == webhook_id]
        total = int(
            (
                await self.session.execute(select(func.count()).select_from(WebhookDelivery).where(*where))
            ).scalar_one()
        )
        query = (
            select(WebhookDelivery)
            .where(*where)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .offset(page * size)
            .limit(size)
        )
        deliveries = list((await self.session.execute(query)).scalars())
        attempts: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
        if deliveries:
            rows = await self.session.execute(
                select(WebhookAttempt)
                .where(
                    WebhookAttempt.tenant_id == self.tenant_id, WebhookAttempt.delivery_id.in_(list(attempts))
                )
                .order_by(WebhookAttempt.attempt)
            )
            for attempt in rows.scalars():
                attempts[attempt.delivery_id].append(attempt)
        return [(d, attempts[d.id]) for d in deliveries], total

    async def add(self, obj: Webhook | WebhookDelivery | WebhookAttempt) -> None:
        self.session.add(obj)
        await self.session.flush()

    async def delete(self, webhook: Webhook) -> None:
        await self.session.delete(webhook)
        await self.session.flush()
