"""What decisions read about schools and people, and who may reach whom (issue 5).

:class:`DirectoryView` is data handed in by ``server/``: the schools involved,
their policy documents, and the people a decision may need to look up (the
children of any parent involved, whose classes link a parent to teachers). A
child missing from the view simply creates no link, so an incomplete view
refuses, never allows, more.

:func:`may_reach` is the contact relation of the policy (symmetric: if ``a`` may
reach ``b`` then ``b`` may reach ``a``); the rules, in order:

1. DPO and operator are not messaging participants (``not_a_participant``);
   someone whose ``left_at`` has passed takes no part (``person_left``).
2. Different schools: both schools must list each other in ``partner_schools``,
   both people's roles must be in their own school's ``partner_roles``, and one
   of them must be a school adult; otherwise ``cross_school``.
3. Same school: staff and director reach everyone; teachers reach teachers, the
   pupils of the classes they teach and those pupils' parents (wider with
   ``teachers_reach_all_*``); two parents of a common child only with
   ``parents_reach_other_parent``; a pupil and their own parent only with
   ``pupils_reach_own_parents``; two pupils never directly
   (``teacher_channel_required``: they meet in a channel a school adult owns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moderation.errors import ModerationUsageError
from moderation.policy import DEFAULT_POLICY, PARTICIPANT_ROLES, SCHOOL_ADULT_ROLES, ContactPolicy
from moderation.reasons import ALLOWED, Decision, Reason
from storage.models import Person, Role, School

__all__ = [
    "DirectoryView",
    "is_school_adult",
    "may_reach",
    "participation",
    "require_aware",
    "visible_people",
]


def require_aware(now: datetime) -> None:
    """Refuse naive datetimes: every time handed in is timezone-aware.

    Args:
        now: The time.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    if now.tzinfo is UTC:
        return
    if now.tzinfo is None or now.utcoffset() is None:
        raise ModerationUsageError("times must be timezone-aware")


@dataclass(frozen=True)
class DirectoryView:
    """Schools, their policies and the people decisions may look up.

    Attributes:
        schools: Schools by UAI (for their time zones).
        policies: Policy documents by UAI; a school without one gets the defaults.
        people: People by id; must hold the children of every parent involved.
    """

    schools: Mapping[str, School]
    policies: Mapping[str, ContactPolicy] = field(default_factory=dict)
    people: Mapping[str, Person] = field(default_factory=dict)

    def policy(self, uai: str) -> ContactPolicy:
        """The policy of a school.

        Args:
            uai: The school.

        Returns:
            Its document, or :data:`DEFAULT_POLICY`.
        """
        return self.policies.get(uai, DEFAULT_POLICY)

    def zone(self, uai: str) -> ZoneInfo:
        """The time zone of a school.

        Args:
            uai: The school.

        Returns:
            The zone.

        Raises:
            ModerationUsageError: the school is not in the view or its zone is unknown.
        """
        school = self.schools.get(uai)
        if school is None:
            raise ModerationUsageError(f"school {uai} not in the directory view")
        try:
            return ZoneInfo(school.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ModerationUsageError(f"unknown time zone for {uai}") from None

    def children(self, parent: Person) -> list[Person]:
        """The parent's children present in the view.

        Args:
            parent: A parent.

        Returns:
            Their children, same school only.
        """
        found = (self.people.get(child_id) for child_id in parent.children)
        return [c for c in found if c is not None and c.uai == parent.uai]


def is_school_adult(person: Person) -> bool:
    """Teacher, staff or director.

    Args:
        person: Anyone.

    Returns:
        Whether they are a school adult.
    """
    return person.role in SCHOOL_ADULT_ROLES


def participation(person: Person, now: datetime) -> Decision:
    """Whether a person may take part in messaging at all.

    Args:
        person: Anyone.
        now: Current time (aware).

    Returns:
        Allowed, ``not_a_participant`` or ``person_left``.
    """
    if person.role not in PARTICIPANT_ROLES:
        return Decision.refuse(Reason.NOT_A_PARTICIPANT)
    if person.left_at is not None and person.left_at <= now:
        return Decision.refuse(Reason.PERSON_LEFT)
    return ALLOWED


def _shares_class(a: Person, b: Person) -> bool:
    return a.uai == b.uai and bool(set(a.classes) & set(b.classes))


def _teaches_child_of(view: DirectoryView, teacher: Person, parent: Person) -> bool:
    return any(_shares_class(teacher, child) for child in view.children(parent))


def _same_school(view: DirectoryView, a: Person, b: Person) -> Decision:
    policy = view.policy(a.uai)
    roles = {a.role, b.role}
    if roles & {Role.STAFF, Role.DIRECTOR}:
        return ALLOWED
    if roles == {Role.TEACHER}:
        return ALLOWED
    if roles == {Role.TEACHER, Role.PUPIL}:
        ok = policy.teachers_reach_all_pupils or _shares_class(a, b)
        return ALLOWED if ok else Decision.refuse(Reason.CONTACT_NOT_ALLOWED)
    if roles == {Role.TEACHER, Role.PARENT}:
        teacher, parent = (a, b) if a.role == Role.TEACHER else (b, a)
        ok = policy.teachers_reach_all_parents or _teaches_child_of(view, teacher, parent)
        return ALLOWED if ok else Decision.refuse(Reason.CONTACT_NOT_ALLOWED)
    if roles == {Role.PARENT}:
        co_parents = bool(set(a.children) & set(b.children))
        ok = policy.parents_reach_other_parent and co_parents
        return ALLOWED if ok else Decision.refuse(Reason.CONTACT_NOT_ALLOWED)
    if roles == {Role.PARENT, Role.PUPIL}:
        parent, pupil = (a, b) if a.role == Role.PARENT else (b, a)
        ok = policy.pupils_reach_own_parents and pupil.id in parent.children
        return ALLOWED if ok else Decision.refuse(Reason.CONTACT_NOT_ALLOWED)
    # Two pupils (DESIGN.md: pupil↔pupil only inside channels a teacher owns).
    return Decision.refuse(Reason.TEACHER_CHANNEL_REQUIRED)


def _partners(view: DirectoryView, a: Person, b: Person) -> bool:
    pa, pb = view.policy(a.uai), view.policy(b.uai)
    return (
        b.uai in pa.partner_schools
        and a.uai in pb.partner_schools
        and a.role in pa.partner_roles
        and b.role in pb.partner_roles
        and (is_school_adult(a) or is_school_adult(b))
    )


def may_reach(view: DirectoryView, a: Person, b: Person, now: datetime) -> Decision:
    """Whether two people may be in contact under their schools' policies.

    Symmetric. Inside a channel owned by a school adult, members only need to be
    reachable by an owner (see :mod:`moderation.conversations`).

    Args:
        view: Schools, policies and people.
        a: One person.
        b: Another.
        now: Current time (aware).

    Returns:
        Allowed, or refused with ``not_a_participant``, ``person_left``,
        ``cross_school``, ``contact_not_allowed`` or ``teacher_channel_required``.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    for person in (a, b):
        decision = participation(person, now)
        if not decision:
            return decision
    if a.id == b.id:
        return ALLOWED
    if a.uai != b.uai:
        return ALLOWED if _partners(view, a, b) else Decision.refuse(Reason.CROSS_SCHOOL)
    return _same_school(view, a, b)


def visible_people(
    view: DirectoryView, viewer: Person, candidates: Iterable[Person], now: datetime
) -> list[Person]:
    """Filter a directory search: a person only sees whom they may reach.

    Args:
        view: Schools, policies and people.
        viewer: Who searches.
        candidates: The search results before filtering.
        now: Current time (aware).

    Returns:
        The reachable candidates, in order, without the viewer.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    return [c for c in candidates if c.id != viewer.id and may_reach(view, viewer, c, now).allowed]
