"""The delivery job: one attempt per run; procrastinate retries it after the wait the attempt asked for."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate import RetryDecision
from procrastinate.retry import BaseRetryStrategy

from ingest.jobs.queue import on_abandoned, tasks
from ingest.jobs.runtime import get_runtime
from ingest.webhooks.service import RetryDeliveryError, attempt_delivery, requeue_abandoned


class DeliveryRetry(BaseRetryStrategy):
    """Retry only a RetryDeliveryError, after the delay it carries (computed from the settings)."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if isinstance(exception, RetryDeliveryError):
            return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=max(exception.delay, 0.0)))
        return None


@tasks.task(name="webhooks.deliver", queue="webhooks", retry=DeliveryRetry())
async def deliver(delivery_id: str, tenant_id: str) -> None:
    await attempt_delivery(get_runtime(), uuid.UUID(tenant_id), uuid.UUID(delivery_id))


@on_abandoned("webhooks.deliver")
async def _requeue(args: dict[str, Any], message: str) -> None:
    await requeue_abandoned(
        get_runtime(), uuid.UUID(args["tenant_id"]), uuid.UUID(args["delivery_id"]), message
    )
