"""Decisions and their documented reason codes (docs/moderation.md, "Reason codes").

Every decision function of :mod:`moderation` returns a :class:`Decision`: allowed,
or refused with one :class:`Reason`. Reasons are part of the protocol: ``server/``
sends the code to the client, which shows the message documented for it. A
refusal caused by a block is never sent to the blocked sender (DESIGN.md,
"Moderation": the sender is not told details); it appears only as
:attr:`Delivery.DROP` for that recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ALLOWED", "Decision", "Delivery", "Reason"]


class Reason(StrEnum):
    """Why an action was refused; each has a documented client message."""

    NOT_A_PARTICIPANT = "not_a_participant"
    """A DPO or operator is involved: they are not messaging participants."""
    PERSON_LEFT = "person_left"
    """A person involved has left the school."""
    CONTACT_NOT_ALLOWED = "contact_not_allowed"
    """The school's contact policy does not let these two people talk."""
    TEACHER_CHANNEL_REQUIRED = "teacher_channel_required"
    """Pupils talk to each other only in a channel a school adult owns."""
    CROSS_SCHOOL = "cross_school"
    """The two people are in schools that do not both allow the contact."""
    SECOND_ADULT_REQUIRED = "second_adult_required"
    """A pupil and an adult need a second school adult in the conversation."""
    LAST_SECOND_ADULT = "last_second_adult"
    """The change would remove the last second school adult of a pupil."""
    KIND_NOT_ALLOWED = "kind_not_allowed"
    """This person may not create this kind of conversation, or the kind forbids it."""
    INVALID_MEMBERS = "invalid_members"
    """The member list does not fit the kind (e.g. a direct conversation of three)."""
    NOT_A_MEMBER = "not_a_member"
    """The actor is not a member of the conversation."""
    NOT_OWNER = "not_owner"
    """Only an owner of the conversation may do this."""
    ANNOUNCEMENT_ONE_WAY = "announcement_one_way"
    """Only the owners of an announcement write in it."""
    NIGHT_CLOSURE = "night_closure"
    """Pupils' messaging is closed at this hour in the school's time zone."""
    MESSAGING_CLOSED = "messaging_closed"
    """An incident control closed pupils' messaging in this school."""
    SENDING_SUSPENDED = "sending_suspended"
    """An incident control suspended sending for the school, a class or a role."""
    PERSON_SUSPENDED = "person_suspended"
    """A moderator suspended this person's sending for a period."""
    RATE_LIMITED = "rate_limited"
    """Too many messages; retry after ``retry_after`` seconds."""
    REPORT_INSTEAD = "report_instead"
    """One cannot block one's own teachers or school staff; report the message instead."""
    CANNOT_BLOCK_SELF = "cannot_block_self"
    """A person cannot block themselves."""
    NOT_MODERATOR = "not_moderator"
    """Only the director and designated moderators of the school may moderate."""


class Delivery(StrEnum):
    """How one recipient gets a message that was allowed."""

    NOTIFY = "notify"
    """Delivered with a notification."""
    SILENT = "silent"
    """Stored and delivered without notification (quiet hours); the sender is told."""
    DROP = "drop"
    """Not delivered (the recipient blocked the sender); the sender is not told."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An allowed action, or a refused one with its reason.

    Attributes:
        reason: ``None`` when allowed.
    """

    reason: Reason | None = None

    @property
    def allowed(self) -> bool:
        """Whether the action may proceed."""
        return self.reason is None

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def refuse(cls, reason: Reason) -> Decision:
        """A refusal.

        Args:
            reason: The documented reason.

        Returns:
            The decision.
        """
        return cls(reason)


ALLOWED = Decision()
"""The one allowed decision."""
