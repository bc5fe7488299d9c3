"""Membership events and class channels kept in sync with the directory.

A membership change is written into its conversation as a sequenced event
for every device of every member (and of the people who left), so clients
rotate sender keys exactly where the change happened (DESIGN.md, groups).
A class channel's members are its class's teachers and pupils and the
pupils' parents; after a directory import, :func:`sync_class_channels`
recomputes them and records a ``synced`` event where they changed. The CLI
and the server call it with their own ``submit`` (a sequencer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal

from protocol import MembershipEvent
from storage.database import Store
from storage.ids import new_id
from storage.messages import NewMessage, WriteResult
from storage.models import Role

EventAction = Literal["created", "added", "removed", "left", "synced"]
Submit = Callable[[NewMessage], Awaitable[WriteResult]]


async def write_event(
    store: Store,
    submit: Submit,
    now: datetime,
    conversation_id: str,
    action: EventAction,
    persons: Sequence[str],
    by: str | None,
    members: Sequence[str],
    also_notify: Sequence[str] = (),
) -> WriteResult:
    """Write a membership event into the conversation for every concerned device."""
    people = sorted({*members, *also_notify})
    devices = await store.enrolment.devices_of_people(people)
    event = MembershipEvent(action=action, persons=list(persons), by=by, members=list(members))
    return await submit(
        NewMessage(
            message_id=new_id("e"),
            conversation=conversation_id,
            sender_device="server",
            sender_person=by or "server",
            created_at=now,
            event=event.model_dump(mode="json"),
            event_devices=tuple(d.id for d in devices),
        )
    )


async def class_members(store: Store, class_id: str) -> list[str]:
    """Teachers and pupils of the class, then the pupils' parents."""
    in_class = await store.directory.people_in_class(class_id)
    pupils = [p.id for p in in_class if p.role == Role.PUPIL]
    parents = await store.directory.parents_of(pupils)
    return list(dict.fromkeys([p.id for p in in_class] + [p.id for p in parents]))


async def sync_class_channels(
    store: Store, submit: Submit, now: datetime, class_ids: Iterable[str]
) -> int:
    """Bring the class channels of ``class_ids`` in line with the directory.

    Returns:
        How many channels changed (each got a ``synced`` event).
    """
    changed = 0
    for class_id in sorted(set(class_ids)):
        wanted = await class_members(store, class_id)
        for conversation in await store.conversations.of_class(class_id):
            members = list(dict.fromkeys([*conversation.owners, *wanted]))
            if set(members) == set(conversation.members):
                continue
            gone = sorted(set(conversation.members) - set(members))
            moved = sorted(set(members) ^ set(conversation.members))
            await store.conversations.set_members(
                conversation.id, members, conversation.owners, now
            )
            await write_event(
                store,
                submit,
                now,
                conversation.id,
                "synced",
                moved,
                None,
                members,
                also_notify=gone,
            )
            changed += 1
    return changed
