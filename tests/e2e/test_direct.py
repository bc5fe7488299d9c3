"""SDK clients talk through a real server: 1:1 both ways, several devices, franking."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from client.content import direct_conversation_id
from crypto import InvalidMessage, verify_report
from server.state import FRANKING
from tests.e2e.helpers import enrolled_client, quiet
from tests.support.servers import RunningServer


async def test_teacher_and_parent_exchange_both_ways(server: RunningServer, tmp_path: Path) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R001")
    async with teacher, parent:
        contact = await teacher.contact(parent.person_id)
        assert [d.kind for d in contact.devices] == ["app"] and not contact.has_email_bridge
        receipt = await teacher.send_to_person(parent.person_id, "Bonjour Madame Bernard")
        assert receipt.devices == (parent.device_id,) and not receipt.email_bridge
        received = await parent.next_message()
        assert received.body == "Bonjour Madame Bernard"
        assert (received.sender_person, received.sender_device) == (
            teacher.person_id,
            teacher.device_id,
        )
        assert received.sender_kind == "app" and not received.from_me and not received.group
        assert received.to_person == parent.person_id
        assert received.conversation == direct_conversation_id(parent.person_id, teacher.person_id)
        assert received.message_id == receipt.message_id

        await parent.send_to_person(teacher.person_id, "Bonjour, merci !")
        assert (await teacher.next_message()).body == "Bonjour, merci !"
        for i in range(3):
            await teacher.send_to_person(parent.person_id, f"suite {i}")
        assert [(await parent.next_message()).body for _ in range(3)] == [
            "suite 0",
            "suite 1",
            "suite 2",
        ]
        await quiet(parent, teacher)
        assert parent.failures == [] and teacher.failures == []


async def test_every_device_of_both_people_gets_the_message(
    server: RunningServer, tmp_path: Path
) -> None:
    phone = await enrolled_client(server, tmp_path, "T001", "teacher-phone")
    school_pc = await enrolled_client(server, tmp_path, "T001", "teacher-pc")
    parent_a = await enrolled_client(server, tmp_path, "R001", "parent-a")
    parent_b = await enrolled_client(server, tmp_path, "R001", "parent-b")
    assert phone.person_id == school_pc.person_id and parent_a.person_id == parent_b.person_id
    async with phone, school_pc, parent_a, parent_b:
        receipt = await phone.send_to_person(parent_a.person_id, "Sortie scolaire vendredi")
        assert set(receipt.devices) == {parent_a.device_id, parent_b.device_id, school_pc.device_id}
        got = [await c.next_message() for c in (parent_a, parent_b, school_pc)]
        assert {m.body for m in got} == {"Sortie scolaire vendredi"}
        copy = got[2]
        assert copy.from_me and copy.to_person == parent_a.person_id
        assert copy.sender_device == phone.device_id

        await parent_b.send_to_person(phone.person_id, "Bien noté")
        got = [await c.next_message() for c in (phone, school_pc, parent_a)]
        assert {m.body for m in got} == {"Bien noté"}
        assert got[2].from_me
        await quiet(phone, school_pc, parent_a, parent_b)


async def test_franking_evidence_verifies_against_the_server_keyring(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R002")
    async with teacher, parent:
        receipt = await parent.send_to_person(teacher.person_id, "Message à signaler")
        message = await teacher.next_message()
        evidence = message.evidence
        assert evidence.stamp is not None and evidence.stamp == receipt.stamp
        report = evidence.report()
        verify_report(server.app[FRANKING], report)
        for forged in (
            replace(report, body=b"autre chose"),
            replace(report, sender_device_id=teacher.device_id),
            replace(report, timestamp_ms=report.timestamp_ms + 1),
        ):
            with pytest.raises(InvalidMessage):
                verify_report(server.app[FRANKING], forged)


async def test_a_person_without_devices_cannot_be_sent_to(
    server: RunningServer, tmp_path: Path
) -> None:
    from client import NoDevices

    teacher = await enrolled_client(server, tmp_path, "T001")
    async with teacher:
        with pytest.raises(NoDevices):
            await teacher.send_to_person(server.person("R004")["person_id"], "personne")
        directory = await teacher.directory()
        assert server.person("R004")["person_id"] in {p.person_id for p in directory}
    await asyncio.sleep(0)
