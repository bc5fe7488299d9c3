"""The device REST API (device session token from the ``ready`` frame).

- ``PUT /v1/devices/me/prekeys``: publish the signed prekey and one-time
  prekeys (X3DH §3.2); the signed prekey's signature is verified on upload.
- ``GET /v1/people/{person_id}/devices``: every device of a person with a key
  bundle each, consuming one one-time prekey per bundle (X3DH §3.3);
  ``?bundles=none`` lists the devices without bundles (nothing consumed),
  ``?bundles=d_1,d_2`` gives bundles for those devices only.
- ``GET /v1/directory``: the people of the caller's school the policy lets them reach.
- ``GET /v1/me``: who the caller is, their classes, and what their school allows.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from crypto import PreKeyBundle, verify_signed_prekey
from crypto.encoding import b64url_encode
from crypto.errors import CryptoError
from protocol import ErrorCode, PrekeysLowFrame, dump_frame
from protocol.frames import B64
from server.errors import ApiError, read_model
from server.moderation_gate import GATE
from server.state import CLOCK, HUB, SESSIONS, STORE
from storage.models import Device, Person
from storage.prekeys import OneTimePrekey, SignedPrekey

MAX_PREKEYS_PER_UPLOAD = 100
MAX_PREKEYS_HELD = 500
PREKEYS_LOW = 10
"""Below this many one-time prekeys the device is told to replenish."""

Key32 = Annotated[B64, Field(min_length=32, max_length=32)]
KeyId = Annotated[int, Field(ge=0, le=0xFFFFFFFF)]


class SignedPrekeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: KeyId
    key: Key32
    signature: Annotated[B64, Field(min_length=64, max_length=64)]


class OneTimePrekeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: KeyId
    key: Key32


class PrekeyUpload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signed_prekey: SignedPrekeyIn | None = None
    one_time_prekeys: Annotated[
        list[OneTimePrekeyIn], Field(max_length=MAX_PREKEYS_PER_UPLOAD)
    ] = []


async def require_device(request: web.Request) -> Device:
    """The device whose session token authorises this request.

    Raises:
        ApiError: ``unauthorized`` for a missing, forged or expired token or a
            revoked device.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    device_id = None
    if scheme.lower() == "bearer":
        device_id = request.app[SESSIONS].check(token.strip(), request.app[CLOCK].now())
    device = await request.app[STORE].enrolment.device(device_id) if device_id else None
    if device is None or device.revoked_at is not None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "log in over the WebSocket for a session token")
    if not await request.app[GATE].controls.token_valid(device, token.strip()):
        raise ApiError(ErrorCode.UNAUTHORIZED, "your school logged devices out; log in again")
    return device


async def requester(request: web.Request) -> tuple[Device, Person]:
    """The device behind the session token and its person.

    Raises:
        ApiError: ``unauthorized`` (see :func:`require_device`), or ``not_found``
            if the person is gone.
    """
    device = await require_device(request)
    person = await request.app[STORE].directory.person(device.person_id)
    if person is None:
        raise ApiError(ErrorCode.NOT_FOUND, "your person record is gone")
    return device, person


async def put_prekeys(request: web.Request) -> web.Response:
    device = await require_device(request)
    body = await read_model(request, PrekeyUpload)
    store = request.app[STORE]
    if body.signed_prekey is None and await store.prekeys.signed_prekey(device.id) is None:
        raise ApiError(ErrorCode.INVALID_REQUEST, "the first upload needs a signed prekey")
    if body.signed_prekey is not None:
        try:
            verify_signed_prekey(
                device.identity_key, body.signed_prekey.key, body.signed_prekey.signature
            )
        except CryptoError:
            raise ApiError(
                ErrorCode.INVALID_REQUEST, "the signed prekey's signature does not verify"
            ) from None
    if len({k.id for k in body.one_time_prekeys}) != len(body.one_time_prekeys):
        raise ApiError(ErrorCode.INVALID_REQUEST, "one-time prekey ids must be distinct")
    held = await store.prekeys.count(device.id)
    if held + len(body.one_time_prekeys) > MAX_PREKEYS_HELD:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, f"the server keeps at most {MAX_PREKEYS_HELD} prekeys"
        )
    signed = body.signed_prekey
    left = await store.prekeys.publish(
        device.id,
        SignedPrekey(signed.id, signed.key, signed.signature) if signed else None,
        [OneTimePrekey(k.id, k.key) for k in body.one_time_prekeys],
        request.app[CLOCK].now(),
    )
    return web.json_response({"prekeys_left": left})


async def person_devices(request: web.Request) -> web.Response:
    caller = await require_device(request)
    store = request.app[STORE]
    person_id = request.match_info["person_id"]
    if await store.directory.person(person_id) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    wanted = request.query.get("bundles", "all")
    if len(wanted) > 2000:
        raise ApiError(ErrorCode.INVALID_REQUEST, "bundles: too long")
    chosen = None if wanted == "all" else set(wanted.split(",")) - {"none"}
    devices = []
    for device in await store.enrolment.devices_of(person_id):
        if device.id == caller.id:
            continue
        with_bundle = chosen is None or device.id in chosen
        devices.append(
            {
                "device_id": device.id,
                "kind": device.kind.value,
                "identity_key": b64url_encode(device.identity_key),
                "bundle": await _bundle(request, device) if with_bundle else None,
            }
        )
    return web.json_response({"person_id": person_id, "devices": devices})


async def _bundle(request: web.Request, device: Device) -> dict[str, object] | None:
    store = request.app[STORE]
    signed = await store.prekeys.signed_prekey(device.id)
    if signed is None:
        return None
    one_time = await store.prekeys.take_one_time(device.id)
    if one_time is not None:
        remaining = await store.prekeys.count(device.id)
        if remaining < PREKEYS_LOW:
            request.app[HUB].notify(
                device.id, "prekeys_low", dump_frame(PrekeysLowFrame(remaining=remaining))
            )
    bundle = PreKeyBundle(
        identity_key=device.identity_key,
        signed_prekey_id=signed.key_id,
        signed_prekey=signed.key,
        signed_prekey_signature=signed.signature,
        one_time_prekey_id=one_time.key_id if one_time else None,
        one_time_prekey=one_time.key if one_time else None,
    )
    return bundle.to_dict()


async def directory(request: web.Request) -> web.Response:
    _, me = await requester(request)
    people = await request.app[STORE].directory.people_of_school(me.uai)
    people = await request.app[GATE].visible(me, people)  # docs/moderation.md, directory
    return web.json_response(
        {
            "people": [
                {"person_id": p.id, "name": p.display_name, "role": p.role.value}
                for p in people
                if p.left_at is None
            ]
        }
    )


async def me(request: web.Request) -> web.Response:
    """Who the caller is and what their school allows (for clients' settings screens)."""
    device, person = await requester(request)
    settings = await request.app[STORE].directory.school_settings(person.uai)
    policy = await request.app[GATE].policies.get(person.uai)
    quiet = policy.quiet_hours
    return web.json_response(
        {
            "person_id": person.id,
            "device_id": device.id,
            "device_kind": device.kind.value,
            "name": person.display_name,
            "role": person.role.value,
            "uai": person.uai,
            "classes": list(person.classes),
            "receipts": settings.model_dump(),
            "quiet_hours": {
                "start": quiet.start.strftime("%H:%M"),
                "end": quiet.end.strftime("%H:%M"),
                "weekends": quiet.weekends,
                "applies": person.role in quiet.roles,
            },
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_put("/v1/devices/me/prekeys", put_prekeys)
    app.router.add_get("/v1/people/{person_id}/devices", person_devices)
    app.router.add_get("/v1/directory", directory)
    app.router.add_get("/v1/me", me)
