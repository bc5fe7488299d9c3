"""Two SDK clients talk through a real server: 1:1 both ways, several devices."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import enrolled_client
from tests.support.servers import RunningServer


async def test_teacher_and_parent_exchange_both_ways(server: RunningServer, tmp_path: Path) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R001")
    async with teacher, parent:
        receipt = await teacher.send_to_person(parent.person_id, "Bonjour Madame Bernard")
        received = await parent.next_message()
        assert received.body == "Bonjour Madame Bernard"
        assert received.sender_person == teacher.person_id
        assert received.sender_kind == "app"
        assert received.message_id == receipt.message_id
        await parent.send_to_person(teacher.person_id, "Bonjour, merci !")
        reply = await teacher.next_message()
        assert reply.body == "Bonjour, merci !"
        await teacher.send_to_person(parent.person_id, "Second message")
        assert (await parent.next_message()).body == "Second message"
