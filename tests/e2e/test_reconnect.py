"""Connection drops and restarts: what was sent meanwhile arrives exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client import Client
from client.keystore import MINIMAL
from tests.e2e.helpers import PASSPHRASE, enrolled_client, quiet
from tests.support.servers import RunningServer


async def test_drop_mid_exchange_then_catch_up_exactly_once(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R001", backoff_initial=0.4)
    async with teacher, parent:
        await teacher.send_to_person(parent.person_id, "avant")
        assert (await parent.next_message()).body == "avant"

        await parent.reconnect()  # the parent is offline for ~0.2-0.4 s
        for i in range(3):
            await teacher.send_to_person(parent.person_id, f"pendant {i}")
        got = [(await parent.next_message()).body for _ in range(3)]
        assert got == ["pendant 0", "pendant 1", "pendant 2"]

        # The sender drops while its send is in flight: resent with the same
        # client message id after the reconnect, stored and delivered once.
        sending = asyncio.create_task(teacher.send_to_person(parent.person_id, "en vol"))
        await asyncio.sleep(0)
        await teacher.reconnect()
        receipt = await sending
        message = await parent.next_message()
        assert (message.body, message.message_id) == ("en vol", receipt.message_id)

        await parent.send_to_person(teacher.person_id, "après")
        assert (await teacher.next_message()).body == "après"
        await quiet(teacher, parent)
        assert not teacher.failures and not parent.failures


async def test_offline_restart_from_keystore_gets_the_queue_once(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R002")
    async with teacher:
        async with parent:
            await teacher.send_to_person(parent.person_id, "un")
            assert (await parent.next_message()).body == "un"
        for text in ("deux", "trois"):
            await teacher.send_to_person(parent.person_id, text)
        restarted = Client.load(tmp_path / "R002.keystore", PASSPHRASE)
        assert restarted.device_id == parent.device_id
        async with restarted:
            assert [(await restarted.next_message()).body for _ in range(2)] == ["deux", "trois"]
            await restarted.send_to_person(teacher.person_id, "quatre")
            assert (await teacher.next_message()).body == "quatre"
            await quiet(restarted, teacher)
        assert restarted.state.keys.identity.public == parent.state.keys.identity.public
    # The same keystore, connected again: nothing is delivered twice.
    again = Client.load(tmp_path / "R002.keystore", PASSPHRASE)
    async with again:
        await quiet(again)
    assert MINIMAL.opslimit >= 1
