"""Conversations over REST (device session token) and their membership events.

- ``POST /v1/conversations``: create a ``direct`` (unique per pair of people),
  ``group``, ``class`` (a class's teachers, pupils and their parents) or
  ``announcement`` (one-way from its owners; optionally to acknowledge).
- ``GET /v1/conversations``: the caller's conversations with unread counts.
- ``GET /v1/conversations/{id}``: one conversation.
- ``POST /v1/conversations/{id}/members``: add a person (owners).
- ``DELETE /v1/conversations/{id}/members/{person_id}``: remove (owners) or
  leave (oneself).

Every creation and membership change is written into the conversation as a
sequenced ``event`` for every member device (and the removed person's), so
clients rotate their sender keys exactly where the change happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from protocol import ErrorCode
from protocol.frames import Identifier
from server.devices_api import requester
from server.errors import ApiError, read_model
from server.membership import EventAction, class_members, write_event
from server.moderation_gate import GATE
from server.services import SERVICES, Services
from storage.conversations import Conversation, ConversationKind
from storage.models import Person, Role

MAX_MEMBERS = 1000
ADULT_STAFF = frozenset({Role.TEACHER, Role.STAFF, Role.DIRECTOR})


class CreateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["direct", "group", "class", "announcement"]
    members: Annotated[list[Identifier], Field(max_length=MAX_MEMBERS)] = []
    title: Annotated[str, Field(max_length=120)] = ""
    class_id: Annotated[str, Field(max_length=60)] | None = None
    acknowledge: bool = False


class AddMember(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: Identifier


def conversation_json(c: Conversation, head: int, acked: int | None = None) -> dict[str, object]:
    """A conversation as the API shows it; ``head`` is its last stored seq as this node
    knows it (``DeliveryReads.head``: the stored counter is published within seconds)."""
    body: dict[str, object] = {
        "id": c.id,
        "kind": c.kind.value,
        "uai": c.uai,
        "title": c.title,
        "members": list(c.members),
        "owners": list(c.owners),
        "seq": head,
        "class_id": c.class_id,
        "acknowledge": c.acknowledge,
        "created_by": c.created_by,
        "created_at": c.created_at.isoformat(),
    }
    if acked is not None:
        body["acked_seq"] = acked
        body["unread"] = max(0, head - acked)
    return body


async def record_event(
    services: Services,
    conversation: Conversation,
    action: EventAction,
    persons: Sequence[str],
    by: str | None,
    members: Sequence[str],
    also_notify: Sequence[str] = (),
) -> None:
    """Write a membership event into the conversation (see ``server.membership``)."""
    await write_event(
        services.store, services.sequencer.submit, services.clock.now(), conversation.id,
        action, persons, by, members, also_notify,
    )  # fmt: skip


async def _people(services: Services, ids: Sequence[str], uai: str) -> list[Person]:
    found = []
    for person_id in dict.fromkeys(ids):
        person = await services.store.directory.person(person_id)
        if person is None or person.uai != uai:
            raise ApiError(ErrorCode.NOT_FOUND, f"no person {person_id} in your school")
        found.append(person)
    return found


async def create(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    body = await read_model(request, CreateConversation)
    kind = ConversationKind(body.kind)
    owners = [me.id]
    if (
        kind in (ConversationKind.CLASS, ConversationKind.ANNOUNCEMENT)
        and me.role not in ADULT_STAFF
    ):
        raise ApiError(
            ErrorCode.NOT_ALLOWED,
            "only school staff create class channels and announcements",
            reason="kind_not_allowed",
        )
    if body.class_id is not None:
        if body.class_id not in me.classes and me.role == Role.TEACHER:
            raise ApiError(
                ErrorCode.NOT_ALLOWED, "you do not teach this class", reason="kind_not_allowed"
            )
        if not body.class_id.startswith(me.uai + "/"):
            raise ApiError(ErrorCode.NOT_FOUND, "no such class in your school")
        # docs/moderation.md, second adult: listed members (e.g. the director) co-own it.
        extra = [p.id for p in await _people(services, body.members, me.uai)]
        owners = list(dict.fromkeys([me.id, *extra]))
        members = [me.id, *await class_members(services.store, body.class_id), *extra]
    else:
        members = [me.id, *(p.id for p in await _people(services, body.members, me.uai))]
    members = list(dict.fromkeys(members))
    if kind == ConversationKind.DIRECT and len(members) != 2:
        raise ApiError(
            ErrorCode.INVALID_REQUEST, "a direct conversation has exactly one other member"
        )
    if kind == ConversationKind.CLASS and body.class_id is None:
        raise ApiError(ErrorCode.INVALID_REQUEST, "a class channel needs class_id")
    if len(members) < 2:
        raise ApiError(ErrorCode.INVALID_REQUEST, "a conversation needs another member")
    await request.app[GATE].check_start(me, members, kind)
    conversation, created = await services.store.conversations.create(
        kind,
        me.uai,
        body.title,
        members,
        owners if kind != ConversationKind.DIRECT else members,
        me.id,
        services.clock.now(),
        class_id=body.class_id,
        acknowledge=body.acknowledge and kind == ConversationKind.ANNOUNCEMENT,
    )
    if created:
        await record_event(services, conversation, "created", members, me.id, members)
        conversation = await services.store.conversations.get(conversation.id) or conversation
    return web.json_response(
        conversation_json(conversation, services.reads.head(conversation)),
        status=201 if created else 200,
    )


async def list_mine(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    device, me = await requester(request)
    cursors = await services.reads.cursors(device.id)
    conversations = await services.store.conversations.of_person(me.id)
    return web.json_response(
        {
            "conversations": [
                conversation_json(c, services.reads.head(c), cursors.get(c.id, 0))
                for c in conversations
            ]
        }
    )


async def member_conversation(request: web.Request, me: Person) -> Conversation:
    conversation = await request.app[SERVICES].store.conversations.get(request.match_info["id"])
    if conversation is None or me.id not in conversation.members:
        raise ApiError(ErrorCode.UNKNOWN_CONVERSATION, "no such conversation for you")
    return conversation


async def get_one(request: web.Request) -> web.Response:
    device, me = await requester(request)
    conversation = await member_conversation(request, me)
    reads = request.app[SERVICES].reads
    cursors = await reads.cursors(device.id)
    return web.json_response(
        conversation_json(conversation, reads.head(conversation), cursors.get(conversation.id, 0))
    )


async def add_member(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    conversation = await member_conversation(request, me)
    if me.id not in conversation.owners or conversation.kind == ConversationKind.DIRECT:
        raise ApiError(ErrorCode.NOT_ALLOWED, "only the conversation's owners add members")
    body = await read_model(request, AddMember)
    (person,) = await _people(services, [body.person_id], conversation.uai)
    if person.id in conversation.members:
        return web.json_response(conversation_json(conversation, services.reads.head(conversation)))
    await request.app[GATE].check_add(me, conversation, person)
    members = [*conversation.members, person.id]
    await services.store.conversations.set_members(
        conversation.id, members, conversation.owners, services.clock.now()
    )
    await record_event(services, conversation, "added", [person.id], me.id, members)
    updated = await services.store.conversations.get(conversation.id)
    shown = updated or conversation
    return web.json_response(conversation_json(shown, services.reads.head(shown)))


async def remove_member(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _device, me = await requester(request)
    conversation = await member_conversation(request, me)
    person_id = request.match_info["person_id"]
    leaving = person_id == me.id
    if not leaving and me.id not in conversation.owners:
        raise ApiError(ErrorCode.NOT_ALLOWED, "only the conversation's owners remove members")
    if conversation.kind == ConversationKind.DIRECT:
        raise ApiError(ErrorCode.NOT_ALLOWED, "a direct conversation has fixed members")
    if person_id not in conversation.members:
        raise ApiError(ErrorCode.NOT_FOUND, "not a member")
    await request.app[GATE].check_remove(me, conversation, person_id)
    members = [m for m in conversation.members if m != person_id]
    owners = [o for o in conversation.owners if o != person_id]
    await services.store.conversations.set_members(
        conversation.id, members, owners, services.clock.now()
    )
    await record_event(
        services,
        conversation,
        "left" if leaving else "removed",
        [person_id],
        me.id,
        members,
        also_notify=[person_id],
    )
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/conversations", create)
    app.router.add_get("/v1/conversations", list_mine)
    app.router.add_get("/v1/conversations/{id}", get_one)
    app.router.add_post("/v1/conversations/{id}/members", add_member)
    app.router.add_delete("/v1/conversations/{id}/members/{person_id}", remove_member)
