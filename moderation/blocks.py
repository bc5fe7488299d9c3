"""Blocks (issue 5, "Rate limits and blocks").

A person may block another, except their own school adults: a pupil cannot
block the teachers of their classes or the school's staff and director, a
parent cannot block their children's teachers or the staff and director
(``report_instead``: the pupil or parent reports the message to the school's
moderators, who can act). A blocked sender's messages to the blocker are
dropped (:attr:`moderation.reasons.Delivery.DROP`) and the sender is not told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from moderation.directory import DirectoryView, require_aware
from moderation.reasons import ALLOWED, Decision, Reason
from storage.models import Person, Role

__all__ = ["Blocks", "may_block"]


@dataclass(frozen=True)
class Blocks:
    """Who blocked whom.

    Attributes:
        pairs: ``(blocker id, blocked id)`` pairs.
    """

    pairs: frozenset[tuple[str, str]] = frozenset()

    def blocks(self, blocker_id: str, blocked_id: str) -> bool:
        """Whether ``blocker_id`` blocked ``blocked_id``.

        Args:
            blocker_id: The recipient.
            blocked_id: The sender.

        Returns:
            Whether messages from the sender are dropped for the recipient.
        """
        return (blocker_id, blocked_id) in self.pairs

    def with_block(self, blocker_id: str, blocked_id: str) -> Blocks:
        """Add a block (after :func:`may_block` allowed it).

        Args:
            blocker_id: Who blocks.
            blocked_id: Who is blocked.

        Returns:
            The new set.
        """
        return Blocks(self.pairs | {(blocker_id, blocked_id)})

    def without_block(self, blocker_id: str, blocked_id: str) -> Blocks:
        """Remove a block.

        Args:
            blocker_id: Who blocked.
            blocked_id: Who was blocked.

        Returns:
            The new set.
        """
        return Blocks(self.pairs - {(blocker_id, blocked_id)})


def _own_school_adult(view: DirectoryView, person: Person, adult: Person) -> bool:
    if adult.uai != person.uai or person.role not in (Role.PUPIL, Role.PARENT):
        return False
    if adult.role in (Role.STAFF, Role.DIRECTOR):
        return True
    if adult.role != Role.TEACHER:
        return False
    pupils = [person] if person.role == Role.PUPIL else view.children(person)
    return any(set(adult.classes) & set(p.classes) for p in pupils)


def may_block(view: DirectoryView, blocker: Person, blocked: Person, now: datetime) -> Decision:
    """Whether ``blocker`` may block ``blocked``.

    Args:
        view: Schools, policies and people (a parent's children).
        blocker: Who blocks.
        blocked: Who would be blocked.
        now: The instant (aware).

    Returns:
        Allowed, ``cannot_block_self`` or ``report_instead``.

    Raises:
        ModerationUsageError: ``now`` is naive.
    """
    require_aware(now)
    if blocker.id == blocked.id:
        return Decision.refuse(Reason.CANNOT_BLOCK_SELF)
    if _own_school_adult(view, blocker, blocked):
        return Decision.refuse(Reason.REPORT_INSTEAD)
    return ALLOWED
