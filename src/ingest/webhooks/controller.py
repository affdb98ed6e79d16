"""Webhooks API: `/api/v1/webhooks`."""

import uuid
from typing import Annotated, Any

from litestar import Controller, delete, get, post, put
from litestar.params import QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from ingest.auth import requires_manage, requires_read
from ingest.db.models import Webhook, WebhookAttempt, WebhookDelivery
from ingest.tenancy import tenant_dependencies
from ingest.webhooks.schemas import (
    AttemptResponse,
    DeliveryPage,
    DeliveryResponse,
    WebhookCreatedResponse,
    WebhookRequest,
    WebhookResponse,
)
from ingest.webhooks.service import WebhookService


def to_response(webhook: Webhook) -> WebhookResponse:
    return WebhookResponse(
        id=str(webhook.id),
        url=webhook.url,
        events=list(webhook.events),
        enabled=webhook.enabled,
        description=webhook.description,
        disabled_reason=webhook.disabled_reason,
        created_at=webhook.created_at,
        updated_at=webhook.updated_at,
    )


def to_delivery(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryResponse:
    return DeliveryResponse(
        id=str(delivery.id),
        webhook_id=str(delivery.webhook_id),
        event_type=delivery.event_type,
        message_id=delivery.message_id,
        status=delivery.status,
        attempts=[
            AttemptResponse(
                attempt=a.attempt,
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=a.error,
                created_at=a.created_at,
            )
            for a in attempts
        ],
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    dependencies = tenant_dependencies(WebhookService)

    @post(
        "/",
        operation_id="create_webhook",
        summary="Create a webhook",
        guards=[requires_manage],
        status_code=HTTP_201_CREATED,
    )
    async def create_webhook(self, data: WebhookRequest, service: WebhookService) -> WebhookCreatedResponse:
        """Register a URL for events; the answer carries the signing secret, shown this once only."""
        webhook, secret = await service.create(data)
        base = to_response(webhook)
        return WebhookCreatedResponse(**{f: getattr(base, f) for f in base.__struct_fields__}, secret=secret)

    @get("/", operation_id="list_webhooks", summary="List webhooks", guards=[requires_read])
    async def list_webhooks(self, service: WebhookService) -> list[WebhookResponse]:
        """The tenant's webhooks (never their secrets)."""
        return [to_response(w) for w in await service.list_all()]

    @get("/{webhook_id:uuid}", operation_id="get_webhook", summary="Get a webhook", guards=[requires_read])
    async def get_webhook(self, webhook_id: uuid.UUID, service: WebhookService) -> WebhookResponse:
        """One webhook."""
        return to_response(await service.get(webhook_id))

    @put(
        "/{webhook_id:uuid}",
        operation_id="update_webhook",
        summary="Update a webhook",
        guards=[requires_manage],
        status_code=HTTP_200_OK,
    )
    async def update_webhook(
        self, webhook_id: uuid.UUID, data: WebhookRequest, service: WebhookService
    ) -> WebhookResponse:
        """Replace the URL, events, enabled flag and description (re-enabling clears the disabled reason)."""
        return to_response(await service.update(webhook_id, data))

    @delete(
        "/{webhook_id:uuid}",
        operation_id="delete_webhook",
        summary="Delete a webhook",
        guards=[requires_manage],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def delete_webhook(self, webhook_id: uuid.UUID, service: WebhookService) -> None:
        """Delete a webhook and its delivery history; queued deliveries are dropped."""
        await service.delete(webhook_id)

    @post(
        "/{webhook_id:uuid}/test",
        operation_id="test_webhook",
        summary="Send a test event",
        guards=[requires_manage],
        status_code=HTTP_202_ACCEPTED,
    )
    async def test_webhook(self, webhook_id: uuid.UUID, service: WebhookService) -> DeliveryResponse:
        """Queue a signed `webhook.test` ping; follow it in the deliveries."""
        return to_delivery(await service.test(webhook_id), [])

    @get(
        "/{webhook_id:uuid}/deliveries",
        operation_id="list_webhook_deliveries",
        summary="Delivery history",
        guards=[requires_read],
    )
    async def list_webhook_deliveries(
        self,
        webhook_id: uuid.UUID,
        service: WebhookService,
        page: Annotated[int, QueryParameter(ge=0)] = 0,
        size: Annotated[int, QueryParameter(ge=1, le=200)] = 20,
    ) -> DeliveryPage:
        """The webhook's deliveries, newest first, each with its attempts (status code, duration, error)."""
        rows, total = await service.deliveries(webhook_id, page, size)
        return DeliveryPage(
            content=[to_delivery(d, a) for d, a in rows],
            total_elements=total,
            total_pages=-(-total // size),
            number=page,
            size=size,
        )


def route_handlers() -> list[Any]:
    return [WebhookController]
