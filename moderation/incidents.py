"""Incident controls as data (issue 5, "Incident controls").

An :class:`IncidentState` is what operators and directors have switched on:
suspensions of sending (a school, a class, a role; with an end time or until
lifted), closure of a school's pupil messaging, moderators' suspensions of one
person (a report's ``suspended`` outcome), and "log out every device" markers.
``server/`` stores each control (audited), rebuilds this value on every node
when one changes, and hands it to :func:`moderation.sending.may_send` and
:meth:`IncidentState.session_valid`.

Scopes: a ``school`` suspension stops everyone of that school; a ``class``
suspension stops the pupils of that class; a ``role`` suspension stops that
role in that school.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from moderation.directory import require_aware
from moderation.reasons import Reason
from storage.models import Person, Role

__all__ = ["IncidentState", "Suspension", "SuspensionScope"]


class SuspensionScope(StrEnum):
    """What a suspension covers."""

    SCHOOL = "school"
    CLASS = "class"
    ROLE = "role"


@dataclass(frozen=True)
class Suspension:
    """Sending suspended for part of a school.

    Attributes:
        uai: The school.
        scope: School, class or role.
        target: The class name or the role; empty for a school.
        until: When it ends by itself; ``None`` until lifted.
    """

    uai: str
    scope: SuspensionScope
    target: str = ""
    until: datetime | None = None

    def covers(self, sender: Person, now: datetime) -> bool:
        """Whether this suspension stops ``sender`` now.

        Args:
            sender: Who sends.
            now: The instant (aware).

        Returns:
            Whether the sender is covered and the suspension is running.
        """
        if sender.uai != self.uai or (self.until is not None and now >= self.until):
            return False
        if self.scope == SuspensionScope.SCHOOL:
            return True
        if self.scope == SuspensionScope.ROLE:
            return sender.role == self.target
        return sender.role == Role.PUPIL and self.target in sender.classes


@dataclass(frozen=True)
class IncidentState:
    """Every incident control in force.

    Attributes:
        suspensions: School, class and role suspensions.
        pupils_closed: UAIs whose pupils' messaging is closed until reopened.
        person_suspensions: Person id to the end of their suspension.
        logged_out: UAI to the instant of a "log out every device": sessions
            opened before it are no longer valid.
    """

    suspensions: tuple[Suspension, ...] = ()
    pupils_closed: frozenset[str] = frozenset()
    person_suspensions: Mapping[str, datetime] = field(default_factory=dict)
    logged_out: Mapping[str, datetime] = field(default_factory=dict)

    def sending_refusal(self, sender: Person, now: datetime) -> Reason | None:
        """Why the incident controls stop ``sender`` now, if they do.

        Args:
            sender: Who sends.
            now: The instant (aware).

        Returns:
            ``person_suspended``, ``sending_suspended``, ``messaging_closed`` or ``None``.

        Raises:
            ModerationUsageError: ``now`` is naive.
        """
        require_aware(now)
        until = self.person_suspensions.get(sender.id)
        if until is not None and now < until:
            return Reason.PERSON_SUSPENDED
        if any(s.covers(sender, now) for s in self.suspensions):
            return Reason.SENDING_SUSPENDED
        if sender.role == Role.PUPIL and sender.uai in self.pupils_closed:
            return Reason.MESSAGING_CLOSED
        return None

    def session_valid(self, uai: str, opened_at: datetime) -> bool:
        """Whether a device session opened at ``opened_at`` survives "log out all".

        Args:
            uai: The device owner's school.
            opened_at: When the session was opened.

        Returns:
            ``False`` if a log-out-all of that school came after it opened.
        """
        marker = self.logged_out.get(uai)
        return marker is None or opened_at > marker

    def with_suspension(self, suspension: Suspension) -> IncidentState:
        """Add a suspension.

        Args:
            suspension: The new suspension.

        Returns:
            The new state.
        """
        return replace(self, suspensions=(*self.suspensions, suspension))

    def without_suspension(self, suspension: Suspension) -> IncidentState:
        """Lift a suspension.

        Args:
            suspension: The suspension to lift.

        Returns:
            The new state.
        """
        return replace(self, suspensions=tuple(s for s in self.suspensions if s != suspension))

    def with_pupils_closed(self, uai: str, closed: bool = True) -> IncidentState:
        """Close (or reopen) a school's pupil messaging.

        Args:
            uai: The school.
            closed: ``False`` reopens.

        Returns:
            The new state.
        """
        schools = self.pupils_closed | {uai} if closed else self.pupils_closed - {uai}
        return replace(self, pupils_closed=schools)

    def with_person_suspended(self, person_id: str, until: datetime) -> IncidentState:
        """Suspend one person's sending until ``until`` (a report's outcome).

        Args:
            person_id: The person.
            until: When it ends.

        Returns:
            The new state.
        """
        return replace(self, person_suspensions={**self.person_suspensions, person_id: until})

    def with_logout_all(self, uai: str, at: datetime) -> IncidentState:
        """Mark every session of a school opened up to ``at`` as logged out.

        Args:
            uai: The school.
            at: The instant of the control.

        Returns:
            The new state.
        """
        return replace(self, logged_out={**self.logged_out, uai: at})

    def next_end(self, now: datetime) -> datetime | None:
        """The first end of a suspension after ``now``: until then, every
        answer of :meth:`sending_refusal` for a given sender stays the same.

        Args:
            now: The instant (aware).

        Returns:
            The earliest ``until`` later than ``now``, or ``None``.
        """
        ends = [s.until for s in self.suspensions if s.until is not None and s.until > now]
        ends.extend(u for u in self.person_suspensions.values() if u > now)
        return min(ends, default=None)

    def expired_removed(self, now: datetime) -> IncidentState:
        """Drop the suspensions that have ended (keeps the state small).

        Args:
            now: The instant (aware).

        Returns:
            The new state.
        """
        return replace(
            self,
            suspensions=tuple(s for s in self.suspensions if s.until is None or now < s.until),
            person_suspensions={p: u for p, u in self.person_suspensions.items() if now < u},
        )
