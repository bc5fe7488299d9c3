"""Sender-key groups through a real server: one ciphertext, rotation on removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from crypto import InvalidMessage
from tests.e2e.helpers import enrolled_client, quiet
from tests.support.servers import RunningServer

CONVERSATION = "class-5eB-parents"


async def test_group_exchange_then_removed_member_cannot_read(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    nadia = await enrolled_client(server, tmp_path, "R003")
    everyone = [teacher, sophie, nadia]
    people = [c.person_id for c in everyone]
    async with teacher, sophie, nadia:
        receipt = await teacher.send_to_group(CONVERSATION, people, "Réunion jeudi 18h")
        assert set(receipt.devices) == {sophie.device_id, nadia.device_id}
        for member in (sophie, nadia):
            message = await member.next_message()
            assert message.body == "Réunion jeudi 18h" and message.group
            assert message.conversation == CONVERSATION
            assert message.sender_person == teacher.person_id
            assert message.evidence.conversation == CONVERSATION
        await sophie.send_to_group(CONVERSATION, people, "Je serai là")
        await nadia.send_to_group(CONVERSATION, people, "Moi aussi")
        for member, expected in ((teacher, 2), (sophie, 1), (nadia, 1)):
            bodies = {(await member.next_message()).body for _ in range(expected)}
            assert bodies <= {"Je serai là", "Moi aussi"}
        # Same membership: no new sender key, no new distribution.
        teacher_key = teacher.state.groups.sender(
            CONVERSATION, teacher.state.groups.members(CONVERSATION)
        )[0].key_id
        await teacher.send_to_group(CONVERSATION, people, "Rappel")
        assert [(await m.next_message()).body for m in (sophie, nadia)] == ["Rappel", "Rappel"]

        # Nadia leaves the group: the teacher's next send rotates the sender key.
        old_state = nadia.state.groups.receiver(CONVERSATION, teacher.device_id)
        assert old_state is not None and teacher_key in old_state.key_ids
        remaining = [teacher.person_id, sophie.person_id]
        receipt = await teacher.send_to_group(CONVERSATION, remaining, "Sans Nadia")
        assert receipt.devices == (sophie.device_id,)
        captured = await sophie.next_message()
        assert captured.body == "Sans Nadia" and captured.group
        new_key = teacher.state.groups.sender(CONVERSATION, frozenset(receipt.devices))[0].key_id
        assert new_key != teacher_key
        # Not even addressed: nothing reaches Nadia...
        await quiet(nadia)
        # ...and the ciphertext Sophie got does not open with Nadia's old sender key.
        with pytest.raises(InvalidMessage):
            old_state.decrypt(captured.ciphertext)
        # Sophie's own sender key rotates too when she next sends.
        await sophie.send_to_group(CONVERSATION, remaining, "Bien reçu")
        assert (await teacher.next_message()).body == "Bien reçu"
        await quiet(nadia, teacher, sophie)
        assert not (teacher.failures or sophie.failures or nadia.failures)
