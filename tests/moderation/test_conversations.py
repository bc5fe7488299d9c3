"""Conversation creation and membership changes; the second-adult rule."""

from __future__ import annotations

import pytest

from moderation import (
    ContactPolicy,
    Conversation,
    ConversationKind,
    ModerationUsageError,
    PupilPeers,
    Reason,
    check_conversation,
    may_add_member,
    may_remove_member,
    may_start,
    missing_second_adults,
    second_adults,
)
from storage.models import Person
from tests.moderation.cast import (
    CPE,
    DAD5A,
    DIRECTOR,
    DPO,
    LEFT,
    MUM5A,
    NOW,
    P5A,
    P5A2,
    P5B,
    PARENT5B,
    STAFF,
    T5A,
    T5A2,
    T5B,
    TB,
    partners,
    view,
)

D, G, C, N = (
    ConversationKind.DIRECT,
    ConversationKind.GROUP,
    ConversationKind.CLASS,
    ConversationKind.ANNOUNCEMENT,
)

START: list[tuple[str, Person, list[Person], ConversationKind, Reason | None]] = [
    ("two teachers, direct", T5A, [T5B], D, None),
    ("teacher and own pupil alone", T5A, [P5A], D, Reason.SECOND_ADULT_REQUIRED),
    ("teacher, pupil, co-teacher", T5A, [P5A, T5A2], G, None),
    ("teacher, pupil, director", T5A, [P5A, DIRECTOR], G, None),
    ("teacher, pupil, designated staff", T5A, [P5A, CPE], G, None),
    ("teacher, pupil, undesignated staff", T5A, [P5A, STAFF], G, Reason.SECOND_ADULT_REQUIRED),
    ("teacher, pupil, teacher of another class", T5A, [P5A, T5B], G, Reason.SECOND_ADULT_REQUIRED),
    ("staff and pupil alone", STAFF, [P5B], D, Reason.SECOND_ADULT_REQUIRED),
    ("pupil, own teachers", P5A, [T5A, T5A2], G, None),
    ("pupil asks a teacher alone", P5A, [T5A], D, Reason.SECOND_ADULT_REQUIRED),
    ("pupils direct", P5A, [P5A2], D, Reason.TEACHER_CHANNEL_REQUIRED),
    ("pupils' own group", P5A, [P5A2, T5A, T5A2], G, Reason.TEACHER_CHANNEL_REQUIRED),
    ("teacher's channel of pupils", T5A, [P5A, P5A2, T5A2], C, None),
    ("channel with a pupil of another class", T5A, [P5A, P5B, T5A2], C, Reason.CONTACT_NOT_ALLOWED),
    ("director's channel across classes", DIRECTOR, [P5A, P5B, T5A, T5B], G, None),
    ("parent, child's teacher, direct", MUM5A, [T5A], D, None),
    ("parent, child, two teachers", MUM5A, [P5A, T5A, T5A2], G, Reason.CONTACT_NOT_ALLOWED),
    ("teacher, parent, child, co-teacher", T5A, [MUM5A, P5A, T5A2], G, None),
    ("teacher, two parents of one child", T5A, [MUM5A, DAD5A], G, None),
    ("parents of one child", MUM5A, [DAD5A], D, Reason.CONTACT_NOT_ALLOWED),
    ("parent creates a class channel", MUM5A, [T5A], C, Reason.KIND_NOT_ALLOWED),
    ("pupil makes an announcement", P5A, [T5A, T5A2], N, Reason.KIND_NOT_ALLOWED),
    ("director's announcement to parents", DIRECTOR, [MUM5A, PARENT5B], N, None),
    ("announcement to pupils, one adult", DIRECTOR, [P5A, P5B], N, Reason.SECOND_ADULT_REQUIRED),
    ("direct of three", T5A, [T5B, STAFF], D, Reason.INVALID_MEMBERS),
    ("DPO as member", DIRECTOR, [DPO], G, Reason.NOT_A_PARTICIPANT),
    ("DPO initiates", DPO, [DIRECTOR], D, Reason.NOT_A_PARTICIPANT),
    ("member who left", DIRECTOR, [LEFT], G, Reason.PERSON_LEFT),
    ("another school", T5A, [TB], D, Reason.CROSS_SCHOOL),
    ("group of one", T5A, [], G, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "initiator", "members", "kind", "expected"), START)
def test_may_start(
    name: str,
    initiator: Person,
    members: list[Person],
    kind: ConversationKind,
    expected: Reason | None,
) -> None:
    assert may_start(view(), initiator, members, kind, NOW).reason == expected, name


def test_partner_teachers_may_talk_but_each_pupil_needs_own_adults() -> None:
    world = partners(partner_roles=["teacher", "director", "staff", "pupil"])
    assert may_start(world, TB, [T5A], D, NOW).allowed
    assert may_start(world, TB, [T5A, P5A], G, NOW).reason == Reason.SECOND_ADULT_REQUIRED
    assert may_start(world, TB, [T5A, T5A2, P5A], G, NOW).allowed


def test_pupil_peers_never() -> None:
    strict = view(ContactPolicy(pupil_peers=PupilPeers.NEVER))
    assert may_start(strict, T5A, [P5A, P5A2, T5A2], C, NOW).reason == Reason.CONTACT_NOT_ALLOWED
    assert may_start(strict, T5A, [P5A, T5A2], C, NOW).allowed


def _channel() -> Conversation:
    return Conversation(C, (T5A, T5A2, P5A, P5A2), frozenset({"t5a"}))


def test_second_adults_are_listed_for_everyone() -> None:
    channel = _channel()
    assert [p.id for p in second_adults(view(), channel, P5A, NOW)] == ["t5a", "t5a2"]
    assert missing_second_adults(view(), channel, NOW) == []
    alone = channel.without_member("t5a2")
    assert {p.id for p in missing_second_adults(view(), alone, NOW)} == {"p5a", "p5a2"}


def test_removals_keep_the_second_adult() -> None:
    channel = _channel()
    assert may_remove_member(view(), T5A2, channel, "t5a2", NOW).reason == (
        Reason.LAST_SECOND_ADULT
    )
    assert may_remove_member(view(), T5A, channel, "t5a2", NOW).reason == (Reason.LAST_SECOND_ADULT)
    assert may_remove_member(view(), P5A, channel, "p5a", NOW).allowed  # a pupil leaves
    assert may_remove_member(view(), T5A, channel, "p5a", NOW).allowed
    assert may_remove_member(view(), P5A, channel, "p5a2", NOW).reason == Reason.NOT_OWNER
    assert may_remove_member(view(), T5B, channel, "p5a", NOW).reason == Reason.NOT_A_MEMBER
    with_director = channel.with_member(DIRECTOR)
    assert may_remove_member(view(), T5A2, with_director, "t5a2", NOW).allowed


def test_the_hosting_owner_cannot_leave_pupils_alone_together() -> None:
    channel = Conversation(C, (T5A, T5A2, DIRECTOR, P5A, P5A2), frozenset({"t5a"}))
    assert may_remove_member(view(), T5A, channel, "t5a", NOW).reason == (
        Reason.TEACHER_CHANNEL_REQUIRED
    )
    co_owned = Conversation(C, channel.members, frozenset({"t5a", "director"}))
    assert may_remove_member(view(), T5A, co_owned, "t5a", NOW).allowed


def test_leaving_everyone_but_pupils_keeps_the_rule() -> None:
    pupils_only = Conversation(G, (P5A, P5A2))
    assert check_conversation(view(), pupils_only, NOW).reason == Reason.TEACHER_CHANNEL_REQUIRED
    assert check_conversation(view(), Conversation(G, (P5A,)), NOW).allowed


def test_additions() -> None:
    teachers = Conversation(G, (T5A, T5A2), frozenset({"t5a"}))
    assert may_add_member(view(), T5A, teachers, P5A, NOW).allowed
    assert may_add_member(view(), T5A2, teachers, P5A, NOW).reason == Reason.NOT_OWNER
    assert may_add_member(view(), P5A, teachers, P5A2, NOW).reason == Reason.NOT_A_MEMBER
    assert may_add_member(view(), T5A, teachers, T5A2, NOW).reason == Reason.INVALID_MEMBERS
    assert may_add_member(view(), T5A, teachers, P5B, NOW).reason == Reason.CONTACT_NOT_ALLOWED
    alone = Conversation(G, (T5A,), frozenset({"t5a"}))
    assert may_add_member(view(), T5A, alone, P5A, NOW).reason == Reason.SECOND_ADULT_REQUIRED
    direct = Conversation(D, (T5A, T5B))
    assert may_add_member(view(), T5A, direct, STAFF, NOW).reason == Reason.KIND_NOT_ALLOWED


def test_a_second_adult_who_leaves_the_school_no_longer_counts() -> None:
    channel = Conversation(C, (T5A, LEFT, P5A), frozenset({"t5a"}))
    assert check_conversation(view(), channel, NOW).reason == Reason.PERSON_LEFT
    assert [p.id for p in second_adults(view(), channel, P5A, NOW)] == ["t5a"]
    assert may_remove_member(view(), T5A, channel, "left", NOW).allowed


def test_invalid_states_are_our_bug() -> None:
    with pytest.raises(ModerationUsageError):
        Conversation(G, (T5A, T5A))
    with pytest.raises(ModerationUsageError):
        Conversation(G, (T5A,), frozenset({"t5b"}))
