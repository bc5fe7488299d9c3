"""Report state machine, franking proof (real franked messages), who moderates."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from itertools import product

import pytest

from crypto import (
    AbuseReport,
    DeviceKeys,
    FrankingKeyring,
    ServerFrankingKey,
    accept_session,
    frank,
    initiate_session,
    open_franked,
)
from moderation import (
    TRANSITIONS,
    IllegalTransition,
    ModerationUsageError,
    Proof,
    Reason,
    ReportCase,
    ReportState,
    advance,
    may_moderate,
    verify_proof,
)
from storage.models import Person
from tests.moderation.cast import CPE, DIRECTOR, DIRECTORB, DPO, NOW, P5A, STAFF, T5A, A, B, view

S = ReportState
ALLOWED_MOVES = {
    (S.FILED, S.UNDER_REVIEW),
    (S.UNDER_REVIEW, S.DISMISSED),
    (S.UNDER_REVIEW, S.WARNED),
    (S.UNDER_REVIEW, S.SUSPENDED),
    (S.UNDER_REVIEW, S.ESCALATED),
}


@pytest.mark.parametrize(("state", "to"), list(product(ReportState, repeat=2)))
def test_every_move_against_the_table(state: ReportState, to: ReportState) -> None:
    if (state, to) in ALLOWED_MOVES:
        assert advance(state, to) is to
    else:
        with pytest.raises(IllegalTransition):
            advance(state, to)


def test_table_and_finality() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED_MOVES
    assert set(TRANSITIONS) == set(ReportState)


def test_case_history() -> None:
    case = ReportCase(A, Proof.VERIFIED)
    reviewed = case.moved(S.UNDER_REVIEW, "director", NOW)
    decided = reviewed.moved(S.SUSPENDED, "cpe", NOW + timedelta(hours=1))
    assert decided.state == S.SUSPENDED
    assert [(s, who) for s, who, _ in decided.history] == [
        (S.UNDER_REVIEW, "director"),
        (S.SUSPENDED, "cpe"),
    ]
    assert case.state == S.FILED  # immutable
    with pytest.raises(IllegalTransition):
        decided.moved(S.DISMISSED, "director", NOW)
    with pytest.raises(ModerationUsageError):
        case.moved(S.UNDER_REVIEW, "director", NOW.replace(tzinfo=None))


TIME_MS = 1_741_773_600_000


def _keyring(key_id: int = 7) -> FrankingKeyring:
    return FrankingKeyring(ServerFrankingKey.generate(key_id))


def _report(keyring: FrankingKeyring) -> AbuseReport:
    """A message franked by its sender, relayed and stamped, decrypted and reported."""
    alice, bob = DeviceKeys.generate(0, 0), DeviceKeys.generate(0, 0)
    franked = frank(b"tu vas voir demain")
    envelope = initiate_session(alice, bob.bundle()).encrypt(franked.payload)
    stamp = keyring.stamp(franked.commitment, "dev-sender", "conv-5a", TIME_MS)
    body, franking_key = open_franked(accept_session(bob, envelope).plaintext, franked.commitment)
    commitment = franked.commitment
    return AbuseReport(body, franking_key, commitment, stamp, "dev-sender", "conv-5a", TIME_MS)


def test_genuine_report_is_verified() -> None:
    keyring = _keyring()
    assert verify_proof(keyring, _report(keyring)) == Proof.VERIFIED
    rotated = keyring.rotated(ServerFrankingKey.generate(8))
    assert verify_proof(rotated, _report(keyring)) == Proof.VERIFIED


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": b"tu vas voir demain !"},
        {"sender_device_id": "dev-other"},
        {"conversation_id": "conv-5b"},
        {"timestamp_ms": TIME_MS - 1},
        {"franking_key": bytes(32)},
        {"franking_key": b"short"},
        {"commitment": bytes(32)},
        {"stamp": bytes(36)},
        {"stamp": b""},
    ],
    ids=lambda change: next(iter(change)),
)
def test_tampered_report_is_unverified(tamper: dict[str, object]) -> None:
    keyring = _keyring()
    report = dataclasses.replace(_report(keyring), **tamper)  # type: ignore[arg-type]
    assert verify_proof(keyring, report) == Proof.UNVERIFIED


def test_stamp_from_another_server_is_unverified() -> None:
    assert verify_proof(_keyring(7), _report(_keyring(7))) == Proof.UNVERIFIED


@pytest.mark.parametrize(
    ("name", "person", "uai", "expected"),
    [
        ("director", DIRECTOR, A, None),
        ("designated staff", CPE, A, None),
        ("other staff", STAFF, A, Reason.NOT_MODERATOR),
        ("teacher", T5A, A, Reason.NOT_MODERATOR),
        ("pupil", P5A, A, Reason.NOT_MODERATOR),
        ("director of another school", DIRECTORB, A, Reason.NOT_MODERATOR),
        ("director, another school's reports", DIRECTOR, B, Reason.NOT_MODERATOR),
        ("DPO", DPO, A, Reason.NOT_A_PARTICIPANT),
    ],
)
def test_who_moderates(name: str, person: Person, uai: str, expected: Reason | None) -> None:
    assert may_moderate(view(), person, uai, NOW).reason == expected, name
