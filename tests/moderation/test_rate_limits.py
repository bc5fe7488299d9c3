"""Token buckets with injected times, and the three-level rate limiter."""

from __future__ import annotations

from datetime import timedelta

import pytest

from moderation import (
    DEFAULT_POLICY,
    ContactPolicy,
    DirectoryView,
    ModerationUsageError,
    RateLevel,
    RateLimiter,
    TokenBucket,
)
from storage.models import Role
from tests.moderation.cast import NOW, P5A, P5A2, P5B, SCHOOLS, STAFF, T5A, TB


def test_bucket_is_exact() -> None:
    bucket = TokenBucket(3, 0.5)
    assert [bucket.take(NOW) for _ in range(3)] == [(True, 0.0)] * 3
    assert bucket.take(NOW) == (False, 2.0)
    assert bucket.take(NOW + timedelta(seconds=1)) == (False, 1.0)
    assert bucket.take(NOW + timedelta(seconds=2)) == (True, 0.0)
    assert bucket.take(NOW + timedelta(seconds=2)) == (False, 2.0)
    assert bucket.take(NOW + timedelta(hours=1)) == (True, 0.0)
    assert bucket.tokens == 2  # refilled to capacity (3), not beyond, then one taken


def test_clock_going_back_refills_nothing() -> None:
    bucket = TokenBucket(1, 1)
    assert bucket.take(NOW + timedelta(seconds=10)) == (True, 0.0)
    assert bucket.take(NOW) == (False, 1.0)
    assert bucket.take(NOW + timedelta(seconds=11)) == (True, 0.0)


def test_bucket_misuse() -> None:
    with pytest.raises(ModerationUsageError):
        TokenBucket(0, 1)
    with pytest.raises(ModerationUsageError):
        TokenBucket(1, 0)
    with pytest.raises(ModerationUsageError):
        TokenBucket(2, 1).take(NOW, cost=3)


def test_default_pupils_are_far_stricter_than_staff() -> None:
    limits = DEFAULT_POLICY.rate_limits
    pupil, staff = limits.person[Role.PUPIL], limits.person[Role.STAFF]
    assert pupil.capacity * 10 <= staff.capacity and pupil.per_minute * 10 <= staff.per_minute
    assert limits.person[Role.PARENT].per_minute < limits.person[Role.TEACHER].per_minute


def _limiter(**school: object) -> RateLimiter:
    policy = ContactPolicy.model_validate(
        {
            "rate_limits": {
                "person": {"pupil": {"capacity": 2, "per_minute": 60}},
                "role": {"pupil": {"capacity": 3, "per_minute": 30}},
                "school": school or {"capacity": 100, "per_minute": 60},
            }
        }
    )
    return RateLimiter(DirectoryView(SCHOOLS, {P5A.uai: policy}))


def test_person_role_and_school_levels() -> None:
    limiter = _limiter()
    assert limiter.check(P5A, NOW).allowed and limiter.check(P5A, NOW).allowed
    refused = limiter.check(P5A, NOW)
    assert (refused.allowed, refused.retry_after, refused.level) == (False, 1.0, RateLevel.PERSON)
    assert limiter.check(P5A2, NOW).allowed  # third pupil message of the school
    refused = limiter.check(P5B, NOW)  # the role bucket (3) is empty
    assert (refused.allowed, refused.retry_after, refused.level) == (False, 2.0, RateLevel.ROLE)
    assert limiter.check(T5A, NOW).allowed  # roles without a bucket: only the school level
    assert limiter.check(TB, NOW).allowed  # another school, default limits


def test_refused_send_costs_nothing_and_longest_wait_wins() -> None:
    limiter = _limiter()
    limiter.check(P5A, NOW), limiter.check(P5A, NOW), limiter.check(P5A2, NOW)
    # P5A: person empty (1 s) and role empty (2 s): the answer is the longer wait.
    refused = limiter.check(P5A, NOW)
    assert (refused.retry_after, refused.level) == (2.0, RateLevel.ROLE)
    # After 2 s: P5A regained 2 person tokens, the role 1; the refusal took none.
    later = NOW + timedelta(seconds=2)
    assert limiter.check(P5A, later).allowed
    assert limiter.check(P5A2, later).level == RateLevel.ROLE


def test_school_level() -> None:
    limiter = _limiter(capacity=1, per_minute=6)
    assert limiter.check(STAFF, NOW).allowed
    refused = limiter.check(T5A, NOW)
    assert (refused.retry_after, refused.level) == (10.0, RateLevel.SCHOOL)


def test_prune_forgets_full_buckets_only() -> None:
    limiter = _limiter()
    limiter.check(P5A, NOW)
    assert len(limiter) == 3
    assert limiter.prune(NOW) == 0
    assert limiter.prune(NOW + timedelta(seconds=1)) == 2  # person and school: 1 token/s
    assert limiter.prune(NOW + timedelta(seconds=2)) == 1  # role: 0.5 token/s
    assert len(limiter) == 0


def test_policy_change_resizes_buckets_keeping_their_use() -> None:
    limiter = _limiter()
    limiter.check(P5A, NOW)
    limiter.check(P5A, NOW)
    stricter = ContactPolicy.model_validate(
        {"rate_limits": {"person": {"pupil": {"capacity": 1, "per_minute": 6}}}}
    )
    limiter.view = DirectoryView(SCHOOLS, {P5A.uai: stricter})
    refused = limiter.check(P5A, NOW + timedelta(seconds=1))
    # The resized bucket keeps the level (0) and its time, so the elapsed second
    # refills at the new rate (0.1/s): 0.9 token short, 9 s.
    assert (refused.allowed, refused.retry_after) == (False, 9.0)
