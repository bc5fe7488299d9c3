"""HTTP errors as documented JSON bodies, and the middleware that guarantees them.

Every error body is ``{"error": {"code": ..., "message": ...}}`` with a code
from :class:`protocol.ErrorCode` (docs/protocol.md, "Errors"). Unexpected
exceptions become ``500 internal`` with a request id to quote to the
operator; their details go to the log only, never to the client.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from protocol import ErrorCode
from server.state import METRICS
from storage.errors import DatabaseUnavailable, DriverError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS = {
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.INVALID_CODE: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_ALLOWED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.UNKNOWN_CONVERSATION: 404,
    ErrorCode.NOT_A_MEMBER: 403,
    ErrorCode.NOT_ALLOWED: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.STORE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class ApiError(Exception):
    """An error to answer as JSON; ``extra`` fields join the error object."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def error_response(code: ErrorCode, message: str, **extra: Any) -> web.Response:
    body = {"error": {"code": code.value, "message": message, **extra}}
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    return web.json_response(body, status=_STATUS.get(code, 400), headers=headers)


def validation_message(exc: ValidationError) -> list[dict[str, str]]:
    """Field-by-field reasons, without echoing the input back."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "reason": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


async def read_model(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body into ``model``.

    Raises:
        ApiError: ``invalid_request`` naming each offending field.
    """
    try:
        raw = await request.read()
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, "the request body is invalid", fields=validation_message(exc)
        ) from None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    try:
        return await handler(request)
    except ApiError as exc:
        metrics.errors.labels(exc.code.value).inc()
        return error_response(exc.code, exc.message, **exc.extra)
    except web.HTTPRequestEntityTooLarge:
        metrics.errors.labels(ErrorCode.INVALID_REQUEST.value).inc()
        return web.json_response(
            {"error": {"code": "invalid_request", "message": "the request body is too large"}},
            status=413,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = ErrorCode.NOT_FOUND if exc.status == 404 else ErrorCode.INVALID_REQUEST
        metrics.errors.labels(code.value).inc()
        return web.json_response(
            {"error": {"code": code.value, "message": exc.reason}}, status=exc.status
        )
    except (DatabaseUnavailable, DriverError):
        metrics.errors.labels(ErrorCode.STORE_UNAVAILABLE.value).inc()
        return error_response(ErrorCode.STORE_UNAVAILABLE, "the database is unavailable; retry")
    except Exception:
        request_id = secrets.token_hex(6)
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.path, request_id
        )
        metrics.errors.labels(ErrorCode.INTERNAL.value).inc()
        return error_response(ErrorCode.INTERNAL, "internal error", request_id=request_id)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
