"""After real exchanges, no plaintext is anywhere in the server's database."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bson import Binary

from tests.e2e.helpers import enrolled_client, quiet
from tests.support.servers import RunningServer

SECRETS = [
    "Zorglub-7f3a direct au parent",
    "Quetzal-91bd réponse au professeur",
    "Xylophone-c0de message de groupe",
    "Wombat-4e2f pour l'appareil éteint",
]


def leaves(value: Any) -> Iterator[bytes | str]:
    """Every string and byte string inside a document, keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from leaves(item)
    elif isinstance(value, Binary | bytes | bytearray):
        yield bytes(value)
    elif isinstance(value, str):
        yield value


def needles(text: str) -> list[bytes]:
    raw = text.encode()
    word = text.split()[0].encode()  # the distinctive token alone
    return [raw, word, base64.b64encode(word), base64.urlsafe_b64encode(word).rstrip(b"=")]


async def test_no_plaintext_in_any_collection(server: RunningServer, tmp_path: Path) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    sophie = await enrolled_client(server, tmp_path, "R001")
    nadia = await enrolled_client(server, tmp_path, "R003")
    offline = await enrolled_client(server, tmp_path, "R001", "sophie-offline")
    async with offline:
        pass  # publishes its prekeys, then stays offline: its ciphertexts stay stored
    async with teacher, sophie, nadia:
        await teacher.send_to_person(sophie.person_id, SECRETS[0])
        assert (await sophie.next_message()).body == SECRETS[0]
        await sophie.send_to_person(teacher.person_id, SECRETS[1])
        assert (await teacher.next_message()).body == SECRETS[1]
        group = await teacher.create_group([sophie.person_id, nadia.person_id], "5eB parents")
        await group.send(SECRETS[2])
        for member in (sophie, nadia):
            assert (await member.next_message()).body == SECRETS[2]
        await nadia.send_to_person(teacher.person_id, SECRETS[3])
        assert (await teacher.next_message()).body == SECRETS[3]
        await quiet(teacher, sophie, nadia)

    db = server.store.db
    queued = await db["messages"].count_documents({"recipients": offline.device_id})
    assert queued >= 3, "the offline device's ciphertexts should still be stored"
    names = await db.list_collection_names()
    assert {"messages", "conversations", "cursors"} <= set(names)
    scanned = 0
    for name in names:
        async for document in db[name].find({}):
            scanned += 1
            for leaf in leaves(document):
                data = leaf.encode() if isinstance(leaf, str) else leaf
                for secret in SECRETS:
                    for needle in needles(secret):
                        assert needle not in data, f"plaintext {needle!r} in {name}: {document}"
    assert scanned > 20
