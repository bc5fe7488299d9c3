"""Claims made by ``_id`` against a real database: one-time prekeys and audit aliases.

SecantusDB 0.7 serves every ``findAndModify`` by scanning the whole
collection (docs/performance.md, "findAndModify"), so these repositories
claim by a ``_id`` write instead. The tests check what the claim promises
(each prekey handed out once, oldest first; one alias per subject, even
for concurrent writers on two clients) and, through the driver's command
monitoring, that no ``findAndModify`` is sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from storage.audit import AuditLog
from storage.prekeys import OneTimePrekey, PrekeyRepository

NOW = datetime(2037, 9, 1, 8, 0, tzinfo=UTC)
Doc = dict[str, Any]


class Commands(monitoring.CommandListener):
    """The names of the commands a client sent."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


class Node:
    """One client (a node) on the test database, with its commands recorded."""

    def __init__(self, uri: str, name: str) -> None:
        self.commands = Commands()
        self.client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri, tz_aware=True, event_listeners=[self.commands]
        )
        self.prekeys = PrekeyRepository(self.client[name])
        self.audit = AuditLog(self.client[name])


@pytest.fixture
async def nodes(database_uri: str) -> AsyncIterator[tuple[Node, Node]]:
    name = f"claims_{uuid.uuid4().hex[:12]}"
    a, b = Node(database_uri, name), Node(database_uri, name)
    await a.prekeys.create_indexes()
    await a.audit.create_indexes()
    try:
        yield a, b
    finally:
        await a.client.drop_database(name)
        await a.client.close()
        await b.client.close()


async def test_one_time_prekeys_are_taken_oldest_first_then_none(
    nodes: tuple[Node, Node],
) -> None:
    a, _ = nodes
    keys = [OneTimePrekey(k, bytes([k]) * 32) for k in (7, 3, 5)]
    await a.prekeys.publish("d_device000001", None, keys, NOW)
    await a.prekeys.publish("d_device000002", None, [OneTimePrekey(1, b"o" * 32)], NOW)
    taken = [await a.prekeys.take_one_time("d_device000001") for _ in range(4)]
    assert taken == [
        OneTimePrekey(3, bytes([3]) * 32),
        OneTimePrekey(5, bytes([5]) * 32),
        OneTimePrekey(7, bytes([7]) * 32),
        None,
    ]
    assert await a.prekeys.count("d_device000002") == 1  # another device's keys untouched
    assert "findAndModify" not in a.commands.names


async def test_concurrent_fetches_on_two_nodes_never_share_a_prekey(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    device = "d_device000003"
    await a.prekeys.publish(device, None, [OneTimePrekey(k, b"k" * 32) for k in range(12)], NOW)
    fetches = [(a, b)[i % 2].prekeys.take_one_time(device) for i in range(24)]
    got = [k.key_id for k in await asyncio.gather(*fetches) if k is not None]
    assert len(got) == len(set(got)), f"a prekey was handed out twice: {sorted(got)}"
    assert len(got) + await a.prekeys.count(device) == 12
    assert "findAndModify" not in a.commands.names + b.commands.names


async def test_a_subject_keeps_one_alias_across_concurrent_writers(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    subject = "p_person000001"
    aliases = await asyncio.gather(*((a, b)[i % 2].audit._alias(subject) for i in range(10)))
    assert len(set(aliases)) == 1 and aliases[0].startswith("s_")
    assert await a.audit.aliases([subject]) == [aliases[0]]
    assert await b.audit._alias(subject) == aliases[0]
    assert await a.audit._alias("p_person000002") != aliases[0]
    assert "findAndModify" not in a.commands.names + b.commands.names


async def test_an_erased_subject_gets_a_new_alias(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    first = await a.audit._alias("p_person000003")
    assert await a.audit.forget_subjects(["p_person000003"]) == 1
    again = await a.audit._alias("p_person000003")
    assert again != first and await a.audit.aliases(["p_person000003"]) == [again]
