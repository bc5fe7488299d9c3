"""Interoperability: the TypeScript protocol module (run by Node) and ``crypto/``
(Python) exchange 1:1 and group messages through a real Carnet, in both directions,
each side starting sessions (docs/protocol-e2e.md; issue 10, "Interoperability").
"""

from __future__ import annotations

import aiohttp

from crypto import GroupSender
from crypto.encoding import b64url_encode
from tests.support.servers import RunningServer
from tests.web.node import NodeProcess
from tests.web.pypeer import PythonPeer


async def test_node_and_python_exchange_pairwise_and_group_messages(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    parent = PythonPeer(server.url)
    await parent.start(http, server.person("R001")["code"])
    director = PythonPeer(server.url)
    await director.start(http, server.person("D001")["code"])
    teacher = await NodeProcess.start(
        "scripts/node-peer.ts", "--url", server.url, "--code", server.person("T001")["code"]
    )
    try:
        ready = await teacher.event("ready")
        teacher_person, teacher_device = ready["person_id"], ready["device_id"]

        # Node initiates (X3DH with the parent's bundle); Python accepts and answers.
        await teacher.command(cmd="direct", to=parent.person_id, text="Bonjour, ici Mme Durand")
        sent = await teacher.event("sent")
        assert sent["bridge"] is False
        content, frame = await parent.next_content()
        assert content == {"t": "text", "text": "Bonjour, ici Mme Durand", "to": parent.person_id}
        assert frame["sender_person"] == teacher_person and frame["stamp"]
        assert frame["conversation"] == sent["conversation"]
        reply = {"t": "text", "text": "Merci, bien reçu", "to": teacher_person}
        await parent.send_pairwise(sent["conversation"], teacher_device, reply)
        message = await teacher.event("message")
        assert (message["text"], message["sender_person"]) == ("Merci, bien reçu", parent.person_id)

        # Python initiates (X3DH with the teacher's bundle); Node accepts and answers.
        direct = await director.conversation(http, "direct", [teacher_person])
        await director.open_session(http, teacher_person)
        await director.send_pairwise(
            direct["id"], teacher_device, {"t": "text", "text": "Réunion à 18 h", "to": None}
        )
        message = await teacher.event("message")
        assert (message["text"], message["group"]) == ("Réunion à 18 h", False)
        await teacher.command(cmd="direct", to=director.person_id, text="Entendu 👍")
        assert (await teacher.event("sent"))["conversation"] == direct["id"]
        content, _ = await director.next_content()
        assert content["text"] == "Entendu 👍"

        # Group, Node sending: a sender key over the pairwise sessions, then one ciphertext.
        await teacher.command(
            cmd="create", kind="group", members=[parent.person_id, director.person_id]
        )
        group = (await teacher.event("conversation"))["id"]
        await teacher.command(cmd="send", conversation=group, text="Sortie jeudi")
        await teacher.event("sent")
        for peer in (parent, director):
            key, _ = await peer.next_content()
            assert key["t"] == "sender_key" and key["conversation"] == group
            content, frame = await peer.next_content()
            assert content["text"] == "Sortie jeudi" and frame["group"] is True

        # Group, Python sending: distribution to the teacher, then the group ciphertext.
        sender = GroupSender.generate()
        distribution = b64url_encode(sender.distribution())
        key_content = {"t": "sender_key", "conversation": group, "distribution": distribution}
        await parent.send_pairwise(group, teacher_device, key_content)
        await parent.send_group(group, sender, [teacher_device], "Merci pour l'info")
        message = await teacher.event("message")
        assert (message["text"], message["group"], message["conversation"]) == (
            "Merci pour l'info",
            True,
            group,
        )
        assert not [e for e in teacher.events if e["event"] in ("failure", "server_error")]
    finally:
        assert await teacher.close() == 0
        await parent.close()
        await director.close()
