"""Typed documents of the directory and devices (the shapes ``storage/`` returns).

These are plain pydantic models: ``server/`` validates requests into them and
``moderation/`` takes decisions from them; only ``storage/`` reads and writes
them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field

UAI_PATTERN = r"^[0-9]{7}[A-Z]$"
"""Unité Administrative Immatriculée: seven digits and a letter (e.g. 0750001A)."""

Uai = Annotated[str, Field(pattern=UAI_PATTERN)]
ExternalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
ClassName = Annotated[str, Field(pattern=r"^[\w .'-]{1,40}$")]


class Role(StrEnum):
    """A person's role in a school (DESIGN.md, "Who uses it")."""

    TEACHER = "teacher"
    STAFF = "staff"
    DIRECTOR = "director"
    PUPIL = "pupil"
    PARENT = "parent"
    DPO = "dpo"
    OPERATOR = "operator"


class DeviceKind(StrEnum):
    """``app``: keys on the person's device; ``email-bridge``: keys on the server."""

    APP = "app"
    EMAIL_BRIDGE = "email-bridge"


class School(BaseModel):
    model_config = ConfigDict(frozen=True)

    uai: Uai
    name: Name
    timezone: str = "Europe/Paris"


class SchoolSettings(BaseModel):
    """What a school chooses to reveal and allow (docs/protocol.md, "Receipts")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivered_receipts: bool = True
    """Senders see how far each member has received a conversation."""
    read_receipts: bool = True
    """Senders see how far each member has read a conversation."""


class PersonRecord(BaseModel):
    """One person as an import (CSV or REST) describes them, before ids exist."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uai: Uai
    external_id: ExternalId
    role: Role
    given_name: Name
    family_name: Name
    email: EmailStr | None = None
    classes: tuple[ClassName, ...] = ()
    children: tuple[ExternalId, ...] = ()
    """External ids of the person's children in the same school (parents only)."""
    email_only: bool = False


class Person(BaseModel):
    """A person of the directory."""

    model_config = ConfigDict(frozen=True)

    id: str
    uai: Uai
    external_id: str
    role: Role
    given_name: str
    family_name: str
    email: str | None = None
    classes: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    """Person ids of this parent's children."""
    email_only: bool = False
    left_at: datetime | None = None

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Device(BaseModel):
    """An enrolled device: its Ed25519 identity key is who it is."""

    model_config = ConfigDict(frozen=True)

    id: str
    person_id: str
    kind: DeviceKind
    identity_key: bytes
    created_at: datetime
    revoked_at: datetime | None = None
