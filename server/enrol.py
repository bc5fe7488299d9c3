"""``POST /v1/enrol``: a one-time code and a device's Ed25519 key make a device.

Brute force is bounded three ways (docs/security.md, "Enrolment"): wrong
secrets lock a code after ``enrol_attempts_per_code`` tries, failures from one
client address are limited per window (429), and so are failures from
everywhere together, so a botnet cannot guess faster than a single address
times a small constant. Every failure gets the same answer: the response does
not tell an unknown code from a used, expired or locked one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from aiohttp import web
from nacl.bindings import crypto_core_ed25519_is_valid_point
from pydantic import BaseModel, ConfigDict, Field

from protocol import ErrorCode, NoticeFrame, dump_frame
from protocol.frames import B64
from server.codes import parse_code
from server.errors import ApiError, read_model
from server.moderation_gate import GATE
from server.state import CLOCK, METRICS, SETTINGS, STORE
from storage.enrolment import Redemption
from storage.errors import DuplicateKey
from storage.models import DeviceKind

GLOBAL_KEY = "enrol:global"


class EnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(min_length=1, max_length=64)]
    identity_key: Annotated[B64, Field(min_length=32, max_length=32)]
    """The device's Ed25519 public key, 32 bytes, base64."""
    kind: Literal["app"] = "app"


def client_address(request: web.Request, trusted_hops: int) -> str:
    """The client's address: the peer, or the X-Forwarded-For entry our proxies added."""
    if trusted_hops:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")]
        if len(forwarded) >= trusted_hops and forwarded[-trusted_hops]:
            return forwarded[-trusted_hops]
    return request.remote or "unknown"


def _retry_after(now: datetime, window_end: datetime | None) -> float:
    return max(1.0, (window_end - now).total_seconds()) if window_end else 1.0


async def enrol(request: web.Request) -> web.Response:
    app = request.app
    settings, store, metrics = app[SETTINGS], app[STORE], app[METRICS]
    now = app[CLOCK].now()
    address_key = f"enrol:addr:{client_address(request, settings.trusted_proxy_hops)}"
    for key, limit in (
        (address_key, settings.enrol_failures_per_address),
        (GLOBAL_KEY, settings.enrol_failures_global),
    ):
        failures, window_end = await store.throttle.count(key, now)
        if failures >= limit:
            metrics.enrolments.labels("throttled").inc()
            raise ApiError(
                ErrorCode.RATE_LIMITED,
                "too many failed enrolments; wait before trying again",
                retry_after=_retry_after(now, window_end),
            )
    body = await read_model(request, EnrolRequest)
    if not crypto_core_ed25519_is_valid_point(body.identity_key):
        raise ApiError(ErrorCode.INVALID_REQUEST, "identity_key is not an Ed25519 public key")
    code = parse_code(body.code)
    outcome, device = Redemption.UNKNOWN, None
    if code is not None:
        try:
            outcome, device = await store.enrolment.redeem(
                code.lookup, code.secret_hash, body.identity_key, DeviceKind.APP, now
            )
        except DuplicateKey:
            raise ApiError(ErrorCode.CONFLICT, "this identity key is already enrolled") from None
    metrics.enrolments.labels(outcome.value).inc()
    if outcome is not Redemption.OK or device is None:
        window = timedelta(seconds=settings.enrol_window_seconds)
        await store.throttle.record_failure(address_key, now, window)
        await store.throttle.record_failure(GLOBAL_KEY, now, window)
        raise ApiError(ErrorCode.INVALID_CODE, "this code is not valid (unknown, used or expired)")
    # docs/moderation.md, "Incident controls": the person's other devices are told.
    others = [d.id for d in await store.enrolment.devices_of(device.person_id) if d.id != device.id]
    notice = NoticeFrame(kind="new_device", ts=int(now.timestamp() * 1000), device_id=device.id)
    await app[GATE].controls.notify(others, "notice", dump_frame(notice))
    return web.json_response(
        {"device_id": device.id, "person_id": device.person_id, "kind": device.kind.value},
        status=201,
    )


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/enrol", enrol)
