"""Conversations without a server: sends built by client.outbound are fed, as the
server would deliver them, to client.inbound on the other devices (a fake link)."""

from __future__ import annotations

import pytest

from client.chat import format_event, parse_group
from client.conversations import ConversationInfo
from client.errors import ClientError, KeystoreError
from client.http import Person
from client.inbound import apply_event, open_deliver
from client.messages import ExpiredMessages, MembershipChange
from client.outbound import build_send
from client.state import DeviceState
from crypto import DeviceKeys, InvalidMessage
from protocol import DeliverFrame, EventFrame, MembershipEvent, SendFrame

NOW = 1_790_000_000


def device(device_id: str, person_id: str) -> DeviceState:
    return DeviceState("http://127.0.0.1:1", device_id, person_id, DeviceKeys.generate(NOW, 4))


def link(sender: DeviceState, *receivers: DeviceState) -> None:
    """What client.recipients does: sessions from the receivers' bundles."""
    for receiver in receivers:
        key_id = receiver.keys.one_time_prekeys[0].key_id
        sender.book.start(sender.keys, receiver.device_id, receiver.keys.bundle(key_id))


class Wire:
    """The server's part, reduced to sequence numbers and per-device views."""

    def __init__(self) -> None:
        self.seq = 0

    def deliver(self, sender: DeviceState, frame: SendFrame, to: str) -> DeliverFrame:
        self.seq += 1
        group = frame.group is not None and to in frame.group.device_ids
        if group:
            assert frame.group is not None
            ciphertext = frame.group.ciphertext
        else:
            ciphertext = next(e.ciphertext for e in frame.envelopes if e.device_id == to)
        return DeliverFrame(
            envelope_id=f"{frame.conversation}:{self.seq}",
            message_id=f"m{self.seq}",
            conversation=frame.conversation,
            seq=self.seq,
            sender_device=sender.device_id,
            sender_person=sender.person_id,
            ciphertext=ciphertext,
            group=group,
            ts=NOW * 1000,
            commitment=frame.commitment,
        )

    def event(
        self, conversation: str, action: str, persons: list[str], members: list[str]
    ) -> EventFrame:
        self.seq += 1
        return EventFrame(
            envelope_id=f"{conversation}:{self.seq}",
            conversation=conversation,
            seq=self.seq,
            ts=NOW * 1000,
            event=MembershipEvent(action=action, persons=persons, by=members[0], members=members),
        )


def group_info(members: tuple[str, ...]) -> ConversationInfo:
    return ConversationInfo("c_grp", "group", "5eB", members, members[:1])


def test_direct_send_names_the_addressee_for_our_other_devices() -> None:
    phone, pc, parent = device("d_phone", "p_t"), device("d_pc", "p_t"), device("d_par", "p_p")
    link(phone, pc, parent)
    info = ConversationInfo("c_dir", "direct", "", ("p_t", "p_p"), ("p_t", "p_p"))
    (frame,) = build_send(phone, info, ["d_par", "d_pc"], "Bonjour", "x1")
    assert frame.group is None and {e.device_id for e in frame.envelopes} == {"d_par", "d_pc"}
    wire = Wire()
    for receiver in (parent, pc):
        opened = open_deliver(receiver, wire.deliver(phone, frame, receiver.device_id))
        assert opened is not None
        assert (opened.content.text, opened.content.to) == ("Bonjour", "p_p")


def test_group_distribution_comes_first_and_events_rotate() -> None:
    teacher, sophie, nadia = device("d_t", "p_t"), device("d_s", "p_s"), device("d_n", "p_n")
    link(teacher, sophie, nadia)
    wire = Wire()
    info = group_info(("p_t", "p_s", "p_n"))
    frames = build_send(teacher, info, ["d_s", "d_n"], "Réunion", "g1")
    assert [f.client_msg_id for f in frames] == ["g1.k", "g1"]
    assert frames[0].group is None and frames[1].group is not None
    for receiver in (sophie, nadia):
        assert open_deliver(receiver, wire.deliver(teacher, frames[0], receiver.device_id)) is None
        opened = open_deliver(receiver, wire.deliver(teacher, frames[1], receiver.device_id))
        assert opened is not None and opened.content.text == "Réunion"
    # Same members: no new distribution.
    assert len(build_send(teacher, info, ["d_s", "d_n"], "Rappel", "g2")) == 1

    teacher.conversations[info.id] = info
    removal = wire.event(info.id, "removed", ["p_n"], ["p_t", "p_s"])
    change = apply_event(teacher, removal)
    assert change == MembershipChange(
        info.id, removal.seq, "removed", ("p_n",), "p_t", ("p_t", "p_s"), NOW * 1000
    )
    assert teacher.conversations[info.id].members == ("p_t", "p_s")
    assert teacher.groups.members(info.id) == frozenset()  # rotated
    apply_event(nadia, removal)
    assert nadia.groups.receiver(info.id, "d_t") is None  # she forgot the conversation's keys
    later = build_send(teacher, teacher.conversations[info.id], ["d_s"], "Sans Nadia", "g3")
    assert len(later) == 2 and later[1].group is not None
    assert later[1].group.device_ids == ["d_s"]
    with pytest.raises(InvalidMessage):
        open_deliver(nadia, wire.deliver(teacher, later[1], "d_s"))
    for frame in later:
        opened = open_deliver(sophie, wire.deliver(teacher, frame, "d_s"))
    assert opened is not None and opened.content.text == "Sans Nadia"


def test_a_distribution_for_another_conversation_is_refused() -> None:
    teacher, sophie = device("d_t", "p_t"), device("d_s", "p_s")
    link(teacher, sophie)
    frames = build_send(teacher, group_info(("p_t", "p_s")), ["d_s"], "x", "k1")
    moved = frames[0].model_copy(update={"conversation": "c_other"})
    before = sophie.groups.to_dict()
    with pytest.raises(InvalidMessage):
        open_deliver(sophie, Wire().deliver(teacher, moved, "d_s"))
    assert sophie.groups.to_dict() == before
    unfranked = frames[1].model_copy(update={"commitment": None})
    with pytest.raises(InvalidMessage):
        open_deliver(sophie, Wire().deliver(teacher, unfranked, "d_s"))


def test_conversation_info_reads_the_server_answer_and_round_trips() -> None:
    body = {
        "id": "c_1", "kind": "announcement", "title": "Rentrée", "members": ["a", "b"],
        "owners": ["a"], "seq": 7, "acked_seq": 5, "unread": 2, "uai": "0750001A",
    }  # fmt: skip
    info = ConversationInfo.from_json(body)
    assert (info.seq, info.acked_seq, info.unread, info.pairwise) == (7, 5, 2, False)
    assert info.other("a") is None
    assert ConversationInfo.from_json(info.to_dict()) == ConversationInfo(
        "c_1", "announcement", "Rentrée", ("a", "b"), ("a",), 7
    )
    assert info.with_members(("b",), 9).owners == ()
    for bad in ({}, {**body, "kind": "chatroom"}, {**body, "members": 3}):
        with pytest.raises(ClientError):
            ConversationInfo.from_json(bad)


def test_state_keeps_conversations_and_reads_older_keystores() -> None:
    state = device("d", "p")
    state.conversations["c"] = group_info(("p", "q"))
    state.mark_seen("c:4", "c", 4)
    state.mark_seen("c:3", "c", 3)
    restored = DeviceState.from_dict(state.to_dict())
    assert restored.conversations == {"c": group_info(("p", "q"))}
    assert restored.received == {"c": 4}
    older = state.to_dict()
    del older["conversations"], older["received"]
    assert DeviceState.from_dict(older).conversations == {}
    with pytest.raises(KeystoreError, match="version"):
        DeviceState.from_dict({**older, "version": 99})


def test_chat_group_command_and_event_lines() -> None:
    people = [Person("p1", "Claire Durand", "teacher"), Person("p2", "Sophie Bernard", "parent")]
    assert parse_group("Sortie au musée 1,p2", people) == ("Sortie au musée", people)
    assert parse_group("Sortie 1,9", people) is None
    assert parse_group("1,2", people) is None
    names = {"p1": "Claire Durand", "p2": "Sophie Bernard"}
    change = MembershipChange("c", 3, "removed", ("p2",), "p1", ("p1",), 0)
    assert format_event(change, names) == "* c: removed Sophie Bernard by Claire Durand"
    assert "2 message(s)" in format_event(ExpiredMessages("c", 4, 5), names)
