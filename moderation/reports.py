"""Reports of abusive messages, with franking proof (issue 5, "Reports with proof").

Rule 1: a report's life is the table :data:`TRANSITIONS`; any other move raises
:class:`moderation.errors.IllegalTransition`::

    filed ──▶ under_review ──▶ dismissed | warned | suspended | escalated

The four outcomes are final (``escalated`` hands the case to the académie or
the police, outside Carnet). Rule 2: only the school's moderators move a
report: its director and the staff listed in the policy's ``moderators``
(:func:`may_moderate`). Rule 3: a report's proof is *verified* only if
:func:`crypto.verify_report` accepts it (the body opens the sender's
commitment and the server's stamp binds sender device, conversation and time);
otherwise it is filed as *unverified*, never dropped: a moderator can still
read it, knowing the sender is not proven.

The plaintext body reaches the server only inside a report, given by the
recipient; ``server/`` keeps it with the report for the moderators (RGPD art.
6(1)(e) and 5(1)(c): only what the reporter chose to hand over) and never logs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crypto import AbuseReport, FrankingKeyring, InvalidMessage, verify_report
from moderation.directory import DirectoryView, participation, require_aware
from moderation.errors import IllegalTransition
from moderation.reasons import ALLOWED, Decision, Reason
from storage.models import Person, Role

__all__ = [
    "TRANSITIONS",
    "Proof",
    "ReportCase",
    "ReportState",
    "advance",
    "may_moderate",
    "verify_proof",
]


class ReportState(StrEnum):
    """Where a report stands."""

    FILED = "filed"
    UNDER_REVIEW = "under_review"
    DISMISSED = "dismissed"
    WARNED = "warned"
    SUSPENDED = "suspended"
    ESCALATED = "escalated"


_OUTCOMES = frozenset(
    {ReportState.DISMISSED, ReportState.WARNED, ReportState.SUSPENDED, ReportState.ESCALATED}
)
TRANSITIONS: dict[ReportState, frozenset[ReportState]] = {
    ReportState.FILED: frozenset({ReportState.UNDER_REVIEW}),
    ReportState.UNDER_REVIEW: _OUTCOMES,
    **{outcome: frozenset() for outcome in _OUTCOMES},
}
"""Allowed moves from each state; the outcomes are final."""


def advance(state: ReportState, to: ReportState) -> ReportState:
    """Move a report along the table.

    Args:
        state: Where it stands.
        to: Where it goes.

    Returns:
        ``to``.

    Raises:
        IllegalTransition: the table has no such move.
    """
    if to not in TRANSITIONS[state]:
        raise IllegalTransition(f"a report cannot go from {state} to {to}")
    return to


class Proof(StrEnum):
    """Whether the franking proof of a report holds."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"


def verify_proof(keyring: FrankingKeyring, report: AbuseReport) -> Proof:
    """Check a report's franking proof.

    Args:
        keyring: The server's franking keys.
        report: What the reporter sent.

    Returns:
        :attr:`Proof.VERIFIED` if the sender, conversation and time are proven.
    """
    try:
        verify_report(keyring, report)
    except InvalidMessage:
        return Proof.UNVERIFIED
    return Proof.VERIFIED


def may_moderate(view: DirectoryView, person: Person, uai: str, now: datetime) -> Decision:
    """Whether ``person`` may list, review and decide the reports of school ``uai``.

    Args:
        view: Schools and policies.
        person: Who wants to moderate.
        uai: The school of the reports.
        now: The instant (aware).

    Returns:
        Allowed, or ``not_moderator`` (or a participation refusal).

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    decision = participation(person, now)
    if not decision:
        return decision
    if person.uai == uai and (
        person.role == Role.DIRECTOR
        or (person.role == Role.STAFF and person.id in view.policy(uai).moderators)
    ):
        return ALLOWED
    return Decision.refuse(Reason.NOT_MODERATOR)


@dataclass(frozen=True)
class ReportCase:
    """A report as moderators see it, with its history.

    Attributes:
        uai: The school whose moderators handle it.
        proof: Verified or not.
        state: Where it stands.
        history: ``(state, moderator id, when)`` for every move.
    """

    uai: str
    proof: Proof
    state: ReportState = ReportState.FILED
    history: tuple[tuple[ReportState, str, datetime], ...] = ()

    def moved(self, to: ReportState, moderator_id: str, at: datetime) -> ReportCase:
        """This case after a moderator's move (check :func:`may_moderate` first).

        Args:
            to: The new state.
            moderator_id: Who moved it.
            at: When (aware).

        Returns:
            The new case.

        Raises:
            IllegalTransition: the table has no such move.
            ModerationUsageError: ``at`` is naive.
        """
        require_aware(at)
        state = advance(self.state, to)
        history = (*self.history, (state, moderator_id, at))
        return ReportCase(self.uai, self.proof, state, history)
