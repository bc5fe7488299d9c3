"""Pure session, sender-key, content and state bookkeeping (no server, no sockets)."""

from __future__ import annotations

from datetime import UTC

import pytest

from client.chat import Command, format_message, parse_command, resolve_recipient
from client.content import SenderKeyContent, TextContent, decode_body, encode_body
from client.groups import GroupBook
from client.http import Contact, DeviceInfo, Person
from client.messages import FrankingEvidence, Message
from client.sessions import MAX_SESSIONS_PER_DEVICE, SessionBook
from client.state import MAX_SEEN, DeviceState
from crypto import DeviceKeys, InvalidMessage, SessionState

NOW = 1_790_000_000


class Device:
    """One side: its keys and its session book, as the client holds them."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.keys = DeviceKeys.generate(NOW, 3)
        self.book = SessionBook()

    def start_with(self, peer: Device) -> None:
        self.book.start(
            self.keys, peer.device_id, peer.keys.bundle(peer.keys.one_time_prekeys[0].key_id)
        )

    def receive(self, sender: Device, envelope: bytes) -> bytes:
        plaintext, self.keys = self.book.decrypt(self.keys, sender.device_id, envelope)
        return plaintext


def test_first_contact_then_ratchet_both_ways() -> None:
    alice, bob = Device("a"), Device("b")
    alice.start_with(bob)
    first = alice.book.encrypt("b", b"bonjour")
    assert bob.receive(alice, first) == b"bonjour"
    assert len(bob.keys.one_time_prekeys) == 2  # the used one-time prekey is deleted
    assert bob.book.identity("a") == alice.keys.identity.public
    assert alice.receive(bob, bob.book.encrypt("a", b"salut")) == b"salut"
    assert bob.receive(alice, alice.book.encrypt("b", b"encore")) == b"encore"


def test_replayed_prekey_message_does_not_open_a_second_session() -> None:
    alice, bob = Device("a"), Device("b")
    alice.start_with(bob)
    first = alice.book.encrypt("b", b"bonjour")
    bob.receive(alice, first)
    with pytest.raises(InvalidMessage):
        bob.receive(alice, first)
    assert len(bob.book.to_dict()["sessions"]["a"]) == 1


def test_simultaneous_initiation_converges() -> None:
    alice, bob = Device("a"), Device("b")
    alice.start_with(bob)
    bob.start_with(alice)
    from_alice = alice.book.encrypt("b", b"a1")
    from_bob = bob.book.encrypt("a", b"b1")
    assert bob.receive(alice, from_alice) == b"a1"
    assert alice.receive(bob, from_bob) == b"b1"
    for i in range(3):
        assert bob.receive(alice, alice.book.encrypt("b", f"a{i}".encode())) == f"a{i}".encode()
        assert alice.receive(bob, bob.book.encrypt("a", f"b{i}".encode())) == f"b{i}".encode()


def test_a_device_id_cannot_change_its_identity_key() -> None:
    alice, bob, mallory = Device("a"), Device("b"), Device("a")
    alice.start_with(bob)
    bob.receive(alice, alice.book.encrypt("b", b"hello"))
    mallory.start_with(bob)
    with pytest.raises(InvalidMessage):
        bob.receive(mallory, mallory.book.encrypt("b", b"I am a"))
    with pytest.raises(InvalidMessage):
        bob.book.start(bob.keys, "a", mallory.keys.bundle())


def test_garbage_changes_nothing_and_sessions_are_bounded() -> None:
    alice, bob = Device("a"), Device("b")
    with pytest.raises(InvalidMessage):
        bob.receive(alice, b"\x01\x02garbage")
    assert not bob.book.has_session("a")
    for _ in range(MAX_SESSIONS_PER_DEVICE + 2):
        alice.book.start(alice.keys, "b", bob.keys.bundle())
    assert len(alice.book.to_dict()["sessions"]["b"]) == MAX_SESSIONS_PER_DEVICE


def test_session_book_round_trip() -> None:
    alice, bob = Device("a"), Device("b")
    alice.start_with(bob)
    bob.receive(alice, alice.book.encrypt("b", b"1"))
    restored = SessionBook.from_dict(bob.book.to_dict())
    assert restored.to_dict() == bob.book.to_dict()
    bob.book = restored
    assert bob.receive(alice, alice.book.encrypt("b", b"2")) == b"2"
    with pytest.raises(InvalidMessage):
        SessionBook.from_dict({"sessions": {"x": [{}]}, "identities": {}})


def test_group_book_rotates_only_on_membership_change() -> None:
    sender_book, receiver = GroupBook(), GroupBook()
    first, new = sender_book.sender("c", frozenset({"b", "c"}))
    assert new
    again, new = sender_book.sender("c", frozenset({"b", "c"}))
    assert again is first and not new
    receiver.add_distribution("c", "a", first.distribution())
    message = first.encrypt(b"one")
    assert receiver.knows_key("c", "a", message)
    assert receiver.decrypt("c", "a", message) == b"one"

    removed_state = GroupBook.from_dict(receiver.to_dict())  # what "c" still holds
    rotated, new = sender_book.sender("c", frozenset({"b"}))
    assert new and rotated.key_id != first.key_id
    distribution = rotated.distribution()  # taken before the first encryption, as the client does
    later = rotated.encrypt(b"after removal")
    assert not removed_state.knows_key("c", "a", later)
    with pytest.raises(InvalidMessage):
        removed_state.decrypt("c", "a", later)
    receiver.add_distribution("c", "a", distribution)
    assert receiver.decrypt("c", "a", later) == b"after removal"
    with pytest.raises(InvalidMessage):
        receiver.decrypt("c", "a", later)  # replay
    with pytest.raises(InvalidMessage):
        receiver.decrypt("other", "a", later)


def test_group_book_round_trip() -> None:
    book = GroupBook()
    sender, _ = book.sender("c", frozenset({"x"}))
    book.add_distribution("c", "y", sender.distribution())
    restored = GroupBook.from_dict(book.to_dict())
    assert restored.to_dict() == book.to_dict()
    assert restored.members("c") == frozenset({"x"})


def test_content_round_trip_and_rejects() -> None:
    for content in (
        TextContent("Bonjour é ✓", "p1"),
        TextContent("groupe"),
        SenderKeyContent("conv", b"\x01" * 74),
    ):
        assert decode_body(encode_body(content)) == content
    for bad in (b"\xff", b"[]", b'{"t":"image"}', b'{"t":"text","text":1}', b'{"t":"sender_key"}'):
        with pytest.raises(InvalidMessage):
            decode_body(bad)


def test_seen_is_bounded_oldest_first() -> None:
    device = DeviceState("u", "d", "p", DeviceKeys.generate(NOW, 0))
    for i in range(MAX_SEEN + 10):
        device.mark_seen(f"e{i}")
    assert len(device.seen) == MAX_SEEN and "e9" not in device.seen and "e10" in device.seen


def test_contact_flags_email_bridge_devices() -> None:
    key = bytes(32)
    app = DeviceInfo("d1", "app", key, None)
    bridge = DeviceInfo("d2", "email-bridge", key, None)
    assert not Contact("p", (app,)).has_email_bridge
    assert Contact("p", (app, bridge)).has_email_bridge
    assert not bridge.end_to_end


def test_chat_commands_and_formatting() -> None:
    assert parse_command("  \n") is None
    assert parse_command("Bonjour\n") == Command("say", "Bonjour")
    assert parse_command("/to 2") == Command("to", "2")
    assert parse_command("/quit") == Command("quit")
    assert parse_command("/group Sortie 1,p2") == Command("group", "Sortie 1,p2")
    assert parse_command("/nope") == Command("unknown", "nope")
    people = [Person("p1", "Claire Durand", "teacher"), Person("p2", "Sophie Bernard", "parent")]
    assert resolve_recipient("2", people) == people[1]
    assert resolve_recipient("p1", people) == people[0]
    assert resolve_recipient("9", people) is None
    evidence = FrankingEvidence(b"", bytes(32), bytes(32), None, "d", "c", 0)
    message = Message(
        envelope_id="c:2",
        message_id="m",
        conversation="c",
        seq=2,
        sender_person="p1",
        sender_device="d",
        sender_kind="email-bridge",
        from_me=False,
        to_person="p2",
        body="Salut",
        ts=1_790_000_000_000,
        group=False,
        evidence=evidence,
        ciphertext=b"",
    )
    line = format_message(message, {"p1": "Claire Durand"}, UTC)
    assert line.startswith("[") and "Claire Durand: Salut" in line and "email bridge" in line
    with pytest.raises(Exception, match="no server stamp"):
        evidence.report()


def test_session_state_type_is_exported() -> None:
    assert SessionState.PENDING.value
