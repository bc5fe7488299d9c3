"""The bridge end to end: a real relay, real HTTP, a real SMTP listener, SDK devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import aiosmtplib
import pytest

from client import Client
from server.state import METRICS
from tests.bridge.helpers import (
    FROM,
    REPLY_DOMAIN,
    Relay,
    bridge_server,
    form_fields,
    link_of,
    make_email_only,
    text_part,
    worker,
)
from tests.e2e.helpers import enrolled_client
from tests.moderation_server.helpers import paris
from tests.support.servers import RunningServer

BATCH = timedelta(seconds=300)
SOPHIE = "sophie.bernard@demo.example"


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    relay = Relay()
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


@pytest.fixture
async def bridged(database_uri: str, tmp_path: Path, relay: Relay) -> AsyncIterator[RunningServer]:
    async with bridge_server(database_uri, tmp_path, relay) as server:
        yield server


async def test_notification_page_reply_reaches_the_teacher(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    parent_id, bridge_device = await make_email_only(bridged, "R001")
    teacher = await enrolled_client(bridged, tmp_path, "T001")
    async with teacher:
        contact = await teacher.contact(parent_id)
        assert contact.has_email_bridge
        receipt = await teacher.send_to_person(parent_id, "Réunion parents-professeurs jeudi 18h")
        assert receipt.email_bridge and bridge_device in receipt.devices
        await teacher.send_to_person(parent_id, "Merci de confirmer")

        done = await worker(bridged).run_once()
        assert done["opened"] == 2 and done["sent"] == 0  # batched: not yet
        bridged.clock.advance(BATCH)
        done = await worker(bridged).run_once()
        assert done["sent"] == 1
        assert len(relay.received) == 1
        sender, recipients, mail = relay.received[0]
        assert (sender, recipients) == (FROM, [SOPHIE])
        body = text_part(mail)
        assert "Claire Durand" in body and "2 nouveaux messages" in body
        assert "Réunion" not in body and "Réunion" not in str(mail)  # default mode: no content
        assert str(mail["Reply-To"]).endswith("@" + REPLY_DOMAIN)
        assert mail.get_body(preferencelist=("html",)) is not None

        async with aiohttp.ClientSession() as http:
            link = link_of(mail)
            async with http.get(link) as response:
                page = await response.text()
                assert response.status == 200
                assert response.headers["Referrer-Policy"] == "no-referrer"
                assert "script-src" not in response.headers["Content-Security-Policy"]
            assert "Réunion parents-professeurs jeudi 18h" in page and "Merci de confirmer" in page
            fields = form_fields(page, "reply")
            async with http.post(
                link + "/reply",
                data={**fields, "text": "Je serai présente."},
                allow_redirects=False,
            ) as response:
                assert response.status == 303, await response.text()
            # the same form submitted twice posts once (client id from the form nonce)
            async with http.post(
                link + "/reply",
                data={**fields, "text": "Je serai présente."},
                allow_redirects=False,
            ) as response:
                assert response.status == 303
            async with http.post(
                link + "/reply",
                data={**fields, "nonce": "a" * 16, "text": "forged"},
                allow_redirects=False,
            ) as response:
                assert response.status == 403

        reply = await teacher.next_message()
        assert reply.body == "Je serai présente."
        assert reply.sender_person == parent_id and reply.sender_device == bridge_device
        assert reply.sender_kind == "email-bridge"
        assert teacher.queued == 0 and teacher.failures == []

        bridged.clock.advance(BATCH)
        assert (await worker(bridged).run_once())["sent"] == 0  # nothing sent twice
    await assert_no_plaintext(bridged, ["Réunion parents", "Merci de confirmer", "serai présente"])


async def test_a_page_reply_goes_through_moderation_like_any_send(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    """At 21:00 the school's quiet hours hold for teachers (docs/moderation.md):
    the parent's reply is stored for the teacher's device without notification."""
    teacher, _, _ = await notified(bridged, relay, tmp_path)
    link = link_of(relay.received[-1][2])
    bridged.clock.advance(paris(2037, 9, 1, 21) - bridged.clock.now())
    async with teacher, aiohttp.ClientSession() as http:
        async with http.get(link) as response:
            fields = form_fields(await response.text(), "reply")
        async with http.post(
            link + "/reply", data={**fields, "text": "Bien reçu."}, allow_redirects=False
        ) as response:
            assert response.status == 303, await response.text()
        reply = await teacher.next_message()
        assert reply.body == "Bien reçu." and reply.sender_kind == "email-bridge"
    stored = await bridged.store.db["messages"].find_one({"sender_device": reply.sender_device})
    assert stored is not None and teacher.device_id in stored.get("silent", [])


async def assert_no_plaintext(server: RunningServer, phrases: list[str]) -> None:
    db = server.store.db
    for name in await db.list_collection_names():
        async for doc in db[name].find({}):
            dumped = repr(doc)
            for phrase in phrases:
                assert phrase not in dumped, (name, phrase)
                assert phrase.encode() not in dumped.encode(), (name, phrase)


async def notified(server: RunningServer, relay: Relay, tmp_path: Path) -> tuple[Client, str, str]:
    parent_id, _ = await make_email_only(server, "R001")
    teacher = await enrolled_client(server, tmp_path, "T001")
    await teacher.connect()
    await teacher.send_to_person(parent_id, "Sortie au musée vendredi")
    await worker(server).run_once()
    server.clock.advance(BATCH)
    await worker(server).run_once()
    mail = relay.received[-1][2]
    return teacher, str(mail["Reply-To"]), str(mail["Message-ID"])


def reply_mail(sender: str, to: str, text: str, in_reply_to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Sophie Bernard <{sender}>"
    message["To"] = to
    message["Subject"] = "Re: Carnet"
    message["In-Reply-To"] = in_reply_to
    message["Message-ID"] = f"<{abs(hash(text))}@mail.demo.example>"
    message.set_content(
        f"{text}\n\nSophie\n-- \nSophie Bernard, 06 00 00 00 00\n\n"
        "Le 01/09/2037 à 10:05, Carnet a écrit :\n> Claire Durand vous a écrit\n"
    )
    return message


async def test_reply_by_email_reaches_the_teacher_and_forgeries_are_refused(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    teacher, reply_to, message_id = await notified(bridged, relay, tmp_path)
    port = bridged.settings.bridge_listen_port
    assert port is not None
    async with teacher:
        good = reply_mail(SOPHIE, reply_to, "D'accord, il aura son pique-nique.", message_id)
        await aiosmtplib.send(good, hostname="127.0.0.1", port=port, sender=SOPHIE)
        received = await teacher.next_message()
        assert received.body == "D'accord, il aura son pique-nique.\n\nSophie"
        assert received.sender_kind == "email-bridge"
        # the same email delivered again is posted once
        await aiosmtplib.send(good, hostname="127.0.0.1", port=port, sender=SOPHIE)

        stranger = reply_mail("someone@else.example", reply_to, "Je me fais passer", message_id)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await aiosmtplib.send(
                stranger, hostname="127.0.0.1", port=port, sender="someone@else.example"
            )
        assert refused.value.code == 550 and "may not reply" in refused.value.message

        spoofed_header = reply_mail("someone@else.example", reply_to, "En-tête", message_id)
        with pytest.raises(aiosmtplib.SMTPDataError):
            await aiosmtplib.send(spoofed_header, hostname="127.0.0.1", port=port, sender=SOPHIE)

        local = reply_to.partition("@")[0]
        forged = local[:-4] + ("aaaa" if not local.endswith("aaaa") else "bbbb")
        forged_to = f"{forged}@{REPLY_DOMAIN}"
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as rcpt:
            await aiosmtplib.send(
                reply_mail(SOPHIE, forged_to, "Faux jeton", message_id),
                hostname="127.0.0.1",
                port=port,
                sender=SOPHIE,
            )
        assert rcpt.value.recipients[0].code == 550

        bridged.clock.advance(timedelta(days=bridged.settings.bridge_reply_days + 4))
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as expired:
            await aiosmtplib.send(
                reply_mail(SOPHIE, reply_to, "Trop tard", message_id),
                hostname="127.0.0.1",
                port=port,
                sender=SOPHIE,
            )
        assert "expired" in expired.value.recipients[0].message
        assert teacher.queued == 0


async def test_relay_down_mail_waits_and_goes_out_once(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    parent_id, _ = await make_email_only(bridged, "R001")
    teacher = await enrolled_client(bridged, tmp_path, "T001")
    metrics = bridged.app[METRICS]
    async with teacher:
        await relay.stop()
        await teacher.send_to_person(parent_id, "Cantine fermée lundi")
        await worker(bridged).run_once()
        bridged.clock.advance(BATCH)
        assert (await worker(bridged).run_once())["retry"] == 1
        bridged.clock.advance(timedelta(seconds=30))  # backoff not over: no attempt
        assert (await worker(bridged).run_once())["retry"] == 0
        bridged.clock.advance(timedelta(seconds=30))
        assert (await worker(bridged).run_once())["retry"] == 1  # second failure, 120 s next
        await relay.start()
        await teacher.send_to_person(parent_id, "Et mardi aussi")  # a new batch meanwhile
        await worker(bridged).run_once()
        bridged.clock.advance(timedelta(seconds=300))
        done = await worker(bridged).run_once()
        assert done["sent"] == 2 and done["retry"] == 0
        for _ in range(3):
            bridged.clock.advance(timedelta(hours=1))
            assert (await worker(bridged).run_once())["sent"] == 0
    assert len(relay.received) == 2
    assert [m["Message-ID"] for _, _, m in relay.received][0] != relay.received[1][2]["Message-ID"]
    sample = metrics.smtp_messages
    assert sample.labels("sent")._value.get() == 2
    assert sample.labels("queued")._value.get() == 2


async def test_refused_recipient_is_a_bounce_listed_for_the_school(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    relay.refuse.add(SOPHIE)
    parent_id, _ = await make_email_only(bridged, "R001")
    teacher = await enrolled_client(bridged, tmp_path, "T001")
    async with teacher:
        await teacher.send_to_person(parent_id, "Bonjour")
    await worker(bridged).run_once()
    bridged.clock.advance(BATCH)
    assert (await worker(bridged).run_once())["bounced"] == 1
    uai = bridged.demo["school"]["uai"]
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{bridged.url}/v1/admin/schools/{uai}/email-bridge/bounces",
            headers={"Authorization": f"Bearer {bridged.operator_token}"},
        ) as response:
            body = await response.json()
    assert response.status == 200
    [bounce] = body["bounces"]
    assert (bounce["person_id"], bounce["email"], bounce["code"]) == (parent_id, SOPHIE, 550)
    bridged.clock.advance(timedelta(days=1))
    assert (await worker(bridged).run_once())["sent"] == 0  # never retried


async def test_announcement_acknowledged_from_the_page_and_full_content_mode(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    parent_id, bridge_device = await make_email_only(bridged, "R001")
    uai = bridged.demo["school"]["uai"]
    async with aiohttp.ClientSession() as http:
        async with http.put(
            f"{bridged.url}/v1/admin/schools/{uai}/email-bridge",
            json={"full_content": True},
            headers={"Authorization": f"Bearer {bridged.operator_token}"},
        ) as response:
            assert response.status == 200
    teacher = await enrolled_client(bridged, tmp_path, "T001")
    director = bridged.person("D001")["person_id"]
    async with teacher:
        notice = await teacher.create_group(
            [parent_id, director], "Mot à signer", kind="announcement", acknowledge=True
        )
        await notice.send("Photo de classe le 12 : autorisation")
        await worker(bridged).run_once()
        bridged.clock.advance(BATCH)
        assert (await worker(bridged).run_once())["sent"] == 1
        mail = relay.received[-1][2]
        assert "Photo de classe le 12" in text_part(mail)  # the school opted in
        assert mail["Reply-To"] is None  # one-way announcement
        async with aiohttp.ClientSession() as http:
            link = link_of(mail)
            async with http.get(link) as response:
                page = await response.text()
            assert "/reply" not in page  # parents do not write in announcements
            fields = form_fields(page, "ack")
            async with http.post(link + "/ack", data=fields, allow_redirects=False) as response:
                assert response.status == 303
            async with http.get(link + "?done=acked") as response:
                page = await response.text()
            assert "Lu et signé" in page
    [ack] = await bridged.store.receipts.acknowledgements(notice.id, fields_seq(fields))
    assert (ack.person_id, ack.device_id) == (parent_id, bridge_device)
    device = await bridged.store.enrolment.device(bridge_device)
    assert device is not None
    from nacl.signing import VerifyKey

    from server.bridge.device import acknowledgement_message

    kept = await worker(bridged).devices.mailbox(bridge_device, notice.id)
    VerifyKey(device.identity_key).verify(
        acknowledgement_message(notice.id, ack.seq, kept[0].message_id, parent_id), ack.signature
    )


def fields_seq(fields: dict[str, str]) -> int:
    return int(fields["seq"])


async def test_expired_or_forged_link_shows_a_clear_page(
    bridged: RunningServer, relay: Relay, tmp_path: Path
) -> None:
    teacher, _, _ = await notified(bridged, relay, tmp_path)
    await teacher.close()
    link = link_of(relay.received[-1][2])
    async with aiohttp.ClientSession() as http:
        forged = link[:-1] + ("a" if link[-1] != "a" else "b")
        async with http.get(forged) as response:
            assert response.status == 410
            assert "plus valable" in await response.text()
        bridged.clock.advance(timedelta(hours=bridged.settings.bridge_link_hours, seconds=1))
        async with http.get(link) as response:
            assert response.status == 410


async def test_directory_import_email_only_creates_the_bridge_device(
    bridged: RunningServer, relay: Relay
) -> None:
    uai = bridged.demo["school"]["uai"]
    record = {
        "uai": uai, "external_id": "R003", "role": "parent", "given_name": "Nadia",
        "family_name": "Petit", "email": "nadia.petit@demo.example", "children": ["E002"],
        "email_only": True,
    }  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{bridged.url}/v1/admin/directory/people",
            json={"people": [record]},
            headers={"Authorization": f"Bearer {bridged.operator_token}"},
        ) as response:
            assert response.status == 200, await response.text()
    assert (await worker(bridged).run_once())["created"] == 1
    assert (await worker(bridged).run_once())["created"] == 0
    person_id = bridged.person("R003")["person_id"]
    [device] = await bridged.store.enrolment.devices_of(person_id)
    assert device.kind.value == "email-bridge"
    assert await bridged.store.prekeys.count(device.id) == 100
