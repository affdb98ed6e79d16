"""Webhooks API wire structs."""

from datetime import datetime
from typing import Annotated

import msgspec

from ingest.core.schemas import CamelStruct

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class WebhookRequest(CamelStruct, forbid_unknown_fields=True):
    """Create and update take the same body (PUT replaces every field; the secret never changes)."""

    url: Url
    events: Annotated[list[str], msgspec.Meta(min_length=1, max_length=20)]
    enabled: bool = True
    description: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class WebhookResponse(CamelStruct):
    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class WebhookCreatedResponse(WebhookResponse):
    """The create answer: the signing secret (`whsec_...`), shown this once only."""

    secret: str = ""


class AttemptResponse(CamelStruct):
    attempt: int
    status_code: int | None
    duration_ms: int
    error: str | None
    created_at: datetime


class DeliveryResponse(CamelStruct):
    id: str
    webhook_id: str
    event_type: str
    message_id: str  # the `webhook-id` header: the same on every attempt (receivers deduplicate on it)
    status: str  # PENDING, DELIVERED, FAILED
    attempts: list[AttemptResponse]
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(CamelStruct):
    content: list[DeliveryResponse]
    total_elements: int
    total_pages: int
    number: int
    size: int
