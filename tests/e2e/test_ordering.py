"""Order per conversation: two senders write at once, a third device reads in seq order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client import Client, SentReceipt
from tests.e2e.helpers import enrolled_client, quiet
from tests.support.servers import RunningServer

PER_SENDER = 15


async def burst(client: Client, conversation: str, label: str) -> list[SentReceipt]:
    return [await client.send(conversation, f"{label} {i}") for i in range(PER_SENDER)]


async def test_two_senders_arrive_in_seq_order_at_a_third_device(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    nadia = await enrolled_client(server, tmp_path, "R003")
    async with teacher, sophie, nadia:
        group = await teacher.create_group([sophie.person_id, nadia.person_id], "Ordre")
        sent = await asyncio.gather(
            burst(teacher, group.id, "teacher"), burst(sophie, group.id, "sophie")
        )
        got = [await nadia.next_message() for _ in range(2 * PER_SENDER)]
        seqs = [m.seq for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert {m.seq for m in got} == {r.seq for receipts in sent for r in receipts}
        assert all(m.conversation == group.id and m.group for m in got)
        for sender, label in ((teacher, "teacher"), (sophie, "sophie")):
            bodies = [m.body for m in got if m.sender_device == sender.device_id]
            assert bodies == [f"{label} {i}" for i in range(PER_SENDER)]
        # Each sender's key distribution came before its first group message.
        assert not nadia.failures and nadia.duplicates == 0
        await quiet(nadia)


async def test_direct_messages_from_both_sides_interleave_in_seq_order(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001", "teacher-phone")
    school_pc = await enrolled_client(server, tmp_path, "T001", "teacher-pc")
    parent = await enrolled_client(server, tmp_path, "R002")
    async with teacher, school_pc, parent:
        direct = await teacher.direct(parent.person_id)
        await asyncio.gather(
            burst(teacher, direct.id, "teacher"), burst(parent, direct.id, "parent")
        )
        # The teacher's other device sees both sides: its own copies and the parent's.
        got = [await school_pc.next_message() for _ in range(2 * PER_SENDER)]
        seqs = [m.seq for m in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        copies = [m for m in got if m.from_me]
        assert [m.body for m in copies] == [f"teacher {i}" for i in range(PER_SENDER)]
        assert all(m.to_person == parent.person_id for m in copies)
        assert not school_pc.failures
