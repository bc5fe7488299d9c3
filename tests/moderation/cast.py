"""A small directory for moderation tests: two schools, every role, every link.

School A (0750001A, Europe/Paris): classes 5A and 5B. School B (0750002B).
"""

from __future__ import annotations

from datetime import UTC, datetime

from moderation import ContactPolicy, DirectoryView
from storage.models import Person, Role, School

A = "0750001A"
B = "0750002B"
NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)
"""A Wednesday, 11:00 in Paris: outside every default window."""


def person(
    pid: str,
    role: Role,
    uai: str = A,
    classes: tuple[str, ...] = (),
    children: tuple[str, ...] = (),
    left_at: datetime | None = None,
) -> Person:
    return Person(
        id=pid,
        uai=uai,
        external_id=pid,
        role=role,
        given_name=pid,
        family_name="Test",
        classes=classes,
        children=children,
        left_at=left_at,
    )


T5A = person("t5a", Role.TEACHER, classes=("5A",))
T5A2 = person("t5a2", Role.TEACHER, classes=("5A", "4C"))
T5B = person("t5b", Role.TEACHER, classes=("5B",))
STAFF = person("staff", Role.STAFF)
CPE = person("cpe", Role.STAFF)
"""Staff designated as a second adult and as a moderator in :func:`view`."""
DIRECTOR = person("director", Role.DIRECTOR)
DPO = person("dpo", Role.DPO)
OPERATOR = person("operator", Role.OPERATOR)
P5A = person("p5a", Role.PUPIL, classes=("5A",))
P5A2 = person("p5a2", Role.PUPIL, classes=("5A",))
P5B = person("p5b", Role.PUPIL, classes=("5B",))
MUM5A = person("mum5a", Role.PARENT, children=("p5a",))
DAD5A = person("dad5a", Role.PARENT, children=("p5a",))
PARENT5B = person("parent5b", Role.PARENT, children=("p5b",))
LEFT = person("left", Role.TEACHER, classes=("5A",), left_at=datetime(2025, 1, 1, tzinfo=UTC))

TB = person("tb", Role.TEACHER, uai=B, classes=("6A",))
STAFFB = person("staffb", Role.STAFF, uai=B)
DIRECTORB = person("directorb", Role.DIRECTOR, uai=B)
PB = person("pb", Role.PUPIL, uai=B, classes=("6A",))
PARENTB = person("parentb", Role.PARENT, uai=B, children=("pb",))

EVERYONE = (
    T5A, T5A2, T5B, STAFF, CPE, DIRECTOR, DPO, OPERATOR, P5A, P5A2, P5B,
    MUM5A, DAD5A, PARENT5B, LEFT, TB, STAFFB, DIRECTORB, PB, PARENTB,
)  # fmt: skip

SCHOOLS = {A: School(uai=A, name="Collège A"), B: School(uai=B, name="Collège B")}


def view(a: ContactPolicy | None = None, b: ContactPolicy | None = None) -> DirectoryView:
    """The directory view with school A's and B's policies (A designates ``cpe``)."""
    designated = {"designated_adults": frozenset({"cpe"}), "moderators": frozenset({"cpe"})}
    policy_a = (a or ContactPolicy()).model_copy(update=designated)
    policies = {A: policy_a} if b is None else {A: policy_a, B: b}
    return DirectoryView(SCHOOLS, policies, {p.id: p for p in EVERYONE})


def partners(**extra: object) -> DirectoryView:
    """A and B list each other as partners."""
    policy_a = ContactPolicy.model_validate({"partner_schools": [B], **extra})
    policy_b = ContactPolicy.model_validate({"partner_schools": [A], **extra})
    return view(policy_a, policy_b)
