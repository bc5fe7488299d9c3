"""Token buckets per person, per role and per school (issue 5, "Rate limits").

A :class:`TokenBucket` holds ``capacity`` tokens and regains
``refill_per_second``; a send takes one. Pure: the caller hands in the time, so
tests are exact. :class:`RateLimiter` keeps one bucket per person, one per
(school, role) shared by everyone of that role, and one per school, sized by the
school's policy (``rate_limits``; defaults in docs/moderation.md: pupils far
stricter than staff). A send passes only if all three levels have a token; then
it takes one from each, so a refused send costs nothing. The answer carries
``retry_after`` seconds for the ``rate_limited`` error frame.

Buckets live in the memory of one node: with N nodes a person can reach N
times the per-person rate at worst. A full bucket is the same as no bucket, so
:meth:`RateLimiter.prune` drops them and memory stays bounded by the people
active within one refill period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from moderation.directory import DirectoryView, require_aware
from moderation.errors import ModerationUsageError
from moderation.policy import BucketSpec
from storage.models import Person

__all__ = ["RateDecision", "RateLevel", "RateLimiter", "TokenBucket"]


class TokenBucket:
    """One token bucket; starts full.

    Args:
        capacity: Maximum tokens (the burst).
        refill_per_second: Tokens regained per second.

    Raises:
        ModerationUsageError: non-positive capacity or rate.
    """

    def __init__(self, capacity: float, refill_per_second: float) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            raise ModerationUsageError("token bucket needs a positive capacity and rate")
        self.capacity = capacity
        self.refill_per_second = refill_per_second
        self.tokens = float(capacity)
        self._at: float | None = None
        """POSIX seconds of the last refill."""

    def __repr__(self) -> str:
        return f"<TokenBucket {self.tokens:g}/{self.capacity:g} +{self.refill_per_second:g}/s>"

    def _refill(self, seconds: float) -> None:
        """Add what was regained up to ``seconds`` (POSIX time; a clock going back
        refills nothing)."""
        at = self._at
        if at is None or seconds > at:
            if at is not None:
                gained = (seconds - at) * self.refill_per_second
                self.tokens = min(self.capacity, self.tokens + gained)
            self._at = seconds

    def wait_at(self, seconds: float, cost: float = 1) -> float:
        """:meth:`retry_after` at ``seconds`` (POSIX time): :meth:`RateLimiter.check`
        converts the time once per send, not once per bucket.

        Raises:
            ModerationUsageError: ``cost`` exceeds the capacity (never possible).
        """
        if cost > self.capacity:
            raise ModerationUsageError("cost larger than the bucket")
        self._refill(seconds)
        return max(0.0, (cost - self.tokens) / self.refill_per_second)

    def retry_after(self, now: datetime, cost: float = 1) -> float:
        """Seconds until ``cost`` tokens are available (0 if they are now).

        Args:
            now: The instant (aware).
            cost: Tokens wanted.

        Returns:
            The wait in seconds.

        Raises:
            ModerationUsageError: ``cost`` exceeds the capacity (never possible).
        """
        require_aware(now)
        return self.wait_at(now.timestamp(), cost)

    def take(self, now: datetime, cost: float = 1) -> tuple[bool, float]:
        """Take ``cost`` tokens if available.

        Args:
            now: The instant (aware).
            cost: Tokens wanted.

        Returns:
            ``(allowed, retry_after)``: ``(True, 0.0)``, or ``(False, seconds to wait)``.

        Raises:
            ModerationUsageError: ``cost`` exceeds the capacity.
        """
        wait = self.retry_after(now, cost)
        if wait > 0:
            return False, wait
        self.tokens -= cost
        return True, 0.0

    def resized(self, capacity: float, refill_per_second: float) -> TokenBucket:
        """A bucket of another size that keeps this one's tokens (at most the new capacity).

        Args:
            capacity: The new capacity.
            refill_per_second: The new rate.

        Returns:
            The new bucket.

        Raises:
            ModerationUsageError: non-positive capacity or rate.
        """
        bucket = TokenBucket(capacity, refill_per_second)
        bucket.tokens, bucket._at = min(capacity, self.tokens), self._at
        return bucket

    def is_full(self, now: datetime) -> bool:
        """Whether the bucket is back to capacity (then it can be forgotten).

        Args:
            now: The instant (aware).

        Returns:
            Whether it is full.
        """
        require_aware(now)
        self._refill(now.timestamp())
        return self.tokens >= self.capacity


class RateLevel(StrEnum):
    """Which bucket refused."""

    PERSON = "person"
    ROLE = "role"
    SCHOOL = "school"


@dataclass(frozen=True)
class RateDecision:
    """A rate-limit answer.

    Attributes:
        allowed: Whether the send may go on.
        retry_after: Seconds to wait (0 when allowed); the longest of the full levels.
        level: The level that refused, if any.
    """

    allowed: bool
    retry_after: float = 0.0
    level: RateLevel | None = None


_ALLOWED = RateDecision(True)


class RateLimiter:
    """Buckets per person, per (school, role) and per school, sized by each policy.

    Args:
        view: Schools and policies (read on every call, so policy edits apply).
    """

    def __init__(self, view: DirectoryView) -> None:
        self.view = view
        self._buckets: dict[tuple[str, ...], tuple[BucketSpec, TokenBucket]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, key: tuple[str, ...], spec: BucketSpec) -> TokenBucket:
        held = self._buckets.get(key)
        if held is not None and (held[0] is spec or held[0] == spec):
            return held[1]
        if held is None:
            bucket = TokenBucket(spec.capacity, spec.refill_per_second)
        else:  # the policy changed: keep what was used, within the new size
            bucket = held[1].resized(spec.capacity, spec.refill_per_second)
        self._buckets[key] = (spec, bucket)
        return bucket

    def check(self, sender: Person, now: datetime, cost: int = 1) -> RateDecision:
        """Take one send's tokens from every level, or none if any level is short.

        Args:
            sender: Who sends.
            now: The instant (aware).
            cost: Tokens per send (e.g. 1; an attachment may cost more).

        Returns:
            The decision with ``retry_after``.

        Raises:
            ModerationUsageError: naive ``now`` or cost larger than a bucket.
        """
        limits = self.view.policy(sender.uai).rate_limits
        levels: list[tuple[RateLevel, TokenBucket]] = []
        person_spec = limits.person.get(sender.role)
        if person_spec is not None:
            levels.append((RateLevel.PERSON, self._bucket(("p", sender.id), person_spec)))
        role_spec = limits.role.get(sender.role)
        if role_spec is not None:
            key = ("r", sender.uai, sender.role.value)
            levels.append((RateLevel.ROLE, self._bucket(key, role_spec)))
        levels.append((RateLevel.SCHOOL, self._bucket(("s", sender.uai), limits.school)))
        require_aware(now)
        seconds = now.timestamp()
        longest, refused = 0.0, None
        for level, bucket in levels:
            wait = bucket.wait_at(seconds, cost)
            if wait > longest:
                longest, refused = wait, level
        if refused is not None:
            return RateDecision(False, longest, refused)
        for _, bucket in levels:
            bucket.tokens -= cost
        return _ALLOWED

    def prune(self, now: datetime) -> int:
        """Forget full buckets (indistinguishable from new ones).

        Args:
            now: The instant (aware).

        Returns:
            How many were dropped.
        """
        full = [k for k, (_, bucket) in self._buckets.items() if bucket.is_full(now)]
        for key in full:
            del self._buckets[key]
        return len(full)
