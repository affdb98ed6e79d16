"""The one error tree: each class carries its HTTP status and whether a retry may help."""

from typing import ClassVar


class AppError(Exception):
    """Base of every error the API answers on purpose; `message` is safe to show to callers."""

    status_code: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}  # answered with the error (Retry-After, rate-limit state)


class InvalidRequestError(AppError):
    status_code = 400


class UnauthorizedError(AppError):
    status_code = 401


class ForbiddenError(AppError):
    status_code = 403


class NotFoundError(AppError):
    status_code = 404


class ConflictError(AppError):
    status_code = 409


class GoneError(AppError):
    status_code = 410


class PayloadTooLargeError(AppError):
    status_code = 413


class UnsupportedMediaError(AppError):
    status_code = 415


class TooManyRequestsError(AppError):
    status_code = 429
    retryable = True


class UpstreamError(AppError):
    """An outside system (Airbyte, a catalog, object storage) failed; 502 by default."""

    status_code = 502
    retryable = True


class UpstreamUnavailableError(UpstreamError):
    status_code = 503


class UpstreamTimeoutError(UpstreamError):
    status_code = 504


class ConnectorError(AppError):
    """A connector process failed (bad config, crash, timeout); the message is already scrubbed."""

    status_code = 502


class ConnectorCancelledError(ConnectorError):
    """The connector process was stopped on purpose (a cancelled sync)."""
