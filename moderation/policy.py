"""A school's contact policy as a validated, versioned document (issue 5, "Contact policy").

One document per school (UAI), JSON or TOML, edited by the director through the
admin API; ``server/`` stores it, audits every change and hands it back here.
Every field has a safe default, so a school without a document gets the policy
DESIGN.md describes ("Moderation": pupils reach their teachers and staff;
pupil↔pupil only in channels a teacher owns; parents reach their children's
teachers and staff; a second school adult with any pupil). The format, every
field and its default are in docs/moderation.md, "Policy document".

Unknown fields are refused (a typo must not silently fall back to a default)
and every problem is reported with its dotted field path in
:class:`moderation.errors.PolicyError`. ``version`` is the document's revision:
:meth:`ContactPolicy.revise` accepts only ``version + 1`` so two concurrent
editors cannot overwrite each other unknowingly.
"""

from __future__ import annotations

import json
import tomllib
from datetime import time
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moderation.errors import PolicyError
from storage.models import UAI_PATTERN, Role

__all__ = [
    "DEFAULT_POLICY",
    "PARTICIPANT_ROLES",
    "SCHOOL_ADULT_ROLES",
    "BucketSpec",
    "ContactPolicy",
    "NightClosure",
    "PupilPeers",
    "QuietHours",
    "RateLimitPolicy",
    "parse_policy",
]

SCHOOL_ADULT_ROLES = frozenset({Role.TEACHER, Role.STAFF, Role.DIRECTOR})
"""Roles that make someone a school adult (they may own channels and moderate)."""
PARTICIPANT_ROLES = SCHOOL_ADULT_ROLES | {Role.PUPIL, Role.PARENT}
"""Roles that take part in messaging; DPO and operator do not (docs/moderation.md)."""

PartnerUai = Annotated[str, Field(pattern=UAI_PATTERN)]
PersonId = Annotated[str, Field(min_length=1, max_length=64)]


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PupilPeers(StrEnum):
    """Where pupils may talk to each other."""

    NEVER = "never"
    TEACHER_CHANNELS = "teacher_channels"
    """Only in a group, class channel or announcement owned by a school adult."""


class QuietHours(_Document):
    """The right to disconnect (Code du travail L2242-17): silent delivery hours.

    The window is in the school's time zone; ``start == end`` means no nightly
    window. Messages to the listed roles are stored and delivered without
    notification; the sender is told.
    """

    start: time = time(20, 0)
    end: time = time(7, 0)
    weekends: bool = True
    """Saturday and Sunday are quiet all day."""
    roles: frozenset[Role] = frozenset({Role.TEACHER, Role.STAFF, Role.DIRECTOR, Role.PARENT})


class NightClosure(_Document):
    """Optional closure of pupils' sending (a pupil's message is refused)."""

    enabled: bool = False
    start: time = time(20, 0)
    end: time = time(7, 0)
    weekends: bool = False


class BucketSpec(_Document):
    """One token bucket: ``capacity`` messages at once, refilled at ``per_minute``."""

    capacity: int = Field(gt=0, le=1_000_000)
    per_minute: float = Field(gt=0, le=1_000_000)

    @property
    def refill_per_second(self) -> float:
        """Tokens added per second."""
        return self.per_minute / 60


def _b(capacity: int, per_minute: float) -> BucketSpec:
    return BucketSpec(capacity=capacity, per_minute=per_minute)


class RateLimitPolicy(_Document):
    """Token buckets per person (by role), per role (shared) and per school."""

    person: dict[Role, BucketSpec] = Field(
        default_factory=lambda: {
            Role.PUPIL: _b(10, 6),
            Role.PARENT: _b(20, 12),
            Role.TEACHER: _b(60, 60),
            Role.STAFF: _b(120, 120),
            Role.DIRECTOR: _b(120, 120),
        }
    )
    role: dict[Role, BucketSpec] = Field(
        default_factory=lambda: {
            Role.PUPIL: _b(300, 120),
            Role.PARENT: _b(600, 300),
            Role.TEACHER: _b(1200, 600),
            Role.STAFF: _b(1200, 600),
            Role.DIRECTOR: _b(600, 300),
        }
    )
    school: BucketSpec = Field(default_factory=lambda: _b(5000, 2000))

    @model_validator(mode="after")
    def _participants_only(self) -> Self:
        for level in ("person", "role"):
            for role in getattr(self, level):
                if role not in PARTICIPANT_ROLES:
                    raise ValueError(f"{level}.{role}: not a messaging participant")
        return self


class ContactPolicy(_Document):
    """Who may message whom in one school, and when (docs/moderation.md)."""

    version: int = Field(default=1, ge=1)
    """Revision of this school's document; each accepted edit adds one."""
    pupil_peers: PupilPeers = PupilPeers.TEACHER_CHANNELS
    teachers_reach_all_pupils: bool = False
    """Default: a teacher reaches the pupils of the classes they teach."""
    teachers_reach_all_parents: bool = False
    """Default: a teacher reaches the parents of pupils of the classes they teach."""
    parents_reach_other_parent: bool = False
    """Whether the two parents of a pupil may talk to each other."""
    pupils_reach_own_parents: bool = False
    partner_schools: frozenset[PartnerUai] = frozenset()
    """UAIs whose people may be reached; the partner must list this school too."""
    partner_roles: frozenset[Role] = frozenset(SCHOOL_ADULT_ROLES)
    """Roles of this school's people that partner schools' people may reach."""
    designated_adults: frozenset[PersonId] = frozenset()
    """Staff (person ids) who count as a pupil's second adult; the director always does."""
    moderators: frozenset[PersonId] = frozenset()
    """Staff (person ids) who review reports; the director always does."""
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    night_closure: NightClosure = Field(default_factory=NightClosure)
    rate_limits: RateLimitPolicy = Field(default_factory=RateLimitPolicy)

    @model_validator(mode="after")
    def _partner_roles_participate(self) -> Self:
        if not self.partner_roles <= PARTICIPANT_ROLES:
            raise ValueError("partner_roles: dpo and operator are not messaging participants")
        return self

    def revise(self, document: dict[str, Any]) -> ContactPolicy:
        """Validate an edited document that must be the next revision of this one.

        Args:
            document: The new document, already decoded from JSON or TOML.

        Returns:
            The new policy.

        Raises:
            PolicyError: the document is invalid or its ``version`` is not this one + 1.
        """
        new = _validate(document)
        if new.version != self.version + 1:
            raise PolicyError([("version", f"must be {self.version + 1} (current + 1)")])
        return new

    def to_json(self) -> str:
        """The document as JSON (what ``parse_policy(..., "json")`` reads back).

        Returns:
            The JSON text.
        """
        return self.model_dump_json(indent=2)


DEFAULT_POLICY = ContactPolicy()
"""The policy of a school that has no document."""


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def _validate(document: Any) -> ContactPolicy:
    try:
        return ContactPolicy.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc, message = list(error["loc"]), str(error["msg"])
            if error["type"] == "value_error":
                # Our model validators say "field: problem"; put the field in the path.
                message = message.removeprefix("Value error, ")
                field, _, rest = message.partition(": ")
                if rest:
                    loc, message = [*loc, field], rest
            problems.append((_path(tuple(loc)), message))
        raise PolicyError(problems) from None


def parse_policy(text: str, fmt: str = "json") -> ContactPolicy:
    """Parse and validate a policy document.

    Args:
        text: The document.
        fmt: ``"json"`` or ``"toml"``.

    Returns:
        The validated policy.

    Raises:
        PolicyError: not parseable, or invalid; the message names each field.
    """
    try:
        if fmt == "json":
            document = json.loads(text)
        elif fmt == "toml":
            document = tomllib.loads(text)
        else:
            raise PolicyError([("(format)", f"unknown format {fmt!r}, expected json or toml")])
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError([("(document)", f"not valid {fmt}: {exc}")]) from None
    if not isinstance(document, dict):
        raise PolicyError([("(document)", "must be an object")])
    return _validate(document)
