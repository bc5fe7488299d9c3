"""The contact relation of the default policy over every role pair and relationship."""

from __future__ import annotations

from itertools import combinations_with_replacement

import pytest

from moderation import ContactPolicy, ModerationUsageError, Reason, may_reach, visible_people
from storage.models import Person, Role
from tests.moderation.cast import (
    CPE,
    DAD5A,
    DIRECTOR,
    DIRECTORB,
    DPO,
    EVERYONE,
    LEFT,
    MUM5A,
    NOW,
    OPERATOR,
    P5A,
    P5A2,
    P5B,
    PARENT5B,
    PARENTB,
    PB,
    STAFF,
    STAFFB,
    T5A,
    T5A2,
    T5B,
    TB,
    partners,
    view,
)

OK = None
NO = Reason.CONTACT_NOT_ALLOWED
PEERS = Reason.TEACHER_CHANNEL_REQUIRED
XS = Reason.CROSS_SCHOOL
NP = Reason.NOT_A_PARTICIPANT

# (relationship, a, b, expected reason) for the default policy, same school A.
SAME_SCHOOL: list[tuple[str, Person, Person, Reason | None]] = [
    ("two teachers", T5A, T5B, OK),
    ("teacher, staff", T5A, STAFF, OK),
    ("teacher, director", T5A, DIRECTOR, OK),
    ("teacher, own pupil", T5A, P5A, OK),
    ("teacher, pupil of another class", T5A, P5B, NO),
    ("teacher, parent of own pupil", T5A, MUM5A, OK),
    ("teacher, parent of another class's pupil", T5A, PARENT5B, NO),
    ("teacher, DPO", T5A, DPO, NP),
    ("teacher, operator", T5A, OPERATOR, NP),
    ("two staff", STAFF, CPE, OK),
    ("staff, director", STAFF, DIRECTOR, OK),
    ("staff, pupil", STAFF, P5B, OK),
    ("staff, parent", STAFF, PARENT5B, OK),
    ("staff, DPO", STAFF, DPO, NP),
    ("staff, operator", STAFF, OPERATOR, NP),
    ("director, director", DIRECTOR, DIRECTOR, OK),
    ("director, pupil", DIRECTOR, P5A, OK),
    ("director, parent", DIRECTOR, DAD5A, OK),
    ("director, DPO", DIRECTOR, DPO, NP),
    ("director, operator", DIRECTOR, OPERATOR, NP),
    ("pupils of one class", P5A, P5A2, PEERS),
    ("pupils of two classes", P5A, P5B, PEERS),
    ("pupil, own parent", P5A, MUM5A, NO),
    ("pupil, another pupil's parent", P5A, PARENT5B, NO),
    ("pupil, DPO", P5A, DPO, NP),
    ("pupil, operator", P5A, OPERATOR, NP),
    ("parents of one child", MUM5A, DAD5A, NO),
    ("parents of two children", MUM5A, PARENT5B, NO),
    ("parent, DPO", MUM5A, DPO, NP),
    ("parent, operator", MUM5A, OPERATOR, NP),
    ("DPO, DPO", DPO, DPO, NP),
    ("DPO, operator", DPO, OPERATOR, NP),
    ("operator, operator", OPERATOR, OPERATOR, NP),
    ("teacher who left, own pupil", LEFT, P5A, Reason.PERSON_LEFT),
]

# Another school, no partnership: every participant pair is refused.
OTHER_SCHOOL: list[tuple[str, Person, Person, Reason | None]] = [
    (f"{a.role} of A, {b.role} of B", a, b, XS)
    for a in (T5A, STAFF, DIRECTOR, P5A, MUM5A)
    for b in (TB, STAFFB, DIRECTORB, PB, PARENTB)
]

# Partner schools (default partner_roles: school adults).
PARTNERS: list[tuple[str, Person, Person, Reason | None]] = [
    ("partner teachers", T5A, TB, OK),
    ("partner staff, director", STAFF, DIRECTORB, OK),
    ("partner teacher, pupil", T5A, PB, XS),
    ("partner pupil, director", P5A, DIRECTORB, XS),
    ("partner parent, teacher", MUM5A, TB, XS),
    ("partner pupils", P5A, PB, XS),
    ("partner DPO", DPO, TB, NP),
]


@pytest.mark.parametrize(("name", "a", "b", "expected"), SAME_SCHOOL + OTHER_SCHOOL)
def test_default_policy(name: str, a: Person, b: Person, expected: Reason | None) -> None:
    for x, y in ((a, b), (b, a)):
        assert may_reach(view(), x, y, NOW).reason == expected, name


@pytest.mark.parametrize(("name", "a", "b", "expected"), PARTNERS)
def test_partner_schools(name: str, a: Person, b: Person, expected: Reason | None) -> None:
    for x, y in ((a, b), (b, a)):
        assert may_reach(partners(), x, y, NOW).reason == expected, name


def test_table_covers_every_role_pair() -> None:
    covered = {frozenset({a.role, b.role}) for _, a, b, _ in SAME_SCHOOL}
    assert covered == {frozenset(p) for p in combinations_with_replacement(list(Role), 2)}
    covered_xs = {frozenset({a.role, b.role}) for _, a, b, _ in OTHER_SCHOOL}
    participants = [r for r in Role if r not in (Role.DPO, Role.OPERATOR)]
    assert covered_xs == {frozenset(p) for p in combinations_with_replacement(participants, 2)}


def test_partnership_must_be_mutual() -> None:
    one_way = view(ContactPolicy.model_validate({"partner_schools": ["0750002B"]}))
    assert may_reach(one_way, T5A, TB, NOW).reason == XS
    other_way = view(None, ContactPolicy.model_validate({"partner_schools": ["0750001A"]}))
    assert may_reach(other_way, T5A, TB, NOW).reason == XS


def test_partner_roles_can_open_pupils_to_partner_adults() -> None:
    world = partners(partner_roles=["teacher", "pupil"])
    assert may_reach(world, T5A, PB, NOW).allowed
    assert may_reach(world, P5A, PB, NOW).reason == XS  # never two non-adults across schools
    assert may_reach(world, STAFF, TB, NOW).reason == XS  # staff not listed


@pytest.mark.parametrize(
    ("field", "a", "b"),
    [
        ("teachers_reach_all_pupils", T5A, P5B),
        ("teachers_reach_all_parents", T5A, PARENT5B),
        ("parents_reach_other_parent", MUM5A, DAD5A),
        ("pupils_reach_own_parents", P5A, MUM5A),
    ],
)
def test_policy_switches(field: str, a: Person, b: Person) -> None:
    assert not may_reach(view(), a, b, NOW)
    assert may_reach(view(ContactPolicy.model_validate({field: True})), a, b, NOW)


def test_switches_keep_their_relationship() -> None:
    lenient = view(ContactPolicy(parents_reach_other_parent=True, pupils_reach_own_parents=True))
    assert may_reach(lenient, MUM5A, PARENT5B, NOW).reason == NO  # no common child
    assert may_reach(lenient, P5B, MUM5A, NOW).reason == NO  # not her child


def test_parent_link_needs_the_child_in_the_view() -> None:
    bare = view()
    bare = type(bare)(bare.schools, bare.policies, {})
    assert may_reach(bare, T5A, MUM5A, NOW).reason == NO


def test_visible_people_filters_a_directory_search() -> None:
    seen = {p.id for p in visible_people(view(), P5A, EVERYONE, NOW)}
    assert seen == {"t5a", "t5a2", "staff", "cpe", "director"}
    seen = {p.id for p in visible_people(view(), MUM5A, EVERYONE, NOW)}
    assert seen == {"t5a", "t5a2", "staff", "cpe", "director"}
    assert {p.id for p in visible_people(view(), DPO, EVERYONE, NOW)} == set()
    everyone_a = {p.id for p in EVERYONE if p.uai == "0750001A"}
    assert {p.id for p in visible_people(view(), DIRECTOR, EVERYONE, NOW)} == everyone_a - {
        "director",
        "dpo",
        "operator",
        "left",
    }


def test_naive_time_is_our_bug() -> None:
    with pytest.raises(ModerationUsageError):
        may_reach(view(), T5A, T5A2, NOW.replace(tzinfo=None))
