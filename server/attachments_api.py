"""Attachments (DESIGN.md): encrypted by the client, streamed into GridFS and back.

- ``POST /v1/conversations/{id}/attachments`` (raw body, ``application/octet-stream``):
  store a ciphertext blob for the conversation; answers ``{attachment_id, length}``.
  Bodies over ``max_attachment_bytes`` are refused with 413 and nothing is kept.
- ``GET /v1/attachments/{attachment_id}``: the blob, streamed, for members of
  its conversation.

A message references an attachment by id inside its ciphertext, with the key;
the server only knows size, conversation and uploader. Blobs expire with the
undelivered lifetime, like messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from protocol import ErrorCode
from server.conversations_api import member_conversation
from server.devices_api import requester
from server.errors import ApiError
from server.services import SERVICES
from storage.attachments import AttachmentTooLarge

READ_CHUNK = 64 * 1024


async def upload(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    conversation = await member_conversation(request, me)
    limit = services.settings.max_attachment_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"attachments are at most {limit} bytes")

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            yield chunk

    now = services.clock.now()
    try:
        info = await services.store.attachments.store(
            body(),
            conversation.id,
            me.id,
            now + timedelta(days=services.settings.undelivered_days),
            limit,
        )
    except AttachmentTooLarge:
        return web.json_response(
            {"error": {"code": "invalid_request", "message": f"at most {limit} bytes"}},
            status=413,
        )
    return web.json_response(
        {"attachment_id": info.attachment_id, "length": info.length}, status=201
    )


async def download(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    info = await services.store.attachments.info(request.match_info["attachment_id"])
    conversation = (
        await services.store.conversations.get(info.conversation) if info is not None else None
    )
    if info is None or conversation is None or me.id not in conversation.members:
        raise ApiError(ErrorCode.NOT_FOUND, "no such attachment")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(info.length),
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    async for chunk in services.store.attachments.chunks(info.attachment_id):
        await response.write(chunk)
    await response.write_eof()
    return response


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/conversations/{id}/attachments", upload)
    app.router.add_get("/v1/attachments/{attachment_id}", download)
