"""The one place the server asks ``moderation/`` (issue 5; docs/moderation.md, "Server side").

Every conversation creation, membership change, send, directory listing and
block goes through :class:`ModerationGate`. For each action it builds a
:class:`moderation.DirectoryView` from the store (the schools of everyone
involved, their policies, and the children of any parent involved: an
incomplete view refuses more, never less), cached for that action only
(:class:`Lookup`), then maps the decision:

- a refused conversation change: HTTP 403 ``not_allowed`` with ``reason``
  (docs/moderation.md, "Reason codes"); nothing is stored;
- a refused send: an ``error`` frame ``not_allowed`` with ``reason``, or
  ``rate_limited`` with ``retry_after`` (seconds, rounded up);
- an allowed send: per recipient ``drop`` (blocked; the sender is not told),
  ``silent`` (quiet hours; the sender is told ``quiet_until``) or ``notify``.

Incident controls (:mod:`server.moderation_incidents`) are held as one
:class:`moderation.IncidentState` per node, rebuilt from the database whenever
a control changes anywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moderation import (
    Blocks,
    ContactPolicy,
    Conversation,
    ConversationKind,
    Decision,
    Delivery,
    DirectoryView,
    IncidentState,
    PolicyError,
    RateLimiter,
    Reason,
    SendDecision,
    check_conversation,
    may_add_member,
    may_remove_member,
    may_send,
    may_start,
    parse_policy,
    steady_until,
    visible_people,
    window_end,
)
from protocol import ErrorCode, ErrorFrame
from server.change_feed import ChangeFeed
from server.clock import Clock
from server.errors import ApiError
from server.metrics import Metrics
from server.node_cache import TtlCache
from storage import conversations as stored
from storage.database import Store
from storage.messages import NewMessage
from storage.models import Person, Role, School
from storage.moderation import PolicyRevision

if TYPE_CHECKING:  # the controls module imports this one
    from server.moderation_incidents import IncidentControls

MESSAGES: dict[Reason, str] = {
    Reason.NOT_A_PARTICIPANT: "This person does not take part in messaging.",
    Reason.PERSON_LEFT: "This person has left the school.",
    Reason.CONTACT_NOT_ALLOWED: "Your school does not allow messages between you and this person.",
    Reason.TEACHER_CHANNEL_REQUIRED: (
        "Pupils write to each other only in a channel run by a teacher."
    ),
    Reason.CROSS_SCHOOL: "This person is in another school.",
    Reason.SECOND_ADULT_REQUIRED: (
        "Add a second adult of the school (a teacher of the class, the director or a "
        "designated staff member)."
    ),
    Reason.LAST_SECOND_ADULT: (
        "This adult must stay: the pupil needs two adults of the school in the conversation."
    ),
    Reason.KIND_NOT_ALLOWED: "You cannot do this in this kind of conversation.",
    Reason.INVALID_MEMBERS: "Check the list of members.",
    Reason.NOT_A_MEMBER: "You are not in this conversation.",
    Reason.NOT_OWNER: "Only the conversation's owners can do this.",
    Reason.ANNOUNCEMENT_ONE_WAY: "This is an announcement: replies are not possible.",
    Reason.NIGHT_CLOSURE: "Messaging is closed at night; try again in the morning.",
    Reason.MESSAGING_CLOSED: "Your school has closed pupils' messaging for now.",
    Reason.SENDING_SUSPENDED: "Sending is suspended by your school for now.",
    Reason.PERSON_SUSPENDED: "Your sending is suspended for a period decided by your school.",
    Reason.RATE_LIMITED: "You are sending too fast; wait before sending again.",
    Reason.REPORT_INSTEAD: (
        "You cannot block this adult of your school; report the message instead."
    ),
    Reason.CANNOT_BLOCK_SELF: "You cannot block yourself.",
    Reason.NOT_MODERATOR: "Only your school's moderators can do this.",
}


def refusal(decision: Decision) -> ApiError:
    """The HTTP error for a refused decision: 403 ``not_allowed`` with its ``reason``.

    Args:
        decision: A refused decision.

    Returns:
        The error to raise.
    """
    reason = decision.reason or Reason.NOT_A_MEMBER
    return ApiError(ErrorCode.NOT_ALLOWED, MESSAGES[reason], reason=reason.value)


@dataclass(frozen=True)
class SendVerdict:
    """What the gate says about one send.

    Attributes:
        code: ``None`` when allowed, else the error code to answer.
        reason: The moderation reason of a refusal.
        message: The client message of a refusal.
        retry_after: Whole seconds to wait, for ``rate_limited``.
        deliveries: Recipient person id to delivery (allowed sends).
        quiet_until: The latest end of the quiet hours among silent recipients.
    """

    code: ErrorCode | None = None
    reason: Reason | None = None
    message: str = ""
    retry_after: float | None = None
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    quiet_until: datetime | None = None

    def persons(self, delivery: Delivery) -> frozenset[str]:
        """The recipients who get this delivery."""
        return self.by_delivery.get(delivery, frozenset())

    @cached_property
    def by_delivery(self) -> dict[Delivery, frozenset[str]]:
        """Recipients by delivery, worked out once: a verdict serves many sends."""
        found: dict[Delivery, set[str]] = {}
        for person, delivery in self.deliveries.items():
            found.setdefault(delivery, set()).add(person)
        return {delivery: frozenset(people) for delivery, people in found.items()}

    def error_frame(self, ref: str | None) -> ErrorFrame:
        """The ``error`` frame of a refused send."""
        code = self.code or ErrorCode.NOT_ALLOWED
        reason = self.reason.value if self.reason else None
        return ErrorFrame(
            code=code, message=self.message, ref=ref, retry_after=self.retry_after, reason=reason
        )

    def told(self) -> dict[str, Any]:
        """What the ``sent`` frame tells the sender: silent recipients, never dropped ones."""
        until = int(self.quiet_until.timestamp() * 1000) if self.quiet_until else None
        return {"silent_to": sorted(self.persons(Delivery.SILENT)), "quiet_until": until}

    def applied(self, message: NewMessage, owners: Mapping[str, str]) -> NewMessage:
        """The message without the devices of recipients who blocked the sender.

        Args:
            message: The message as sent.
            owners: Recipient device id to person id.

        Returns:
            The message to store: dropped devices removed, silent ones marked.
        """
        dropped = self.persons(Delivery.DROP)
        silent = self.persons(Delivery.SILENT)
        if not dropped and not silent:
            return message
        keep = {d for d, p in owners.items() if p not in dropped}
        return replace(
            message,
            pairwise={d: c for d, c in message.pairwise.items() if d in keep},
            group_devices=tuple(d for d in message.group_devices if d in keep),
            silent_devices=tuple(sorted(d for d in keep if owners[d] in silent)),
        )


class NodeCache:
    """What every send reads, kept a few seconds per node (``server.node_cache``).

    People, schools, policy revisions and blockers change rarely; reading them
    from the database on every send was most of a send's cost. A change made
    through this node (policy revision, block, directory import) forgets the
    entry at once; a change made anywhere forgets it on every node through the
    change feed (:meth:`ModerationGate.follow`); entries live at most
    :data:`CACHE_SECONDS` should the feed miss one.
    """

    def __init__(self) -> None:
        self.people: TtlCache[str, Person] = TtlCache(CACHE_SECONDS, gather=True)
        self.schools: TtlCache[str, School] = TtlCache(CACHE_SECONDS)
        self.blockers: TtlCache[str, frozenset[str]] = TtlCache(CACHE_SECONDS, gather=True)
        self.generation = 0
        """Raised by every forget: what was built from older entries is stale."""

    def forget_people(self) -> None:
        self.generation += 1
        self.people.clear()

    def forget_schools(self) -> None:
        self.generation += 1
        self.schools.clear()

    def forget_blockers(self, blocked: str) -> None:
        self.generation += 1
        self.blockers.forget(blocked)

    def forget_all_blockers(self) -> None:
        self.generation += 1
        self.blockers.clear()

    def clear(self) -> None:
        self.generation += 1
        for cache in (self.people, self.schools, self.blockers):
            cache.clear()


CACHE_SECONDS = 30.0
"""A backstop: changes reach every node's caches through its change feed within ms."""
CONTEXT_SECONDS = 5.0
"""How long a :class:`SendContext` is reused at most (it is dropped at once when a
cache it was built from forgets anything): a missed change lives at most
:data:`CACHE_SECONDS` + this on a node."""
MAX_CONTEXTS = 50_000
"""(sender, conversation) contexts a node keeps (all dropped when full)."""


class Lookup:
    """Directory reads for one action, each done once (schools, policies, people)."""

    def __init__(
        self, store: Store, policies: PolicyCache, shared: NodeCache | None = None
    ) -> None:
        self._store = store
        self._policies = policies
        self._shared = shared or NodeCache()
        self.people: dict[str, Person] = {}
        self._schools: dict[str, School] = {}

    async def load(self, person_ids: Iterable[str]) -> dict[str, Person]:
        """The people with these ids that exist (from cache or one query)."""
        ids = list(dict.fromkeys(person_ids))
        wanted = [i for i in ids if i not in self.people]
        if wanted:
            self.people.update(await self._shared.people.get_many(wanted, self._read_people))
        return {i: self.people[i] for i in ids if i in self.people}

    async def _read_people(self, ids: list[str]) -> dict[str, Person]:
        return {p.id: p for p in await self._store.directory.people(ids)}

    async def view(self, involved: Iterable[Person]) -> DirectoryView:
        """A view with everyone involved, the children of parents, schools and policies."""
        involved = list(involved)
        for person in involved:
            self.people.setdefault(person.id, person)
        children = [c for p in involved if p.role == Role.PARENT for c in p.children]
        await self.load(children)
        uais = {p.uai for p in self.people.values()}
        for uai in uais - set(self._schools):
            school = await self._shared.schools.get(uai, self._store.directory.school)
            self._schools[uai] = school or School(uai=uai, name=uai)
        policies = {uai: await self._policies.get(uai) for uai in uais}
        return DirectoryView(schools=dict(self._schools), policies=policies, people=self.people)


class PolicyCache:
    """Parsed policies by (school, version); the version is read on every action."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._parsed: dict[tuple[str, int], ContactPolicy] = {}
        self._revisions: TtlCache[str, PolicyRevision] = TtlCache(CACHE_SECONDS)
        self.generation = 0
        """Raised by every forget (see :attr:`NodeCache.generation`)."""

    def forget(self, uai: str) -> None:
        """A revision was stored through this node: read it on the next action."""
        self.generation += 1
        self._revisions.forget(uai)

    def clear(self) -> None:
        self.generation += 1
        self._revisions.clear()

    async def get(self, uai: str) -> ContactPolicy:
        """The school's current policy (defaults when it has none).

        Raises:
            PolicyError: a stored revision no longer parses (never stored so).
        """
        revision = await self._revisions.get(uai, self._store.moderation.policies.current)
        if revision is None:
            return ContactPolicy()
        key = (uai, revision.version)
        if key not in self._parsed:
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[key] = parse_policy(revision.document, "json")
        return self._parsed[key]


def _forgetting(forget: Callable[[], None]) -> Callable[[dict[str, Any]], Awaitable[None]]:
    async def handler(change: dict[str, Any]) -> None:
        forget()

    return handler


def as_moderated(conversation: stored.Conversation, people: dict[str, Person]) -> Conversation:
    """The stored conversation as ``moderation`` sees it (direct ones have no owner).

    Members missing from the directory (erased) are left out.
    """
    members = tuple(people[m] for m in conversation.members if m in people)
    present = {m.id for m in members}
    kind = ConversationKind(conversation.kind.value)
    owners = frozenset() if kind == ConversationKind.DIRECT else frozenset(conversation.owners)
    return Conversation(kind, members, owners & present)


class SteadyVerdict:
    """One sender's last allowed verdict in one conversation, and how long it holds.

    ``may_send`` and the quiet-window ends told to the sender only change with
    the time at the instants :func:`moderation.steady_until` names (the next
    UTC minute at the latest), or with the incident controls: the verdict is
    reused until the first of those, for the same :class:`IncidentState`.
    Deciding afresh was about a quarter of a send's server time under load
    (docs/performance.md, session 5).
    """

    def __init__(self) -> None:
        self._held: tuple[IncidentState, datetime, datetime, SendVerdict] | None = None

    def get(self, incidents: IncidentState, now: datetime) -> SendVerdict | None:
        """The verdict decided earlier, if it holds at ``now`` under ``incidents``."""
        held = self._held
        if held is None or held[0] is not incidents or not held[1] <= now < held[2]:
            return None
        return held[3]

    def keep(
        self, incidents: IncidentState, now: datetime, until: datetime | None, verdict: SendVerdict
    ) -> None:
        """Reuse ``verdict`` from ``now`` until ``until`` (never if ``None``)."""
        self._held = None if until is None else (incidents, now, until, verdict)


@dataclass(frozen=True)
class SendContext:
    """Everything a send decision reads except the time, for one sender in one conversation.

    Built from the node's caches (people, schools, policies, blockers) and
    reused for the next sends of that sender there while none of those caches
    forgot anything (their ``generation``), the conversation is the same
    (members, owners, kind) and it is younger than :data:`CONTEXT_SECONDS`.
    Rebuilding it was most of a send's server time (docs/performance.md).
    Rules that depend on the date (a person's leaving date) are thus applied
    within :data:`CONTEXT_SECONDS` of it; the time of day (quiet hours, night
    closure) and incidents are checked on every send, through
    :class:`SteadyVerdict` for as long as they cannot change the answer.
    """

    conversation: stored.Conversation
    generation: tuple[int, int]
    made: float
    people: dict[str, Person]
    sender: Person | None
    view: DirectoryView
    state: Conversation
    blocks: Blocks
    membership: Decision
    """``check_conversation`` of ``view`` and ``state`` when the context was made:
    the membership rules (contacts, second adult) do not change from one send
    to the next, only with the people, policies or members above."""
    steady: SteadyVerdict = field(default_factory=SteadyVerdict)
    """The last allowed verdict, reused while ``moderation.steady_until`` says it holds."""

    def fits(self, conversation: stored.Conversation, generation: tuple[int, int]) -> bool:
        """Still valid for a send to ``conversation`` (time checked by the caller)."""
        if self.generation != generation:
            return False
        known = self.conversation
        return known is conversation or (
            known.members == conversation.members
            and known.owners == conversation.owners
            and known.kind == conversation.kind
        )


class ModerationGate:
    """Asks ``moderation/`` on behalf of the server; one per node.

    Args:
        store: The repositories.
        clock: The node's clock (tests freeze it).
        metrics: Where refusals and deliveries are counted.
        monotonic: Seconds for the age of cached send contexts (tests step it).
    """

    controls: IncidentControls
    """The node's incident controls and sessions (set by ``moderation_context``)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        metrics: Metrics,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._monotonic = monotonic
        self.policies = PolicyCache(store)
        self.cache = NodeCache()
        self.incidents = IncidentState()
        empty = IncidentState()
        self._pruned: tuple[IncidentState, IncidentState, datetime, datetime | None] = (
            empty,  # the controls it was pruned from (not self.incidents: pruned on first use)
            empty,
            datetime.min.replace(tzinfo=UTC),
            None,
        )
        """(controls, the same pruned, when, the next end of a suspension among them)."""
        self.limiter = RateLimiter(DirectoryView(schools={}))
        self._contexts: dict[tuple[str, str], SendContext] = {}

    def follow(self, feed: ChangeFeed) -> None:
        """Forget cached directory, blocks and policies when any node changes them."""
        for collection, forget in (
            ("people", self.cache.forget_people),
            ("schools", self.cache.forget_schools),
            ("blocks", self.cache.forget_all_blockers),
            ("school_policies", self.policies.clear),
        ):
            feed.subscribe(collection, _forgetting(forget))
        feed.on_open(self._forget_all)

    async def _forget_all(self) -> None:
        self.cache.clear()
        self.policies.clear()

    def lookup(self) -> Lookup:
        """A fresh per-action cache of directory reads."""
        return Lookup(self.store, self.policies, self.cache)

    async def _blockers(self, sender_id: str, among: list[str]) -> list[str]:
        """Who among ``among`` blocked the sender (cached per node, see NodeCache)."""
        everyone = await self.cache.blockers.get_one(sender_id, self._read_blockers)
        return [b for b in among if everyone is not None and b in everyone]

    async def _read_blockers(self, sender_ids: list[str]) -> dict[str, frozenset[str]]:
        found = await self.store.moderation.blocks.blockers_of_many(sender_ids)
        return {sender: frozenset(found.get(sender, ())) for sender in sender_ids}

    def _count(self, action: str, decision: Decision) -> Decision:
        if decision.reason is not None:
            self.metrics.moderation_refusals.labels(action, decision.reason.value).inc()
        return decision

    # --- conversations ------------------------------------------------------------

    async def check_start(
        self, me: Person, members: Sequence[str], kind: stored.ConversationKind
    ) -> None:
        """Refuse a creation the policy forbids (``may_start``).

        Raises:
            ApiError: 403 ``not_allowed`` with the reason.
        """
        lookup = self.lookup()
        people = await lookup.load([m for m in members if m != me.id])
        view = await lookup.view([me, *people.values()])
        now = self.clock.now()
        decision = may_start(view, me, people.values(), ConversationKind(kind.value), now)
        if not self._count("create", decision):
            raise refusal(decision)

    async def _state(
        self, me: Person, conversation: stored.Conversation, extra: Sequence[Person] = ()
    ) -> tuple[DirectoryView, Conversation]:
        lookup = self.lookup()
        people = await lookup.load(conversation.members)
        view = await lookup.view([me, *people.values(), *extra])
        return view, as_moderated(conversation, people)

    async def check_add(self, me: Person, conversation: stored.Conversation, new: Person) -> None:
        """Refuse an addition the policy forbids (``may_add_member``).

        Raises:
            ApiError: 403 ``not_allowed`` with the reason.
        """
        view, state = await self._state(me, conversation, [new])
        decision = may_add_member(view, me, state, new, self.clock.now())
        if not self._count("add_member", decision):
            raise refusal(decision)

    async def check_remove(
        self, me: Person, conversation: stored.Conversation, removed: str
    ) -> None:
        """Refuse a removal or leave that breaks a rule (``may_remove_member``).

        Raises:
            ApiError: 403 ``not_allowed`` with the reason (``last_second_adult``...).
        """
        view, state = await self._state(me, conversation)
        decision = may_remove_member(view, me, state, removed, self.clock.now())
        if not self._count("remove_member", decision):
            raise refusal(decision)

    # --- directory and blocks ---------------------------------------------------

    async def visible(self, me: Person, candidates: Sequence[Person]) -> list[Person]:
        """The candidates ``me`` may reach (``visible_people``)."""
        lookup = self.lookup()
        view = await lookup.view([me, *candidates])
        return visible_people(view, me, candidates, self.clock.now())

    # --- sending ----------------------------------------------------------------

    async def send_context(self, sender_id: str, conversation: stored.Conversation) -> SendContext:
        """The cached :class:`SendContext` of this sender there, built on a miss."""
        generation = (self.cache.generation, self.policies.generation)
        key = (sender_id, conversation.id)
        known = self._contexts.get(key)
        made = self._monotonic()
        if (
            known is not None
            and made - known.made < CONTEXT_SECONDS
            and known.fits(conversation, generation)
        ):
            return known
        lookup = self.lookup()
        people = await lookup.load(conversation.members)
        sender = people.get(sender_id)
        view = await lookup.view(people.values())
        blockers = await self._blockers(sender_id, list(people)) if sender else []
        state = as_moderated(conversation, people)
        context = SendContext(
            conversation=conversation,
            generation=generation,
            made=made,
            people=people,
            sender=sender,
            view=view,
            state=state,
            blocks=Blocks(frozenset((b, sender_id) for b in blockers)),
            membership=check_conversation(view, state, self.clock.now()),
        )
        if (
            self.cache.generation,
            self.policies.generation,
        ) == generation:  # nothing forgot meanwhile
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts.clear()
            self._contexts[key] = context
        return context

    async def check_send(self, sender_id: str, conversation: stored.Conversation) -> SendVerdict:
        """Decide a send: refusal, or each recipient's delivery (``may_send``, then rates).

        Blocks are read for this sender among the members; the rate limiter is
        only consulted (and charged) for a send every other rule allows.
        """
        now = self.clock.now()
        context = await self.send_context(sender_id, conversation)
        sender, view = context.sender, context.view
        if sender is None:
            return SendVerdict(
                ErrorCode.NOT_ALLOWED, Reason.NOT_A_MEMBER, MESSAGES[Reason.NOT_A_MEMBER]
            )
        incidents = self._incidents_at(now)
        verdict = context.steady.get(incidents, now)
        if verdict is None:
            decision = may_send(
                view, sender, context.state, now, incidents, context.blocks, context.membership
            )
            if decision.reason is not None:
                self._count("send", decision.decision)
                return SendVerdict(
                    ErrorCode.NOT_ALLOWED, decision.reason, MESSAGES[decision.reason]
                )
            verdict = self._allowed(context, decision, now)
            until = steady_until(view, sender, context.state, now, incidents)
            context.steady.keep(incidents, now, until, verdict)
        self.limiter.view = view  # the limiter reads the current policies on each check
        rate = self.limiter.check(sender, now)
        if not rate.allowed:
            self._count("send", Decision.refuse(Reason.RATE_LIMITED))
            wait = float(math.ceil(rate.retry_after))
            message = f"You are sending too fast; wait {wait:.0f} seconds."
            return SendVerdict(ErrorCode.RATE_LIMITED, Reason.RATE_LIMITED, message, wait)
        for delivery, people in verdict.by_delivery.items():
            self.metrics.count(self.metrics.moderation_deliveries, delivery.value, len(people))
        return verdict

    def _allowed(self, context: SendContext, decision: SendDecision, now: datetime) -> SendVerdict:
        """The verdict of an allowed send: each recipient's delivery, and until when
        those the sender is told of are in quiet hours (the latest end)."""
        quiet_until = None
        for person_id in decision.told_to_sender():
            recipient = context.people[person_id]
            quiet = context.view.policy(recipient.uai).quiet_hours
            end = window_end(quiet, context.view.zone(recipient.uai), now)
            if end is not None and (quiet_until is None or end > quiet_until):
                quiet_until = end
        return SendVerdict(deliveries=dict(decision.deliveries), quiet_until=quiet_until)

    def _incidents_at(self, now: datetime) -> IncidentState:
        """The incident controls in force at ``now``: ended suspensions dropped, once
        when one ends rather than on every send (the same object in between, so
        that :class:`SteadyVerdict` can tell it has not changed)."""
        source, pruned, at, next_end = self._pruned
        if source is not self.incidents or now < at or (next_end is not None and now >= next_end):
            pruned = self.incidents.expired_removed(now)
            self._pruned = (self.incidents, pruned, now, pruned.next_end(now))
        return pruned

    def prune(self) -> None:
        """Forget full rate-limit buckets (memory bounded by active senders)."""
        self.limiter.prune(self.clock.now())


__all__ = [
    "MESSAGES",
    "Lookup",
    "ModerationGate",
    "PolicyCache",
    "PolicyError",
    "SendContext",
    "SendVerdict",
    "as_moderated",
    "refusal",
]

GATE = web.AppKey("moderation_gate", ModerationGate)
"""The node's moderation gate (set by ``server.moderation_incidents.moderation_context``)."""
