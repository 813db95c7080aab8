"""The error tree. Each error carries the HTTP status it is rendered with; one handler renders them all."""

from __future__ import annotations

from collections.abc import Mapping


class LfsError(Exception):
    """An error a client may see. ``message`` is safe to show; it never holds driver text or secrets."""

    status: int = 500
    default_message = "internal server error"

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)


class BadRequest(LfsError):
    status = 400
    default_message = "bad request"


class Unauthorized(LfsError):
    status = 401
    default_message = "credentials needed"


class Forbidden(LfsError):
    status = 403
    default_message = "forbidden"


class NotFound(LfsError):
    status = 404
    default_message = "not found"


class MethodNotAllowed(LfsError):
    status = 405
    default_message = "method not allowed"


class NotAcceptable(LfsError):
    status = 406
    default_message = "the Accept header must allow application/vnd.git-lfs+json"


class RequestTimeout(LfsError):
    status = 408
    default_message = "the request body stopped arriving"


class Conflict(LfsError):
    status = 409
    default_message = "conflict"


class LengthRequired(LfsError):
    status = 411
    default_message = "Content-Length or chunked transfer encoding required"


class PayloadTooLarge(LfsError):
    status = 413
    default_message = "request too large"


class UnsupportedMediaType(LfsError):
    status = 415
    default_message = "Content-Type must be application/vnd.git-lfs+json"


class RangeNotSatisfiable(LfsError):
    status = 416
    default_message = "requested range not satisfiable"


class UriTooLong(LfsError):
    status = 414
    default_message = "the request path is too long"


class Unprocessable(LfsError):
    status = 422
    default_message = "validation error"


class TooManyRequests(LfsError):
    status = 429
    default_message = "too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class HeadersTooLarge(LfsError):
    status = 431
    default_message = "the request headers are too large"


class InternalError(LfsError):
    status = 500
    default_message = "internal server error"


class NotImplementedByServer(LfsError):
    status = 501
    default_message = "not implemented"


class ServiceUnavailable(LfsError):
    status = 503
    default_message = "service temporarily unavailable"

    def __init__(self, message: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class InsufficientStorage(LfsError):
    status = 507
    default_message = "insufficient storage"


class InvalidOid(Unprocessable):
    default_message = "invalid object id: expected 64 lowercase hexadecimal digits"


class InvalidSize(Unprocessable):
    default_message = "invalid size: expected a non-negative integer"


class InvalidRepoPath(NotFound):
    """A repository path that cannot name a repository; rendered as 404 like any unknown repository."""

    default_message = "invalid repository path"


class ChecksumMismatch(Unprocessable):
    default_message = "the uploaded content does not match the object id"


class SizeMismatch(Unprocessable):
    default_message = "the uploaded content does not match the declared size"


class IncompleteBody(BadRequest):
    default_message = "the request body ended before the declared size"
