"""May this person send in this conversation now, and how is it delivered (issue 5).

Checks, in order (the first failing one is the reason):

1. the sender takes part in messaging and is a member (``not_a_member``);
2. announcements are one-way: only owners send (``announcement_one_way``);
3. incident controls: a moderator's suspension of the person, a school, class
   or role suspension, closure of the school's pupil messaging
   (:class:`moderation.incidents.IncidentState`);
4. night closure of pupils' sending (:mod:`moderation.quiet_hours`);
5. the membership state still meets every rule (a second adult may have left
   the school since), :func:`moderation.conversations.check_conversation`.

Then, per recipient: :attr:`Delivery.DROP` if they blocked the sender (the
sender is not told), :attr:`Delivery.SILENT` in their quiet hours (the sender
is told), else :attr:`Delivery.NOTIFY`. Rate limits are a separate, stateful
step (:class:`moderation.rate_limits.RateLimiter`) taken after these checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from moderation.blocks import Blocks
from moderation.conversations import Conversation, ConversationKind, check_conversation
from moderation.directory import DirectoryView, participation, require_aware
from moderation.incidents import IncidentState
from moderation.quiet_hours import night_closed, quiet_delivery
from moderation.reasons import ALLOWED, Decision, Delivery, Reason
from storage.models import Person

__all__ = ["SendDecision", "may_send", "steady_until"]

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class SendDecision:
    """The decision on one send and, if allowed, each recipient's delivery.

    Attributes:
        decision: Allowed, or the refusal to send back.
        deliveries: Recipient person id to delivery (empty when refused).
    """

    decision: Decision
    deliveries: Mapping[str, Delivery] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        """Whether the message may be stored and relayed."""
        return self.decision.allowed

    @property
    def reason(self) -> Reason | None:
        """The refusal's reason, ``None`` when allowed."""
        return self.decision.reason

    def told_to_sender(self) -> dict[str, Delivery]:
        """What the sender may learn: the silent deliveries, never the dropped ones.

        Returns:
            Recipient id to :attr:`Delivery.SILENT`, for those in quiet hours.
        """
        return {p: d for p, d in self.deliveries.items() if d == Delivery.SILENT}


def _refused(reason: Reason) -> SendDecision:
    return SendDecision(Decision.refuse(reason))


def may_send(
    view: DirectoryView,
    sender: Person,
    conversation: Conversation,
    now: datetime,
    incidents: IncidentState | None = None,
    blocks: Blocks | None = None,
    membership: Decision | None = None,
) -> SendDecision:
    """Whether ``sender`` may send in ``conversation`` now, and how each member gets it.

    Args:
        view: Schools, policies and people.
        sender: Who sends.
        conversation: The conversation as it stands.
        now: The instant (aware).
        incidents: Incident controls in force (none by default).
        blocks: Blocks in force (none by default).
        membership: :func:`check_conversation` of this view and conversation,
            computed moments before (a server reuses it for a few seconds: it
            costs O(members²) in a group); computed here when None.

    Returns:
        The decision and, when allowed, a delivery for every other member.

    Raises:
        ModerationUsageError: naive ``now`` or a school missing from ``view``.
    """
    require_aware(now)
    incidents = incidents or IncidentState()
    blocks = blocks or Blocks()
    decision = participation(sender, now)
    if not decision:
        return SendDecision(decision)
    if conversation.member(sender.id) is None:
        return _refused(Reason.NOT_A_MEMBER)
    if conversation.kind == ConversationKind.ANNOUNCEMENT and sender.id not in conversation.owners:
        return _refused(Reason.ANNOUNCEMENT_ONE_WAY)
    reason = incidents.sending_refusal(sender, now)
    if reason is not None:
        return _refused(reason)
    if night_closed(view, sender, now):
        return _refused(Reason.NIGHT_CLOSURE)
    decision = membership if membership is not None else check_conversation(view, conversation, now)
    if not decision:
        return SendDecision(decision)
    deliveries = {
        m.id: Delivery.DROP if blocks.blocks(m.id, sender.id) else quiet_delivery(view, m, now)
        for m in conversation.members
        if m.id != sender.id
    }
    return SendDecision(ALLOWED, deliveries)


def steady_until(
    view: DirectoryView,
    sender: Person,
    conversation: Conversation,
    now: datetime,
    incidents: IncidentState | None = None,
) -> datetime | None:
    """Until when :func:`may_send` answers as it does at ``now``, its other inputs unchanged.

    Time enters :func:`may_send` through the sender's leaving date, the ends
    of the incident controls, and the recipients' quiet hours and the sender's
    night closure. A window whose bounds are whole minutes, in a zone whose
    offset from UTC is a whole number of minutes, cannot open or close inside a
    UTC minute (the weekend, too, starts at a local midnight). So the answer
    holds until the next UTC minute, or the leaving date or end of a suspension
    before it. A server may reuse one decision for a sender's sends until then.

    Args:
        view: Schools and policies.
        sender: Who sends.
        conversation: The conversation as it stands.
        now: The instant (aware).
        incidents: Incident controls in force (none by default).

    Returns:
        The first instant after ``now`` at which the answer may differ, or
        ``None`` when no promise can be made (a window bound with seconds, an
        offset with seconds): then every send is decided afresh.

    Raises:
        ModerationUsageError: naive ``now`` or a school missing from ``view``.
    """
    require_aware(now)
    schools = {sender.uai, *(m.uai for m in conversation.members)}
    for uai in schools:
        policy = view.policy(uai)
        for window in (policy.quiet_hours, policy.night_closure):
            for bound in (window.start, window.end):
                if bound.second or bound.microsecond:
                    return None
        offset = now.astimezone(view.zone(uai)).utcoffset()
        if offset is None or offset % _MINUTE:
            return None
    until = now.replace(second=0, microsecond=0) + _MINUTE
    ends = [sender.left_at, (incidents or IncidentState()).next_end(now)]
    return min([until, *(end for end in ends if end is not None and end > now)])
