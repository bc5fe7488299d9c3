"""The reading page in a real headless Chromium at 360 px: read, reply, acknowledge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.bridge.cdp import Page, chromium
from tests.bridge.helpers import Relay, bridge_server, link_of, make_email_only, worker
from tests.e2e.helpers import enrolled_client

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def text_of(page: Page) -> Any:
    return await page.evaluate("document.body.innerText")


async def test_page_in_chromium_read_reply_acknowledge(database_uri: str, tmp_path: Path) -> None:
    relay = Relay()
    await relay.start()
    try:
        async with bridge_server(database_uri, tmp_path, relay) as server:
            parent_id, bridge_device = await make_email_only(server, "R001")
            teacher = await enrolled_client(server, tmp_path, "T001")
            director = server.person("D001")["person_id"]
            async with teacher, chromium(tmp_path / "profile") as page:
                await teacher.send_to_person(parent_id, "Pouvez-vous passer au collège lundi ?")
                notice = await teacher.create_group(
                    [parent_id, director], "Mot à signer", kind="announcement", acknowledge=True
                )
                await notice.send("Sortie au musée le 14 : merci de signer")
                await worker(server).run_once()
                server.clock.advance(timedelta(seconds=server.settings.bridge_batch_seconds))
                assert (await worker(server).run_once())["sent"] == 2
                links = [link_of(mail) for _, _, mail in relay.received]

                by_text = {}
                for link in links:
                    await page.navigate(link)
                    by_text["direct" if "Pouvez" in await text_of(page) else "notice"] = link
                await page.navigate(by_text["direct"])
                text = await text_of(page)
                assert "Pouvez-vous passer au collège lundi ?" in text
                assert await page.evaluate("document.documentElement.scrollWidth") <= 360
                assert (
                    await page.evaluate("document.querySelector('label[for=text]').textContent")
                    == "Votre réponse / Your reply"
                )
                assert await page.evaluate("document.scripts.length") == 0
                await page.evaluate("document.getElementById('text').focus()")
                await page.call("Input.insertText", text="Oui, à 17h.")
                await page.click_and_wait("#send")
                assert "Votre réponse a été envoyée." in await page.evaluate(
                    "document.body.innerText"
                )
                await page.screenshot(ARTIFACTS / "bridge-page-reply-360.png")
                reply = await teacher.next_message()
                assert (reply.body, reply.sender_kind) == ("Oui, à 17h.", "email-bridge")

                await page.navigate(by_text["notice"])
                assert "Sortie au musée le 14" in await text_of(page)
                assert await page.evaluate("document.querySelector('#text')") is None
                await page.click_and_wait("button[id^=ack-]")
                assert "Lu et signé" in await text_of(page)
                await page.screenshot(ARTIFACTS / "bridge-page-acknowledged-360.png")
            kept = await worker(server).devices.mailbox(bridge_device, notice.id)
            acks = await server.store.receipts.acknowledgements(notice.id, kept[-1].seq)
            assert [a.person_id for a in acks] == [parent_id]
    finally:
        await relay.stop()
