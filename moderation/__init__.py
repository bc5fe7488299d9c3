"""Carnet moderation: pure decisions for a school's messaging (issue 5, docs/moderation.md).

Pupils are minors (RGPD art. 8 and recital 38: specific protection of
children's data and of their exchanges). This package decides, from data
handed in, who may talk to whom, when, how often, and what happens to reports;
``server/`` enforces the decisions on every conversation creation, membership
change and send. No I/O, no asyncio, no clock: every time is a timezone-aware
``datetime`` passed in.

Modules::

    policy         ContactPolicy document (JSON/TOML), defaults, validation
    directory      DirectoryView, may_reach (the contact relation), visible_people
    conversations  membership rules and the second-adult rule
    quiet_hours    quiet hours (silent delivery) and pupils' night closure
    sending        may_send: incidents, night closure, blocks, quiet hours
    rate_limits    TokenBucket, RateLimiter (person, role, school)
    blocks         Blocks, may_block
    reports        report state machine, franking proof, who moderates
    incidents      IncidentState: suspensions, closures, log-out-all
    reasons        Decision, Reason (documented codes), Delivery
    errors         exception tree::

        ModerationError              root; carries ``status_hint``
        ├── PolicyError              invalid policy document (names the field)
        ├── IllegalTransition        a report move the table forbids
        └── ModerationUsageError     the library was called wrongly (our bug)
"""

from moderation.blocks import Blocks, may_block
from moderation.conversations import (
    Conversation,
    ConversationKind,
    check_conversation,
    may_add_member,
    may_remove_member,
    may_start,
    missing_second_adults,
    second_adults,
)
from moderation.directory import DirectoryView, may_reach, visible_people
from moderation.errors import (
    IllegalTransition,
    ModerationError,
    ModerationUsageError,
    PolicyError,
)
from moderation.incidents import IncidentState, Suspension, SuspensionScope
from moderation.policy import (
    DEFAULT_POLICY,
    BucketSpec,
    ContactPolicy,
    NightClosure,
    PupilPeers,
    QuietHours,
    RateLimitPolicy,
    parse_policy,
)
from moderation.quiet_hours import in_window, night_closed, quiet_delivery, window_end
from moderation.rate_limits import RateDecision, RateLevel, RateLimiter, TokenBucket
from moderation.reasons import ALLOWED, Decision, Delivery, Reason
from moderation.reports import (
    TRANSITIONS,
    Proof,
    ReportCase,
    ReportState,
    advance,
    may_moderate,
    verify_proof,
)
from moderation.sending import SendDecision, may_send, steady_until

__all__ = [
    "ALLOWED",
    "DEFAULT_POLICY",
    "TRANSITIONS",
    "Blocks",
    "BucketSpec",
    "ContactPolicy",
    "Conversation",
    "ConversationKind",
    "Decision",
    "Delivery",
    "DirectoryView",
    "IllegalTransition",
    "IncidentState",
    "ModerationError",
    "ModerationUsageError",
    "NightClosure",
    "PolicyError",
    "Proof",
    "PupilPeers",
    "QuietHours",
    "RateDecision",
    "RateLevel",
    "RateLimitPolicy",
    "RateLimiter",
    "Reason",
    "ReportCase",
    "ReportState",
    "SendDecision",
    "Suspension",
    "SuspensionScope",
    "TokenBucket",
    "advance",
    "check_conversation",
    "in_window",
    "may_add_member",
    "may_block",
    "may_moderate",
    "may_reach",
    "may_remove_member",
    "may_send",
    "may_start",
    "missing_second_adults",
    "night_closed",
    "parse_policy",
    "quiet_delivery",
    "second_adults",
    "steady_until",
    "verify_proof",
    "visible_people",
    "window_end",
]
