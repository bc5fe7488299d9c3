"""Interoperability with the Python SDK itself (``client.Client``), not only ``crypto/``:
a Node device running the web client's TypeScript messaging core and SDK clients
exchange 1:1 and group messages through a real Carnet, both directions, and a
membership change rotates the Node sender key so that the new member (and the old
ones) read what follows (issue 10, "Interoperability"; docs/protocol-e2e.md §7).
"""

from __future__ import annotations

from pathlib import Path

from client import Client
from client.keystore import MINIMAL
from tests.support.servers import RunningServer
from tests.web.node import NodeProcess, require_node


async def _sdk(server: RunningServer, tmp_path: Path, external_id: str) -> Client:
    person = server.person(external_id)
    client = await Client.enrol(
        server.url, person["code"], tmp_path / f"{external_id}.keystore", "pw", limits=MINIMAL
    )
    await client.connect()
    return client


async def test_node_device_and_sdk_clients_talk_one_to_one_and_in_groups(
    server: RunningServer, tmp_path: Path
) -> None:
    require_node()
    parent = await _sdk(server, tmp_path, "R001")
    director = await _sdk(server, tmp_path, "D001")
    teacher = await NodeProcess.start(
        "scripts/node-peer.ts", "--url", server.url, "--code", server.person("T001")["code"]
    )
    try:
        ready = await teacher.event("ready")
        teacher_person = ready["person_id"]

        # 1:1, Node first (X3DH from the browser side), then the SDK answers.
        await teacher.command(cmd="direct", to=parent.person_id, text="Bonjour de la part du web")
        sent = await teacher.event("sent")
        message = await parent.next_message(timeout=20)
        assert (message.body, message.sender_person, message.group) == (
            "Bonjour de la part du web",
            teacher_person,
            False,
        )
        assert message.conversation == sent["conversation"]
        direct = await parent.direct(teacher_person)
        await direct.send("Réponse du SDK 🙂")
        got = await teacher.event("message")
        assert (got["text"], got["sender_person"], got["conversation"]) == (
            "Réponse du SDK 🙂",
            parent.person_id,
            sent["conversation"],
        )

        # 1:1, the SDK first (it starts the session with the Node device's bundle).
        to_teacher = await director.direct(teacher_person)
        await to_teacher.send("Conseil de classe à 17 h")
        got = await teacher.event("message")
        assert (got["text"], got["sender_person"]) == (
            "Conseil de classe à 17 h",
            director.person_id,
        )

        # A group the Node device owns: its sender key, then an SDK member's.
        await teacher.command(cmd="create", kind="group", members=[parent.person_id])
        group = (await teacher.event("conversation"))["id"]
        await teacher.command(cmd="send", conversation=group, text="Sortie jeudi")
        await teacher.event("sent")
        message = await parent.next_message(timeout=20)
        assert (message.body, message.group, message.conversation) == ("Sortie jeudi", True, group)
        handle = await parent.conversation(group)
        await handle.send("Merci, c'est noté")
        got = await teacher.event("message")
        assert (got["text"], got["group"], got["conversation"]) == (
            "Merci, c'est noté",
            True,
            group,
        )

        # Membership change: the director joins; the Node sender key rotates, and both
        # SDK members read the next group message with the new key.
        await teacher.command(cmd="add", conversation=group, person=director.person_id)
        assert director.person_id in (await teacher.event("conversation"))["members"]
        actions: list[str] = []
        while "added" not in actions and len(actions) < 6:  # after three `created`
            actions.append((await teacher.event("membership"))["action"])
        assert "added" in actions, actions
        await teacher.command(cmd="send", conversation=group, text="Bienvenue à la direction")
        await teacher.event("sent")
        for client in (parent, director):
            message = await client.next_message(timeout=20)
            assert (message.body, message.conversation) == ("Bienvenue à la direction", group)
        handle = await director.conversation(group)
        await handle.send("Merci pour l'invitation")
        got = await teacher.event("message")
        assert (got["text"], got["sender_person"]) == (
            "Merci pour l'invitation",
            director.person_id,
        )
        assert not [e for e in teacher.events if e["event"] in ("failure", "server_error")]
        assert not parent.failures and not director.failures
    finally:
        assert await teacher.close() == 0
        await parent.close()
        await director.close()
