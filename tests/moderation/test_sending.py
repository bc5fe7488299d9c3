"""may_send: incidents, night closure, blocks (dropped silently), quiet hours (sender told)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from moderation import (
    ALLOWED,
    Blocks,
    ContactPolicy,
    Conversation,
    ConversationKind,
    Delivery,
    IncidentState,
    NightClosure,
    Reason,
    Suspension,
    SuspensionScope,
    check_conversation,
    may_block,
    may_send,
    steady_until,
)
from storage.models import Person
from tests.moderation.cast import (
    CPE,
    DAD5A,
    DIRECTOR,
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
    A,
    view,
)

NIGHT = datetime(2025, 3, 12, 21, 0, tzinfo=UTC)  # Wednesday 22:00 in Paris
CHANNEL = Conversation(ConversationKind.CLASS, (T5A, T5A2, P5A, P5A2), frozenset({"t5a"}))
PARENTS = Conversation(ConversationKind.GROUP, (T5A, MUM5A, DAD5A), frozenset({"t5a"}))
NEWS = Conversation(
    ConversationKind.ANNOUNCEMENT, (DIRECTOR, MUM5A, PARENT5B), frozenset({"director"})
)


@pytest.mark.parametrize(
    ("name", "blocker", "blocked", "expected"),
    [
        ("pupil, own teacher", P5A, T5A, Reason.REPORT_INSTEAD),
        ("pupil, staff", P5A, STAFF, Reason.REPORT_INSTEAD),
        ("pupil, director", P5A, DIRECTOR, Reason.REPORT_INSTEAD),
        ("pupil, teacher of another class", P5A, T5B, None),
        ("pupil, another pupil", P5A, P5A2, None),
        ("pupil, a parent", P5A, PARENT5B, None),
        ("parent, child's teacher", MUM5A, T5A2, Reason.REPORT_INSTEAD),
        ("parent, staff", MUM5A, CPE, Reason.REPORT_INSTEAD),
        ("parent, another teacher", MUM5A, T5B, None),
        ("parent, other parent", MUM5A, DAD5A, None),
        ("parent, teacher of another school", MUM5A, TB, None),
        ("teacher, parent", T5A, MUM5A, None),
        ("teacher, own pupil", T5A, P5A, None),
        ("staff, colleague", STAFF, CPE, None),
        ("self", P5A, P5A, Reason.CANNOT_BLOCK_SELF),
    ],
)
def test_may_block(name: str, blocker: Person, blocked: Person, expected: Reason | None) -> None:
    assert may_block(view(), blocker, blocked, NOW).reason == expected, name


def test_allowed_send_delivers_to_every_other_member() -> None:
    sent = may_send(view(), P5A, CHANNEL, NOW)
    assert sent.allowed
    assert sent.deliveries == {"t5a": "notify", "t5a2": "notify", "p5a2": "notify"}
    assert sent.told_to_sender() == {}


def test_quiet_hours_are_silent_and_the_sender_is_told() -> None:
    sent = may_send(view(), P5A, CHANNEL, NIGHT)
    assert sent.deliveries == {"t5a": "silent", "t5a2": "silent", "p5a2": "notify"}
    assert sent.told_to_sender() == {"t5a": Delivery.SILENT, "t5a2": Delivery.SILENT}


def test_blocked_sender_is_dropped_and_not_told() -> None:
    blocks = Blocks().with_block("dad5a", "mum5a")
    sent = may_send(view(), MUM5A, PARENTS, NIGHT, blocks=blocks)
    assert sent.allowed
    assert sent.deliveries == {"t5a": Delivery.SILENT, "dad5a": Delivery.DROP}
    assert "dad5a" not in sent.told_to_sender()
    unblocked = blocks.without_block("dad5a", "mum5a")
    assert may_send(view(), MUM5A, PARENTS, NOW, blocks=unblocked).deliveries["dad5a"] == "notify"


def test_announcements_are_one_way() -> None:
    assert may_send(view(), DIRECTOR, NEWS, NOW).allowed
    assert may_send(view(), MUM5A, NEWS, NOW).reason == Reason.ANNOUNCEMENT_ONE_WAY


def test_members_only_and_participants_only() -> None:
    assert may_send(view(), P5B, CHANNEL, NOW).reason == Reason.NOT_A_MEMBER
    assert may_send(view(), LEFT, CHANNEL, NOW).reason == Reason.PERSON_LEFT


def test_conversation_that_lost_its_second_adult_is_frozen() -> None:
    broken = Conversation(ConversationKind.CLASS, (T5A, LEFT, P5A), frozenset({"t5a"}))
    assert may_send(view(), T5A, broken, NOW).reason == Reason.PERSON_LEFT
    broken = Conversation(ConversationKind.CLASS, (T5A, P5A), frozenset({"t5a"}))
    assert may_send(view(), T5A, broken, NOW).reason == Reason.SECOND_ADULT_REQUIRED


def test_a_membership_check_given_by_the_caller_replaces_the_one_made_here() -> None:
    broken = Conversation(ConversationKind.CLASS, (T5A, P5A), frozenset({"t5a"}))
    checked = check_conversation(view(), broken, NOW)
    assert checked.reason == Reason.SECOND_ADULT_REQUIRED
    assert may_send(view(), T5A, broken, NOW, membership=checked).reason == checked.reason
    # What is given is used as is: the server computes it for the same view and members.
    assert may_send(view(), T5A, broken, NOW, membership=ALLOWED).allowed
    given = check_conversation(view(), CHANNEL, NOW)
    assert may_send(view(), P5A, CHANNEL, NOW, membership=given) == may_send(
        view(), P5A, CHANNEL, NOW
    )


def test_night_closure_stops_pupils_only() -> None:
    closing = view(ContactPolicy(night_closure=NightClosure(enabled=True)))
    assert may_send(closing, P5A, CHANNEL, NIGHT).reason == Reason.NIGHT_CLOSURE
    assert may_send(closing, T5A, CHANNEL, NIGHT).allowed
    assert may_send(closing, P5A, CHANNEL, NOW).allowed


UNTIL = NOW + timedelta(hours=2)


@pytest.mark.parametrize(
    ("name", "incidents", "sender", "expected"),
    [
        ("school", IncidentState((Suspension(A, SuspensionScope.SCHOOL, until=UNTIL),)), T5A,
         Reason.SENDING_SUSPENDED),
        ("class: its pupils", IncidentState((Suspension(A, SuspensionScope.CLASS, "5A"),)), P5A,
         Reason.SENDING_SUSPENDED),
        ("class: not its teacher", IncidentState((Suspension(A, SuspensionScope.CLASS, "5A"),)),
         T5A, None),
        ("role: pupils", IncidentState((Suspension(A, SuspensionScope.ROLE, "pupil"),)), P5A,
         Reason.SENDING_SUSPENDED),
        ("role: not teachers", IncidentState((Suspension(A, SuspensionScope.ROLE, "pupil"),)),
         T5A, None),
        ("another school", IncidentState((Suspension("0750002B", SuspensionScope.SCHOOL),)), P5A,
         None),
        ("pupils closed", IncidentState().with_pupils_closed(A), P5A, Reason.MESSAGING_CLOSED),
        ("pupils closed: teachers", IncidentState().with_pupils_closed(A), T5A, None),
        ("pupils reopened", IncidentState().with_pupils_closed(A).with_pupils_closed(A, False),
         P5A, None),
        ("person suspended", IncidentState().with_person_suspended("p5a", UNTIL), P5A,
         Reason.PERSON_SUSPENDED),
        ("someone else suspended", IncidentState().with_person_suspended("p5a2", UNTIL), P5A,
         None),
    ],
)  # fmt: skip
def test_incident_controls(
    name: str, incidents: IncidentState, sender: Person, expected: Reason | None
) -> None:
    assert may_send(view(), sender, CHANNEL, NOW, incidents=incidents).reason == expected, name


def test_suspensions_end_and_are_lifted() -> None:
    school = Suspension(A, SuspensionScope.SCHOOL, until=UNTIL)
    person = IncidentState().with_person_suspended("p5a", UNTIL)
    incidents = person.with_suspension(school)
    assert may_send(view(), P5A, CHANNEL, UNTIL - timedelta(seconds=1), incidents).reason == (
        Reason.PERSON_SUSPENDED  # the person's own suspension is named first
    )
    assert may_send(view(), T5A, CHANNEL, UNTIL, incidents).allowed
    assert may_send(view(), T5A, CHANNEL, NOW, incidents.without_suspension(school)).allowed
    assert incidents.expired_removed(UNTIL) == IncidentState()
    assert incidents.expired_removed(NOW) == incidents


def test_log_out_all_marker() -> None:
    incidents = IncidentState().with_logout_all(A, NOW)
    assert not incidents.session_valid(A, NOW - timedelta(minutes=5))
    assert not incidents.session_valid(A, NOW)
    assert incidents.session_valid(A, NOW + timedelta(seconds=1))
    assert incidents.session_valid("0750002B", NOW - timedelta(days=1))


def _sweep(start: datetime, hours: int, step: timedelta) -> list[datetime]:
    count = int(timedelta(hours=hours) / step)
    return [start + i * step for i in range(count)]


@pytest.mark.parametrize(
    ("sender", "conversation", "policy"),
    [
        (P5A, CHANNEL, ContactPolicy()),
        (P5A, CHANNEL, ContactPolicy(night_closure=NightClosure(enabled=True))),
        (MUM5A, PARENTS, ContactPolicy()),
    ],
)
def test_may_send_answers_the_same_until_steady_until(
    sender: Person, conversation: Conversation, policy: ContactPolicy
) -> None:
    # Friday 28 March 2025 to Monday 31 March, across the weekend and the change to
    # summer time in Paris (Sunday 30 March, 02:00 -> 03:00); odd steps land anywhere
    # in a minute, and each one is checked just before its promise ends.
    directory = view(policy)
    incidents = IncidentState().with_person_suspended(
        sender.id, datetime(2025, 3, 29, 9, 30, 7, tzinfo=UTC)
    )
    for now in _sweep(datetime(2025, 3, 28, 0, 0, tzinfo=UTC), 80, timedelta(seconds=47)):
        until = steady_until(directory, sender, conversation, now, incidents)
        assert until is not None and now < until <= now + timedelta(minutes=1)
        answer = may_send(directory, sender, conversation, now, incidents)
        for later in (now + (until - now) / 2, until - timedelta(microseconds=1)):
            assert may_send(directory, sender, conversation, later, incidents) == answer, later


def test_steady_until_ends_where_a_window_or_a_suspension_does() -> None:
    before_quiet = datetime(2025, 3, 12, 18, 59, 30, tzinfo=UTC)  # 19:59:30 in Paris
    until = steady_until(view(), P5A, CHANNEL, before_quiet)
    assert until == datetime(2025, 3, 12, 19, 0, tzinfo=UTC)
    assert may_send(view(), P5A, CHANNEL, before_quiet).deliveries["t5a"] == Delivery.NOTIFY
    assert may_send(view(), P5A, CHANNEL, until).deliveries["t5a"] == Delivery.SILENT
    ends = NOW + timedelta(seconds=12.5)
    suspended = IncidentState().with_person_suspended("p5a", ends)
    assert steady_until(view(), P5A, CHANNEL, NOW, suspended) == ends
    assert may_send(view(), P5A, CHANNEL, ends - timedelta(microseconds=1), suspended).reason
    assert may_send(view(), P5A, CHANNEL, ends, suspended).allowed
    leaving = Person.model_validate({**P5A.model_dump(), "left_at": NOW + timedelta(seconds=3)})
    assert steady_until(view(), leaving, CHANNEL, NOW) == NOW + timedelta(seconds=3)


def test_no_promise_for_a_window_bound_with_seconds() -> None:
    odd = view(ContactPolicy.model_validate({"quiet_hours": {"start": time(20, 0, 30)}}))
    assert steady_until(odd, P5A, CHANNEL, NOW) is None
