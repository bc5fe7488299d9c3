"""The bridge's device operations: create a bridge device, open its mail, reply, acknowledge.

The I/O shell around :mod:`server.bridge.device`. A bridge device's state is
loaded, changed in memory and written back with an optimistic lock (the
``version`` of its record): two nodes, or the worker and a page reply, never
both advance the same ratchet; the loser starts again from the stored state.
Replies go through the node's moderation gate and sequencer like any
device's send, franked and stamped, and reach app devices by the usual
delivery (DESIGN.md, "SMTP bridge").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from crypto import DeviceKeys, InvalidMessage, PreKeyBundle
from crypto.keys import OneTimePreKey
from server.bridge.device import (
    BridgeState,
    Opened,
    Outgoing,
    acknowledgement_message,
    apply_event,
    build_reply,
    open_message,
)
from server.bridge.errors import ReplyRefused, StateConflict
from server.bridge.keyring import BridgeKeyring
from server.fanout import millis
from server.moderation_gate import SendVerdict
from server.services import Services
from storage.bridge import BridgeDevice, InboxEntry
from storage.conversations import Conversation, ConversationKind
from storage.ids import derived_id
from storage.messages import NewMessage, StoredMessage
from storage.prekeys import OneTimePrekey, SignedPrekey
from storage.receipts import Acknowledgement

log = logging.getLogger(__name__)
PREKEYS_LOW = 20
PREKEYS_BATCH = 80
ATTEMPTS = 5


@dataclass(frozen=True)
class Kept:
    """A message of the parent's mailbox, opened."""

    seq: int
    sender_person: str
    created_at: datetime
    text: str
    message_id: str


def _record(device_id: str) -> str:
    return f"bridge_devices:{device_id}"


def _inbox_record(device_id: str, conversation: str, seq: int) -> str:
    return f"bridge_inbox:{device_id}:{conversation}:{seq}"


class BridgeDevices:
    """Bridge devices of one node.

    Args:
        services: the node's services (store, clock, sequencer, franking).
        keyring: the bridge keys.
    """

    def __init__(self, services: Services, keyring: BridgeKeyring) -> None:
        self.s = services
        self.store = services.store
        self.keyring = keyring

    # --- state ----------------------------------------------------------------

    def _open_state(self, device: BridgeDevice) -> BridgeState:
        try:
            return BridgeState.from_bytes(
                self.keyring.open(device.sealed, _record(device.device_id))
            )
        except InvalidMessage:
            raise StateConflict("malformed bridge state") from None

    async def _save(self, device: BridgeDevice, state: BridgeState) -> None:
        sealed = self.keyring.seal(state.to_bytes(), _record(device.device_id))
        if not await self.store.bridge.save_state(
            device.device_id, sealed, device.version, device.email, self.s.clock.now()
        ):
            raise StateConflict(device.device_id)

    async def create(self, person_id: str, uai: str, email: str) -> tuple[str, bool]:
        """Create (or find) a person's ``email-bridge`` device and publish its prekeys."""
        existing = await self.store.bridge.device_of(person_id)
        if existing is not None:
            return existing.device_id, False
        now = self.s.clock.now()
        keys = DeviceKeys.generate(int(now.timestamp()))
        state = BridgeState(keys)
        # The record name needs the device id, which the insert chooses: seal a
        # placeholder first, then the real state under the final id.
        device_id, created = await self.store.bridge.create_device(
            person_id, uai, email, keys.identity.public, b"", now
        )
        if not created:
            return device_id, False
        device = BridgeDevice(device_id, person_id, uai, email, b"", 1)
        await self._save(device, state)
        await self._publish(device_id, keys, keys.one_time_prekeys, signed=True)
        log.info("bridge device %s created for person %s", device_id, person_id)
        return device_id, True

    async def _publish(
        self, device_id: str, keys: DeviceKeys, one_time: tuple[OneTimePreKey, ...], signed: bool
    ) -> None:
        spk = keys.signed_prekey
        await self.store.prekeys.publish(
            device_id,
            SignedPrekey(spk.key_id, spk.key_pair.public, spk.signature) if signed else None,
            [OneTimePrekey(k.key_id, k.key_pair.public) for k in keys.one_time_prekeys
             if k in one_time],
            self.s.clock.now(),
        )  # fmt: skip

    # --- receiving ------------------------------------------------------------

    async def process(self, device_id: str, page: int) -> int:
        """Open what the device has not acknowledged; keep it sealed and queue emails.

        Returns:
            How many messages were opened.

        Raises:
            StateConflict: the state changed meanwhile (nothing acknowledged; retry).
        """
        device = await self.store.bridge.device(device_id)
        if device is None:
            return 0
        state = self._open_state(device)
        heads = await self.s.reads.heads(device.person_id)
        cursors = await self.store.cursors.of_device(device_id)
        acks: dict[str, int] = {}
        opened = 0
        for conversation, head in heads.items():
            after = cursors.get(conversation, 0)
            if head <= after:
                continue
            upto = min(head, after + page)  # a page of seqs (storage.messages.for_device)
            acks[conversation] = upto  # read through: nothing else there is for this device
            for message in await self.store.messages.for_device(
                device_id, conversation, after, upto
            ):
                if message.event is not None:
                    apply_event(state, conversation, message.event["members"], device.person_id)
                    continue
                try:
                    result = open_message(state, message)
                except InvalidMessage:
                    log.warning("bridge device %s: %s:%s does not open", device_id,
                                conversation, message.seq)  # fmt: skip
                    continue
                if result is not None:
                    await self._keep(device, message, result)
                    opened += 1
        added: tuple[OneTimePreKey, ...] = ()
        if await self.store.prekeys.count(device_id) < PREKEYS_LOW:
            before = state.keys.one_time_prekeys
            state.keys = state.keys.with_new_one_time_prekeys(PREKEYS_BATCH)
            added = tuple(k for k in state.keys.one_time_prekeys if k not in before)
        if acks or added:
            await self._save(device, state)
        if added:
            await self._publish(device_id, state.keys, added, signed=False)
        await self.store.cursors.advance(device_id, acks, self.s.clock.now())
        return opened

    async def _keep(self, device: BridgeDevice, message: StoredMessage, opened: Opened) -> None:
        record = _inbox_record(device.device_id, message.conversation, message.seq)
        body = json.dumps({"text": opened.text, "message_id": message.message_id}).encode()
        lifetime = timedelta(days=self.s.settings.undelivered_days)
        await self.store.bridge.keep(
            device.device_id, message.conversation, message.seq, message.sender_person,
            message.created_at, self.keyring.seal(body, record), message.created_at + lifetime,
        )  # fmt: skip
        await self._queue(device, message.conversation, message.seq)

    async def _queue(self, device: BridgeDevice, conversation: str, seq: int) -> None:
        now = self.s.clock.now()
        send_after = now + timedelta(seconds=self.s.settings.bridge_batch_seconds)
        if await self.store.bridge.queue_notification(
            device.device_id, device.person_id, device.uai, device.email, conversation, seq,
            now, send_after,
        ):  # fmt: skip
            self.s.metrics.smtp_messages.labels("queued").inc()

    async def mailbox(
        self, device_id: str, conversation: str, seqs: tuple[int, ...] = (), limit: int = 50
    ) -> list[Kept]:
        """The parent's kept messages of a conversation, opened, oldest first."""
        entries = await self.store.bridge.mailbox(device_id, conversation, limit, seqs)
        return [self._unseal(device_id, e) for e in entries]

    def _unseal(self, device_id: str, entry: InboxEntry) -> Kept:
        body = json.loads(
            self.keyring.open(entry.sealed, _inbox_record(device_id, entry.conversation, entry.seq))
        )
        return Kept(entry.seq, entry.sender_person, entry.created_at, str(body["text"]),
                    str(body["message_id"]))  # fmt: skip

    # --- replying -------------------------------------------------------------

    def may_reply(self, conversation: Conversation, person_id: str) -> bool:
        if conversation.archived_at is not None or person_id not in conversation.members:
            return False
        return (
            conversation.kind != ConversationKind.ANNOUNCEMENT or person_id in conversation.owners
        )

    async def reply(self, device_id: str, conversation_id: str, text: str, client_id: str) -> int:
        """Post ``text`` into the conversation as the bridge device.

        Returns:
            The seq of the reply.

        Raises:
            ReplyRefused: empty, not a member, a one-way announcement, no recipient.
        """
        text = text.strip()
        if not text:
            raise ReplyRefused("the reply is empty")
        for _ in range(ATTEMPTS):
            try:
                return await self._reply_once(device_id, conversation_id, text, client_id)
            except StateConflict:
                continue
        raise ReplyRefused("the reply could not be posted; try again")

    async def _reply_once(
        self, device_id: str, conversation_id: str, text: str, client_id: str
    ) -> int:
        device = await self.store.bridge.device(device_id)
        conversation = await self.store.conversations.get(conversation_id)
        if device is None or conversation is None:
            raise ReplyRefused("this conversation is closed")
        if not self.may_reply(conversation, device.person_id):
            raise ReplyRefused("you cannot reply in this conversation")
        # The same rules as any device's send (docs/moderation.md): refusals,
        # rates, blocks (dropped copies) and quiet hours (silent copies).
        verdict = await self.s.gate.check_send(device.person_id, conversation)
        if verdict.code is not None:
            raise ReplyRefused(verdict.message)
        state = self._open_state(device)
        devices = [
            d.id for d in await self.store.enrolment.devices_of_people(list(conversation.members))
            if d.id != device_id
        ]  # fmt: skip
        reachable = [d for d in devices if await self._session(state, d)]
        if not reachable:
            raise ReplyRefused("nobody in this conversation can receive messages yet")
        direct_to = None
        if conversation.kind == ConversationKind.DIRECT:
            direct_to = next((m for m in conversation.members if m != device.person_id), None)
        sends = build_reply(state, conversation.id, direct_to, reachable, text, client_id)
        await self._save(device, state)
        owners = await self.s.lookups.device_owners(reachable)
        seq = 0
        for send in sends:
            seq = await self._submit(device, conversation.id, send, verdict, owners)
        await self._keep_own(device, conversation.id, seq, text, sends[-1].client_msg_id)
        return seq

    async def _keep_own(
        self, device: BridgeDevice, conversation: str, seq: int, text: str, client_id: str
    ) -> None:
        """The parent's own reply joins their mailbox, so the page shows the whole exchange."""
        now = self.s.clock.now()
        message_id = derived_id("m", device.device_id, client_id)
        body = json.dumps({"text": text, "message_id": message_id}).encode()
        sealed = self.keyring.seal(body, _inbox_record(device.device_id, conversation, seq))
        lifetime = timedelta(days=self.s.settings.undelivered_days)
        await self.store.bridge.keep(
            device.device_id, conversation, seq, device.person_id, now, sealed, now + lifetime
        )

    async def _session(self, state: BridgeState, device_id: str) -> bool:
        if state.book.has_session(device_id):
            return True
        peer = await self.store.enrolment.device(device_id)
        signed = await self.store.prekeys.signed_prekey(device_id)
        if peer is None or signed is None:
            return False
        one_time = await self.store.prekeys.take_one_time(device_id)
        try:
            bundle = PreKeyBundle(
                identity_key=peer.identity_key,
                signed_prekey_id=signed.key_id,
                signed_prekey=signed.key,
                signed_prekey_signature=signed.signature,
                one_time_prekey_id=one_time.key_id if one_time else None,
                one_time_prekey=one_time.key if one_time else None,
            )
            state.book.start(state.keys, device_id, bundle)
        except InvalidMessage:
            log.warning("bridge: device %s has an invalid prekey bundle", device_id)
            return False
        return True

    async def _submit(
        self,
        device: BridgeDevice,
        conversation: str,
        send: Outgoing,
        verdict: SendVerdict,
        owners: Mapping[str, str],
    ) -> int:
        now = self.s.clock.now()
        stamp = self.s.franking.stamp(send.commitment, device.device_id, conversation, millis(now))
        message = verdict.applied(
            NewMessage(
                message_id=derived_id("m", device.device_id, send.client_msg_id),
                conversation=conversation,
                sender_device=device.device_id,
                sender_person=device.person_id,
                created_at=now,
                pairwise=send.pairwise,
                group_ciphertext=send.group,
                group_devices=send.group_devices,
                commitment=send.commitment,
                stamp=stamp,
            ),
            owners,
        )
        result = await self.s.sequencer.submit(message)
        return result.seq

    # --- acknowledging --------------------------------------------------------

    async def acknowledge(self, device_id: str, conversation_id: str, seq: int) -> bool:
        """Sign and record the guardian's acknowledgement of an announcement.

        Returns:
            False if it was already acknowledged.

        Raises:
            ReplyRefused: not an announcement to acknowledge, or no such message.
        """
        device = await self.store.bridge.device(device_id)
        conversation = await self.store.conversations.get(conversation_id)
        if device is None or conversation is None or not conversation.acknowledge:
            raise ReplyRefused("this message does not ask for an acknowledgement")
        kept = await self.mailbox(device_id, conversation_id, seqs=(seq,))
        if not kept:
            raise ReplyRefused("no such message")
        state = self._open_state(device)
        message = acknowledgement_message(
            conversation_id, seq, kept[0].message_id, device.person_id
        )
        ack = Acknowledgement(
            conversation_id, seq, device.person_id, device_id, state.keys.identity.sign(message),
            self.s.clock.now(),
        )  # fmt: skip
        return await self.store.receipts.acknowledge(ack, kept[0].message_id)

    async def acknowledged(self, conversation_id: str, seq: int, person_id: str) -> bool:
        found = await self.store.receipts.acknowledgements(conversation_id, seq)
        return any(a.person_id == person_id for a in found)
