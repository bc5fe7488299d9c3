"""A pupil with data in every kind of collection, written the way Carnet writes it:
devices enrolled over the wire, prekeys published, then messaging documents
(conversations, messages, cursors, receipts, reports) in the documented shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp

from server.admin_actions import issue_enrolment_code
from storage.dpo_requests import RequestKind
from tests.support.devices import WireDevice, b64
from tests.support.servers import RunningServer


@dataclass
class Seeded:
    person: dict[str, Any]
    """The pupil's demo entry (person_id, external_id, name...)."""
    devices: list[WireDevice]
    teacher_id: str
    parent_id: str
    conversation: str
    other_conversation: str
    identity_keys: list[bytes]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed_pupil(carnet: RunningServer, http: aiohttp.ClientSession) -> Seeded:
    pupil = carnet.person("E001")
    teacher = carnet.person("T001")["person_id"]
    parent = carnet.person("R001")["person_id"]
    now = carnet.clock.now()
    devices = [WireDevice(), WireDevice()]
    await devices[0].enrol(http, carnet.url, pupil["code"])
    code, _ = await issue_enrolment_code(carnet.store, pupil["person_id"], now, timedelta(days=1))
    await devices[1].enrol(http, carnet.url, code.text)
    # An enrolment code issued through the admin API: audited with the pupil as target.
    async with http.post(
        f"{carnet.url}/v1/admin/people/{pupil['person_id']}/enrolment-codes",
        headers=bearer(carnet.operator_token),
    ) as response:
        assert response.status == 201, await response.text()
    db = carnet.store.db
    pid = pupil["person_id"]
    d0, d1 = devices[0].device_id, devices[1].device_id
    await db["signed_prekeys"].insert_one(
        {"_id": d0, "key_id": 1, "key": b"k" * 32, "signature": b"s" * 64, "updated_at": now}
    )
    await db["one_time_prekeys"].insert_one(
        {"_id": f"{d0}:1", "device_id": d0, "key_id": 1, "key": b"o" * 32}
    )
    conversation, other = "c_seedclass0001", "c_seeddirect001"
    await db["conversations"].insert_many(
        [
            {
                "_id": conversation,
                "kind": "class",
                "uai": pupil_school(carnet),
                "title": "5e B",
                "members": [teacher, pid, parent],
                "owners": [teacher],
                "class_id": "9999999D/5e B",
                "acknowledge": False,
                "seq": 2,
                "created_by": teacher,
                "created_at": now,
            },
            {
                "_id": other,
                "kind": "direct",
                "uai": pupil_school(carnet),
                "title": "",
                "members": [pid, teacher],
                "owners": [],
                "acknowledge": False,
                "seq": 1,
                "created_by": pid,
                "created_at": now,
            },
        ]
    )
    await db["messages"].insert_many(
        [
            {
                "_id": "m_seedmessage001",
                "conversation": conversation,
                "seq": 1,
                "sender_device": d0,
                "sender_person": pid,
                "created_at": now,
                "expires_at": now + timedelta(days=30),
                "recipients": ["d_teacherdevice1", d1],
                "pairwise": {"d_teacherdevice1": b"ct-1", d1: b"ct-2"},
                "commitment": b"c" * 32,
            },
            {
                "_id": "m_seedmessage002",
                "conversation": conversation,
                "seq": 2,
                "sender_device": "d_teacherdevice1",
                "sender_person": teacher,
                "created_at": now,
                "expires_at": now + timedelta(days=30),
                "recipients": [d0, d1],
                "group": b"group-ct",
            },
        ]
    )
    await db["cursors"].insert_one(
        {
            "_id": f"{d0}:{conversation}",
            "device_id": d0,
            "conversation": conversation,
            "acked_seq": 2,
        }
    )
    await db["receipts"].insert_one(
        {"conversation": conversation, "seq": 2, "person_id": pid, "kind": "read", "at": now}
    )
    await db["reports"].insert_one(
        {
            "_id": "x_seedreport001",
            "uai": pupil_school(carnet),
            "reporter": pid,
            "conversation": conversation,
            "message": "m_seedmessage002",
            "created_at": now,
        }
    )
    await carnet.store.dpo_requests.record(
        RequestKind.ACCESS,
        pid,
        pupil_school(carnet),
        now,
        "asked at the front desk",
        "dpo:test",
    )
    return Seeded(
        person=pupil,
        devices=devices,
        teacher_id=teacher,
        parent_id=parent,
        conversation=conversation,
        other_conversation=other,
        identity_keys=[d.public_key for d in devices],
    )


def pupil_school(carnet: RunningServer) -> str:
    uai: str = carnet.demo["school"]["uai"]
    return uai


__all__ = ["Seeded", "b64", "bearer", "seed_pupil"]
