"""Receipts and announcement acknowledgements over REST (device session token).

- ``GET  /v1/conversations/{id}/receipts``: how far each member has received
  and read (only the kinds the school allows are ever stored).
- ``POST /v1/conversations/{id}/acknowledgements`` ``{seq, signature}``: a
  guardian acknowledges an announcement "to acknowledge", signing
  :func:`protocol.acknowledgement_message` with their device's identity key;
  once per person and message.
- ``GET  /v1/conversations/{id}/acknowledgements?seq=N`` (owners): who has
  acknowledged (with device and signature, as evidence) and who has not.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field

from crypto.encoding import b64url_encode
from protocol import ErrorCode, acknowledgement_message
from protocol.frames import B64
from server.conversations_api import member_conversation
from server.devices_api import requester
from server.errors import ApiError, read_model
from server.services import SERVICES
from storage.conversations import ConversationKind
from storage.models import Role
from storage.receipts import Acknowledgement


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: Annotated[int, Field(ge=1)]
    signature: Annotated[B64, Field(min_length=64, max_length=64)]


async def receipts(request: web.Request) -> web.Response:
    _device, me = await requester(request)
    conversation = await member_conversation(request, me)
    services = request.app[SERVICES]
    found = await services.store.receipts.of_conversation(conversation.id)
    for person_id, kinds in services.receipts.unwritten(conversation.id).items():
        mine = found.setdefault(person_id, {})  # told already, written within seconds
        for kind, seq in kinds.items():
            mine[kind] = max(seq, mine.get(kind, 0))
    return web.json_response({"conversation": conversation.id, "receipts": found})


async def acknowledge(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    device, me = await requester(request)
    conversation = await member_conversation(request, me)
    if conversation.kind != ConversationKind.ANNOUNCEMENT or not conversation.acknowledge:
        raise ApiError(ErrorCode.NOT_ALLOWED, "this conversation asks for no acknowledgement")
    if me.role != Role.PARENT:
        raise ApiError(ErrorCode.NOT_ALLOWED, "guardians acknowledge announcements")
    body = await read_model(request, AcknowledgeRequest)
    message = await services.store.messages.collection.find_one(
        {"conversation": conversation.id, "seq": body.seq, "event": None}, {"_id": 1}
    )
    if message is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such message")
    signed = acknowledgement_message(conversation.id, body.seq, message["_id"], me.id)
    try:
        VerifyKey(device.identity_key).verify(signed, body.signature)
    except (BadSignatureError, ValueError):
        raise ApiError(ErrorCode.INVALID_REQUEST, "the signature does not verify") from None
    ack = Acknowledgement(
        conversation.id, body.seq, me.id, device.id, body.signature, services.clock.now()
    )
    created = await services.store.receipts.acknowledge(ack, message["_id"])
    return web.json_response({"acknowledged": True, "new": created}, status=201 if created else 200)


async def acknowledgements(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    conversation = await member_conversation(request, me)
    if me.id not in conversation.owners:
        raise ApiError(ErrorCode.NOT_ALLOWED, "only the announcement's owners see this")
    try:
        seq = int(request.query.get("seq", ""))
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, "give ?seq=N") from None
    done = await services.store.receipts.acknowledgements(conversation.id, seq)
    members = [await services.store.directory.person(m) for m in conversation.members]
    guardians = [p for p in members if p is not None and p.role == Role.PARENT]
    acked = {a.person_id for a in done}
    return web.json_response(
        {
            "conversation": conversation.id,
            "seq": seq,
            "acknowledged": [
                {
                    "person_id": a.person_id,
                    "device_id": a.device_id,
                    "signature": b64url_encode(a.signature),
                    "at": a.at.isoformat(),
                }
                for a in done
            ],
            "pending": [p.id for p in guardians if p.id not in acked],
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/conversations/{id}/receipts", receipts)
    app.router.add_post("/v1/conversations/{id}/acknowledgements", acknowledge)
    app.router.add_get("/v1/conversations/{id}/acknowledgements", acknowledgements)
