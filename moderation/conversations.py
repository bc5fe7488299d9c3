"""Conversation membership rules and the second-adult rule (issue 5).

Rules (every membership change goes through them; ``server/`` calls
:func:`may_start`, :func:`may_add_member` and :func:`may_remove_member`, and
:func:`check_conversation` on any other change, e.g. after a directory sync):

1. **Participants.** Every member takes part in messaging (no DPO or operator,
   nobody who has left).
2. **Kinds.** ``direct`` has exactly two members and no owner, and never
   grows (create a group instead). ``class`` and ``announcement`` are created
   by a school adult. Only owners add members; anyone may leave; only owners
   remove others.
3. **Contact.** A conversation *hosted* by a school adult (an owner who is a
   teacher, staff or director) needs every member to be reachable by one of its
   hosting owners (:func:`moderation.directory.may_reach`); pupils meet each
   other only there (``pupil_peers = "teacher_channels"``). A conversation
   without a hosting owner needs every pair of members to be reachable.
4. **Second adult** (DESIGN.md, "Moderation"). If a conversation holds a pupil
   and any adult, it holds, for each pupil, at least two *school adults of that
   pupil*: the director, designated adults of the pupil's school
   (``designated_adults``), or teachers of one of the pupil's classes. Members
   are visible to every member, so the second adult is too. A removal or leave
   that would break this is refused with ``last_second_adult``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property

from moderation.directory import (
    DirectoryView,
    is_school_adult,
    may_reach,
    participation,
    require_aware,
)
from moderation.errors import ModerationUsageError
from moderation.policy import PupilPeers
from moderation.reasons import ALLOWED, Decision, Reason
from storage.models import Person, Role

__all__ = [
    "Conversation",
    "ConversationKind",
    "check_conversation",
    "may_add_member",
    "may_remove_member",
    "may_start",
    "missing_second_adults",
    "second_adults",
]


class ConversationKind(StrEnum):
    """The kinds of conversation (DESIGN.md, "Messaging semantics")."""

    DIRECT = "direct"
    GROUP = "group"
    CLASS = "class"
    ANNOUNCEMENT = "announcement"


@dataclass(frozen=True)
class Conversation:
    """The membership state moderation decides on.

    Attributes:
        kind: The kind.
        members: The members as directory people, each once.
        owners: Person ids of the owners, all members.
    """

    kind: ConversationKind
    members: tuple[Person, ...]
    owners: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        ids = [m.id for m in self.members]
        if len(set(ids)) != len(ids) or not self.owners <= set(ids):
            raise ModerationUsageError("members must be unique and owners must be members")

    def member(self, person_id: str) -> Person | None:
        """A member by id.

        Args:
            person_id: The id.

        Returns:
            The member, or ``None``.
        """
        return self._by_id.get(person_id)

    @cached_property
    def _by_id(self) -> dict[str, Person]:
        return {m.id: m for m in self.members}

    def with_member(self, person: Person, owner: bool = False) -> Conversation:
        """This conversation with one more member.

        Args:
            person: The new member.
            owner: Whether they also become an owner.

        Returns:
            The new state.
        """
        owners = self.owners | {person.id} if owner else self.owners
        return Conversation(self.kind, (*self.members, person), owners)

    def without_member(self, person_id: str) -> Conversation:
        """This conversation without one member (nor their ownership).

        Args:
            person_id: Who leaves.

        Returns:
            The new state.
        """
        members = tuple(m for m in self.members if m.id != person_id)
        return Conversation(self.kind, members, self.owners - {person_id})


def _qualifies(view: DirectoryView, pupil: Person, adult: Person, now: datetime) -> bool:
    if adult.uai != pupil.uai or not is_school_adult(adult) or not participation(adult, now):
        return False
    if adult.role == Role.DIRECTOR or adult.id in view.policy(pupil.uai).designated_adults:
        return True
    return adult.role == Role.TEACHER and bool(set(adult.classes) & set(pupil.classes))


def second_adults(
    view: DirectoryView, conversation: Conversation, pupil: Person, now: datetime
) -> list[Person]:
    """The members who count as school adults of ``pupil`` (to show to everyone).

    Args:
        view: Schools, policies and people.
        conversation: The conversation.
        pupil: One of its pupils.
        now: Current time (aware).

    Returns:
        Those members, in member order.
    """
    return [m for m in conversation.members if _qualifies(view, pupil, m, now)]


def _deficit(view: DirectoryView, conversation: Conversation, now: datetime) -> int:
    pupils = [m for m in conversation.members if m.role == Role.PUPIL]
    if not pupils or all(m.role == Role.PUPIL for m in conversation.members):
        return 0
    return sum(max(0, 2 - len(second_adults(view, conversation, p, now))) for p in pupils)


def missing_second_adults(
    view: DirectoryView, conversation: Conversation, now: datetime
) -> list[Person]:
    """The pupils whose second-adult rule is not met.

    Args:
        view: Schools, policies and people.
        conversation: The conversation.
        now: Current time (aware).

    Returns:
        The pupils with fewer than two of their school adults present while an
        adult is a member; empty when the rule holds.
    """
    if _deficit(view, conversation, now) == 0:
        return []
    return [
        m
        for m in conversation.members
        if m.role == Role.PUPIL and len(second_adults(view, conversation, m, now)) < 2
    ]


def _hosts(conversation: Conversation, now: datetime) -> list[Person]:
    owners = (conversation.member(o) for o in sorted(conversation.owners))
    return [o for o in owners if o and is_school_adult(o) and participation(o, now)]


def _contact(view: DirectoryView, conversation: Conversation, now: datetime) -> Decision:
    members = conversation.members
    hosts = _hosts(conversation, now) if conversation.kind != ConversationKind.DIRECT else []
    if not hosts:
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                decision = may_reach(view, a, b, now)
                if not decision:
                    return decision
        return ALLOWED
    for member in members:
        decisions = [may_reach(view, host, member, now) for host in hosts]
        if not any(decisions):
            return decisions[0]
    pupils = [m for m in members if m.role == Role.PUPIL]
    if len(pupils) > 1 and any(view.policy(p.uai).pupil_peers == PupilPeers.NEVER for p in pupils):
        return Decision.refuse(Reason.CONTACT_NOT_ALLOWED)
    return ALLOWED


def _shape(conversation: Conversation, now: datetime) -> Decision:
    kind, members = conversation.kind, conversation.members
    if kind == ConversationKind.DIRECT:
        ok = len(members) == 2 and not conversation.owners
        return ALLOWED if ok else Decision.refuse(Reason.INVALID_MEMBERS)
    if not members:
        return Decision.refuse(Reason.INVALID_MEMBERS)
    if kind in (ConversationKind.CLASS, ConversationKind.ANNOUNCEMENT) and not _hosts(
        conversation, now
    ):
        return Decision.refuse(Reason.KIND_NOT_ALLOWED)
    return ALLOWED


def check_conversation(view: DirectoryView, conversation: Conversation, now: datetime) -> Decision:
    """Check a whole membership state against every rule of this module.

    Args:
        view: Schools, policies and people.
        conversation: The state to check.
        now: Current time (aware).

    Returns:
        Allowed, or the first broken rule's reason (``not_a_participant``,
        ``person_left``, ``invalid_members``, ``kind_not_allowed``, a contact
        reason, ``second_adult_required``).

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    for member in conversation.members:
        decision = participation(member, now)
        if not decision:
            return decision
    for check in (_shape(conversation, now), _contact(view, conversation, now)):
        if not check:
            return check
    if _deficit(view, conversation, now):
        return Decision.refuse(Reason.SECOND_ADULT_REQUIRED)
    return ALLOWED


def may_start(
    view: DirectoryView,
    initiator: Person,
    members: Iterable[Person],
    kind: ConversationKind,
    now: datetime,
) -> Decision:
    """Whether ``initiator`` may create a conversation with ``members``.

    The initiator becomes a member and, except in ``direct``, its owner.

    Args:
        view: Schools, policies and people.
        initiator: Who creates it.
        members: The other members (the initiator, if listed, is ignored).
        kind: The kind.
        now: Current time (aware).

    Returns:
        Allowed, or refused with the reason to show.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    decision = participation(initiator, now)
    if not decision:
        return decision
    others: dict[str, Person] = {}
    for member in members:
        if member.id != initiator.id:
            others.setdefault(member.id, member)
    hosted_kind = kind in (ConversationKind.CLASS, ConversationKind.ANNOUNCEMENT)
    if hosted_kind and not is_school_adult(initiator):
        return Decision.refuse(Reason.KIND_NOT_ALLOWED)
    if kind == ConversationKind.DIRECT and len(others) != 1:
        return Decision.refuse(Reason.INVALID_MEMBERS)
    for other in others.values():
        decision = may_reach(view, initiator, other, now)
        if not decision:
            return decision
    owners = frozenset() if kind == ConversationKind.DIRECT else frozenset({initiator.id})
    state = Conversation(kind, (initiator, *others.values()), owners)
    return check_conversation(view, state, now)


def may_add_member(
    view: DirectoryView,
    actor: Person,
    conversation: Conversation,
    new_member: Person,
    now: datetime,
) -> Decision:
    """Whether ``actor`` may add ``new_member``.

    Args:
        view: Schools, policies and people.
        actor: Who adds.
        conversation: The current state.
        new_member: Who is added (not an owner).
        now: Current time (aware).

    Returns:
        Allowed, or refused (``not_a_member``, ``kind_not_allowed``, ``not_owner``,
        ``invalid_members``, a contact reason, ``second_adult_required``).

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    decision = participation(actor, now)
    if not decision:
        return decision
    if conversation.member(actor.id) is None:
        return Decision.refuse(Reason.NOT_A_MEMBER)
    if conversation.kind == ConversationKind.DIRECT:
        return Decision.refuse(Reason.KIND_NOT_ALLOWED)
    if actor.id not in conversation.owners:
        return Decision.refuse(Reason.NOT_OWNER)
    if conversation.member(new_member.id) is not None:
        return Decision.refuse(Reason.INVALID_MEMBERS)
    decision = may_reach(view, actor, new_member, now)
    if not decision:
        return decision
    return check_conversation(view, conversation.with_member(new_member), now)


def may_remove_member(
    view: DirectoryView,
    actor: Person,
    conversation: Conversation,
    removed_id: str,
    now: datetime,
) -> Decision:
    """Whether ``actor`` may remove ``removed_id`` (a leave when they are the same).

    Refused if the removal lowers any pupil's count of school adults below two
    while an adult stays, or takes away the hosting owner that lets the
    remaining members be together.

    Args:
        view: Schools, policies and people.
        actor: Who removes (or leaves).
        conversation: The current state.
        removed_id: The member removed.
        now: Current time (aware).

    Returns:
        Allowed, or refused (``not_a_member``, ``not_owner``, ``last_second_adult``,
        a contact reason).

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    if conversation.member(actor.id) is None or conversation.member(removed_id) is None:
        return Decision.refuse(Reason.NOT_A_MEMBER)
    if actor.id != removed_id and actor.id not in conversation.owners:
        return Decision.refuse(Reason.NOT_OWNER)
    after = conversation.without_member(removed_id)
    if _deficit(view, after, now) > _deficit(view, conversation, now):
        return Decision.refuse(Reason.LAST_SECOND_ADULT)
    before_contact = _contact(view, conversation, now)
    after_contact = _contact(view, after, now)
    if before_contact and not after_contact:
        return after_contact
    return ALLOWED
