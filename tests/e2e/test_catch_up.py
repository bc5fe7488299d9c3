"""Offline catch-up through cumulative acknowledgements: a reconnecting device gets what
it has not acknowledged, and only that; expired gaps are reported."""

from __future__ import annotations

from pathlib import Path

from client import Client, ExpiredMessages, MembershipChange
from tests.e2e.helpers import PASSPHRASE, enrolled_client, quiet
from tests.support.servers import RunningServer


async def test_reconnect_gets_only_what_was_not_acknowledged(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R002")
    async with teacher:
        async with parent:
            direct = await teacher.direct(parent.person_id)
            created = await parent.next_event()
            assert isinstance(created, MembershipChange) and created.seq == 1
            for text in ("un", "deux", "trois"):
                last = await direct.send(text)
            assert [(await parent.next_message()).body for _ in range(3)] == [
                "un",
                "deux",
                "trois",
            ]
        # The SDK acknowledged each frame before handing it over: once the node
        # writes what it holds (every `ack_flush_seconds`), the cursor is at the last seq.
        await server.write_acks()
        cursors = await server.store.cursors.of_device(parent.device_id)
        assert cursors[direct.id] == last.seq
        for text in ("quatre", "cinq"):
            await direct.send(text)

        restarted = Client.load(tmp_path / "R002.keystore", PASSPHRASE)
        async with restarted:
            got = [await restarted.next_message() for _ in range(2)]
            assert [(m.body, m.seq) for m in got] == [
                ("quatre", last.seq + 1),
                ("cinq", last.seq + 2),
            ]
            # Delivery is in seq order: an acknowledged frame sent again would have
            # come before these two.
            assert restarted.duplicates == 0
            # A sync from the start resends everything stored for this device; the
            # SDK drops what it already processed.
            head = await restarted.sync(direct.id, since=0)
            assert head == last.seq + 2
            assert restarted.duplicates == head
            await quiet(restarted)
            assert not restarted.failures


async def test_messages_that_expired_undelivered_are_reported(
    server: RunningServer, tmp_path: Path
) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    parent = await enrolled_client(server, tmp_path, "R003")
    async with teacher:
        async with parent:
            direct = await teacher.direct(parent.person_id)
            assert isinstance(await parent.next_event(), MembershipChange)
            first = await direct.send("reçu")
            assert (await parent.next_message()).body == "reçu"
        lost = [await direct.send(f"perdu {i}") for i in range(2)]
        kept = await direct.send("gardé")
        # What the TTL index does once the undelivered lifetime is over.
        await server.store.messages.collection.delete_many(
            {"conversation": direct.id, "seq": {"$lte": lost[-1].seq}}
        )
        async with Client.load(tmp_path / "R003.keystore", PASSPHRASE) as again:
            expired = await again.next_event()
            assert expired == ExpiredMessages(direct.id, first.seq + 1, lost[-1].seq)
            message = await again.next_message()
            assert (message.body, message.seq) == ("gardé", kept.seq)
            assert not again.failures
