"""Who talks to whom in each scenario, allowed by the default contact policy.

The load's people are given roles that the contact policy lets talk
(docs/moderation.md), and every conversation is created through the API:

- ``direct``: pairs of staff members (staff reach everyone), one ``direct``
  conversation per pair; both devices of a pair send in it.
- ``class``: a teacher of class ``6A`` creates its ``class`` channel, with the
  director added as the second adult (a teacher and a pupil are never alone);
  the members are ``members - 1`` pupils and the director.
- ``announcement``: the director creates an ``announcement`` to acknowledge,
  to ``families`` parents.
- ``idle``: staff members, no conversation.
- ``reconnect``: per school, a staff member creates a ``group`` with the
  (at most 999) other staff members of the school.
- ``offline``: per school, a staff member creates a ``direct`` conversation
  with each other staff member of the school.

A device entry handed to the load generator is ``{"creds", "routes"}``; a
route is ``{"conversation", "to": [device ids], "group": bool}``. The bare
relay is driven with the same entries (it ignores the conversations' rules).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from bench.population import SCHOOL_SIZE, Someone, create_conversations, enrol, uai
from bench.scenarios import Params
from bench.servers import ServerProcess
from bench.wire import Credentials

Entry = dict[str, Any]


@dataclass
class Layout:
    """Device entries of a run: pairs (direct), senders with routes, recipients."""

    pairs: list[list[Entry]] = field(default_factory=list)
    senders: list[Entry] = field(default_factory=list)
    members: list[Entry] = field(default_factory=list)


def entry(creds: Credentials, routes: list[dict[str, Any]] | None = None) -> Entry:
    return {"creds": creds.to_json(), "routes": routes or []}


def route(conversation: str, to: list[Credentials], group: bool) -> dict[str, Any]:
    return {"conversation": conversation, "to": [c.device_id for c in to], "group": group}


async def make(server: ServerProcess, scenario: str, p: Params) -> Layout:
    """Import, enrol and create the conversations of ``scenario``.

    Raises:
        BenchError: the API refused a step.
    """
    if scenario == "direct":
        return await _direct(server, p.pairs, p.receipts)
    if scenario == "class":
        return await _class(server, p.members, p.receipts)
    if scenario == "announcement":
        return await _announcement(server, p.families, p.receipts)
    return await _spread(server, scenario, p.connections, p.receipts)


async def _direct(server: ServerProcess, pairs: int, receipts: bool) -> Layout:
    people = [Someone(f"s{n}", "staff", n // SCHOOL_SIZE) for n in range(2 * pairs)]
    found = (await enrol(server, people, receipts)).devices
    couples = [(found[f"s{2 * k}"], found[f"s{2 * k + 1}"]) for k in range(pairs)]

    async def one(a: Credentials, b: Credentials) -> str:
        spec = {"kind": "direct", "members": [b.person_id]}
        return (await create_conversations(server, a, [spec]))[0]

    gate = asyncio.Semaphore(16)

    async def bounded(a: Credentials, b: Credentials) -> str:
        async with gate:
            return await one(a, b)

    ids = await asyncio.gather(*(bounded(a, b) for a, b in couples))
    layout = Layout()
    for (a, b), conversation in zip(couples, ids, strict=True):
        layout.pairs.append(
            [
                entry(a, [route(conversation, [b], False)]),
                entry(b, [route(conversation, [a], False)]),
            ]
        )
    return layout


async def _class(server: ServerProcess, members: int, receipts: bool) -> Layout:
    people = [
        Someone("teacher", "teacher", 0, ("6A",)),
        Someone("director", "director", 0),
        *(Someone(f"pupil{n}", "pupil", 0, ("6A",)) for n in range(members - 1)),
    ]
    found = (await enrol(server, people, receipts)).devices
    teacher, director = found.pop("teacher"), found["director"]
    spec = {
        "kind": "class",
        "class_id": f"{uai(0)}/6A",
        "members": [director.person_id],
        "title": "6A",
    }
    [conversation] = await create_conversations(server, teacher, [spec])
    recipients = list(found.values())
    return Layout(
        senders=[entry(teacher, [route(conversation, recipients, True)])],
        members=[entry(c) for c in recipients],
    )


async def _announcement(server: ServerProcess, families: int, receipts: bool) -> Layout:
    people = [
        Someone("director", "director", 0),
        *(Someone(f"parent{n}", "parent", 0) for n in range(families)),
    ]
    found = (await enrol(server, people, receipts)).devices
    director = found.pop("director")
    recipients = list(found.values())
    spec = {
        "kind": "announcement",
        "members": [c.person_id for c in recipients],
        "acknowledge": True,
        "title": "Sortie scolaire",
    }
    [conversation] = await create_conversations(server, director, [spec])
    return Layout(
        senders=[entry(director, [route(conversation, recipients, True)])],
        members=[{**entry(c), "acknowledge": True} for c in recipients],
    )


async def _spread(server: ServerProcess, scenario: str, count: int, receipts: bool) -> Layout:
    """``count`` staff devices in schools of 999 plus, per school, one sender."""
    per_school = SCHOOL_SIZE - 1
    schools = (count + per_school - 1) // per_school
    people = [Someone(f"s{n}", "staff", n // per_school) for n in range(count)]
    if scenario != "idle":
        people += [Someone(f"sender{k}", "staff", k) for k in range(schools)]
    found = (await enrol(server, people, receipts)).devices
    members = [found[f"s{n}"] for n in range(count)]
    layout = Layout(members=[entry(c) for c in members])
    for k in range(schools if scenario != "idle" else 0):
        sender = found[f"sender{k}"]
        mine = members[k * per_school : (k + 1) * per_school]
        if scenario == "reconnect":
            spec = {"kind": "group", "members": [c.person_id for c in mine], "title": "bench"}
            [conversation] = await create_conversations(server, sender, [spec])
            routes = [route(conversation, mine, True)]
        else:  # offline: one direct conversation per recipient
            specs = [{"kind": "direct", "members": [c.person_id]} for c in mine]
            ids = await create_conversations(server, sender, specs)
            routes = [route(i, [c], False) for i, c in zip(ids, mine, strict=True)]
        layout.senders.append(entry(sender, routes))
    return layout
