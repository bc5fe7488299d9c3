"""Hypothesis: no sequence of allowed membership changes breaks the second-adult rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from moderation import (
    Conversation,
    ConversationKind,
    Reason,
    check_conversation,
    may_add_member,
    may_remove_member,
    may_start,
    missing_second_adults,
)
from moderation.policy import PARTICIPANT_ROLES
from storage.models import Person, Role
from tests.moderation.cast import DIRECTOR, EVERYONE, MUM5A, NOW, P5A, P5A2, T5A, T5A2, view

PEOPLE = [p for p in EVERYONE if p.role in PARTICIPANT_ROLES and p.left_at is None]
WORLD = view()
SEEDS = [  # valid starting points with pupils and adults, so the property bites
    (T5A, [T5A2, P5A, P5A2], ConversationKind.CLASS),
    (T5A, [DIRECTOR, P5A, MUM5A], ConversationKind.GROUP),
    (P5A, [T5A, T5A2], ConversationKind.GROUP),
]
Change = tuple[str, Person, Person]

person = st.sampled_from(PEOPLE)
start = st.one_of(
    st.sampled_from(SEEDS),
    st.tuples(person, st.lists(person, max_size=5), st.sampled_from(list(ConversationKind))),
)
changes = st.lists(st.tuples(st.sampled_from(["add", "remove"]), person, person), max_size=40)
# A state reached by allowed changes may lose its shape (a direct left by one, a
# class whose owner left) but never its contact or second-adult guarantees.
SHAPE_ONLY = {None, Reason.INVALID_MEMBERS, Reason.KIND_NOT_ALLOWED}


def _rule_holds(conversation: Conversation) -> bool:
    roles = {m.role for m in conversation.members}
    if Role.PUPIL not in roles or roles == {Role.PUPIL}:
        return True
    return missing_second_adults(WORLD, conversation, NOW) == []


def _created(initiator: Person, members: list[Person], kind: ConversationKind) -> Conversation:
    others = {m.id: m for m in members if m.id != initiator.id}
    owners = frozenset() if kind == ConversationKind.DIRECT else frozenset({initiator.id})
    return Conversation(kind, (initiator, *others.values()), owners)


def test_seeds_are_valid() -> None:
    for initiator, members, kind in SEEDS:
        assert may_start(WORLD, initiator, members, kind, NOW).allowed


@settings(max_examples=400, deadline=None)
@given(start=start, changes=changes)
def test_second_adult_rule_cannot_be_bypassed(
    start: tuple[Person, list[Person], ConversationKind], changes: list[Change]
) -> None:
    initiator, members, kind = start
    if not may_start(WORLD, initiator, members, kind, NOW):
        return
    state = _created(initiator, members, kind)
    assert _rule_holds(state)
    for op, actor, target in changes:
        if op == "add" and may_add_member(WORLD, actor, state, target, NOW):
            state = state.with_member(target)
        elif op == "remove" and may_remove_member(WORLD, actor, state, target.id, NOW):
            state = state.without_member(target.id)
        trace = (op, actor.id, target.id, [m.id for m in state.members])
        assert _rule_holds(state), trace
        assert check_conversation(WORLD, state, NOW).reason in SHAPE_ONLY, trace
