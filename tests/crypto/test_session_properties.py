"""hypothesis: random interleavings of sends, out-of-order, dropped, replayed and
tampered deliveries between three devices (three pairwise sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from crypto_testkit import DeterministicRng
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import DeviceKeys, InvalidMessage, Session, accept_session, initiate_session

# (initiator, responder, responder hands out a one-time prekey)
PAIRS = [(0, 1, True), (0, 2, False), (1, 2, True)]
LINKS = [(i, r) for i, r, _ in PAIRS] + [(r, i) for i, r, _ in PAIRS]


@dataclass
class World:
    keys: list[DeviceKeys]
    rng: DeterministicRng
    sessions: dict[tuple[int, int], Session] = field(default_factory=dict)
    in_flight: dict[tuple[int, int], list[tuple[bytes, bytes]]] = field(default_factory=dict)
    delivered: dict[tuple[int, int], list[bytes]] = field(default_factory=dict)
    counter: int = 0

    @classmethod
    def create(cls, seed: int) -> World:
        rng = DeterministicRng(seed.to_bytes(4, "big"))
        world = cls([DeviceKeys.generate(0, 1, rng) for _ in range(3)], rng)
        for initiator, responder, with_otpk in PAIRS:
            bundle = world.keys[responder].bundle(1 if with_otpk else None)
            world.sessions[(initiator, responder)] = initiate_session(
                world.keys[initiator], bundle, rng
            )
        for link in LINKS:
            world.in_flight[link] = []
            world.delivered[link] = []
        return world

    def send(self, link: tuple[int, int]) -> None:
        session = self.sessions.get(link)
        if session is None:  # responder has not received anything yet
            return
        plaintext = f"{link}:{self.counter}".encode() * (self.counter % 3)
        self.counter += 1
        self.in_flight[link].append((session.encrypt(plaintext), plaintext))

    def receive(self, link: tuple[int, int], envelope: bytes) -> bytes:
        sender, recipient = link
        session = self.sessions.get((recipient, sender))
        if session is None:
            accepted = accept_session(self.keys[recipient], envelope, self.rng)
            self.sessions[(recipient, sender)] = accepted.session
            return accepted.plaintext
        return session.decrypt(envelope)

    def snapshot(self, link: tuple[int, int]) -> bytes | None:
        session = self.sessions.get((link[1], link[0]))
        return None if session is None else session.to_bytes()


OPS = st.lists(
    st.tuples(
        st.sampled_from(["send", "send", "deliver", "drop", "replay", "tamper"]),
        st.integers(0, len(LINKS) - 1),
        st.integers(0, 1000),
    ),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**16), ops=OPS)
def test_random_interleavings(seed: int, ops: list[tuple[str, int, int]]) -> None:
    world = World.create(seed)
    for op, link_index, pick in ops:
        link = LINKS[link_index]
        queue = world.in_flight[link]
        if op == "send":
            world.send(link)
        elif op in ("deliver", "drop", "tamper") and queue:
            envelope, plaintext = queue.pop(pick % len(queue))
            if op == "deliver":
                assert world.receive(link, envelope) == plaintext
                world.delivered[link].append(envelope)
            elif op == "tamper":
                before = world.snapshot(link)
                tampered = bytearray(envelope)
                tampered[pick % len(tampered)] ^= 1 << (pick % 8)
                with pytest.raises(InvalidMessage):
                    world.receive(link, bytes(tampered))
                assert world.snapshot(link) == before
                queue.append((envelope, plaintext))  # the original still arrives later
        elif op == "replay" and world.delivered[link]:
            envelope = world.delivered[link][pick % len(world.delivered[link])]
            before = world.snapshot(link)
            with pytest.raises(InvalidMessage):
                world.receive(link, envelope)
            assert world.snapshot(link) == before
    # Everything still in flight decrypts, in any order.
    for link in LINKS:
        for envelope, plaintext in reversed(world.in_flight[link]):
            assert world.receive(link, envelope) == plaintext
