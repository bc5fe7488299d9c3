"""Group conversations through a real server: one sender-key ciphertext per message,
membership events, rotation on every change, removed members locked out."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import MembershipChange, SendRefused
from crypto import InvalidMessage
from tests.e2e.helpers import enrolled_client, quiet
from tests.support.servers import RunningServer


def membership(event: object) -> MembershipChange:
    assert isinstance(event, MembershipChange), event
    return event


async def test_group_exchange_then_removed_member_cannot_read(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    nadia = await enrolled_client(server, tmp_path, "R003")
    async with teacher, sophie, nadia:
        group = await teacher.create_group([sophie.person_id, nadia.person_id], "5eB parents")
        assert group.kind == "group" and set(group.members) == {
            teacher.person_id,
            sophie.person_id,
            nadia.person_id,
        }
        for member in (teacher, sophie, nadia):
            created = membership(await member.next_event())
            assert (created.conversation, created.seq, created.action) == (group.id, 1, "created")

        receipt = await group.send("Réunion jeudi 18h")
        assert set(receipt.devices) == {sophie.device_id, nadia.device_id}
        assert receipt.conversation == group.id and receipt.seq == 3  # 2: the sender key
        for member in (sophie, nadia):
            message = await member.next_message()
            assert message.body == "Réunion jeudi 18h" and message.group
            assert (message.conversation, message.seq) == (group.id, receipt.seq)
            assert message.sender_person == teacher.person_id
            assert message.evidence.conversation == group.id
        await sophie.send(group.id, "Je serai là")
        await nadia.send(group.id, "Moi aussi")
        for member, expected in ((teacher, 2), (sophie, 1), (nadia, 1)):
            bodies = {(await member.next_message()).body for _ in range(expected)}
            assert bodies <= {"Je serai là", "Moi aussi"}
        # Same membership: no new sender key, no new distribution.
        teacher_key = teacher.state.groups.sender(group.id, teacher.state.groups.members(group.id))[
            0
        ].key_id
        receipt = await group.send("Rappel")
        assert [(await m.next_message()).body for m in (sophie, nadia)] == ["Rappel", "Rappel"]

        # Nadia is removed: everyone gets the event, and sender keys rotate.
        old_state = nadia.state.groups.receiver(group.id, teacher.device_id)
        assert old_state is not None and teacher_key in old_state.key_ids
        await group.remove_member(nadia.person_id)
        for member in (teacher, sophie, nadia):
            removed = membership(await member.next_event())
            assert (removed.action, removed.persons, removed.by) == (
                "removed",
                (nadia.person_id,),
                teacher.person_id,
            )
            assert set(removed.members) == {teacher.person_id, sophie.person_id}
        assert group.id not in nadia.state.conversations
        receipt = await group.send("Sans Nadia")
        assert receipt.devices == (sophie.device_id,)
        captured = await sophie.next_message()
        assert captured.body == "Sans Nadia" and captured.group
        new_key = teacher.state.groups.sender(group.id, frozenset(receipt.devices))[0].key_id
        assert new_key != teacher_key
        # Not even addressed: nothing reaches Nadia...
        await quiet(nadia)
        # ...and the ciphertext Sophie got does not open with Nadia's old sender key.
        with pytest.raises(InvalidMessage):
            old_state.decrypt(captured.ciphertext)
        # Sophie's sender key rotated on the event too: a new distribution first.
        sophie_before = sophie.state.groups.members(group.id)
        assert sophie_before == frozenset()
        await sophie.send(group.id, "Bien reçu")
        assert (await teacher.next_message()).body == "Bien reçu"
        assert sophie.state.groups.members(group.id) == {teacher.device_id}
        # Nadia can no longer write there.
        with pytest.raises(SendRefused) as refused:
            await nadia.send(group.id, "Encore moi")
        assert refused.value.code == "unknown_conversation"
        await quiet(nadia, teacher, sophie)
        assert not (teacher.failures or sophie.failures or nadia.failures)


async def test_an_added_member_reads_only_what_follows(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    nadia = await enrolled_client(server, tmp_path, "R003")
    async with teacher, sophie, nadia:
        group = await teacher.create_group([sophie.person_id], "Sortie")
        await group.send("Avant Nadia")
        assert (await sophie.next_message()).body == "Avant Nadia"
        added = await group.add_member(nadia.person_id)
        assert nadia.person_id in added.members
        event = membership(await nadia.next_event())
        assert (event.action, event.persons) == ("added", (nadia.person_id,))
        await group.send("Avec Nadia")
        for member in (sophie, nadia):
            assert (await member.next_message()).body == "Avec Nadia"
        await quiet(nadia, sophie)
        assert not (teacher.failures or sophie.failures or nadia.failures)


async def test_only_owners_write_in_an_announcement(server: RunningServer, tmp_path: Path) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    async with teacher, sophie:
        announcement = await teacher.create_group(
            [sophie.person_id], "Rentrée", kind="announcement"
        )
        await announcement.send("Rentrée le 2 septembre")
        message = await sophie.next_message()
        assert message.body == "Rentrée le 2 septembre" and message.group
        with pytest.raises(SendRefused) as refused:
            await sophie.send(announcement.id, "Merci")
        assert refused.value.code == "not_allowed"
