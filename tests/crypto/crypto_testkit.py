"""Shared helpers for tests/crypto: a deterministic rng and a pair of linked devices."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


class DeterministicRng:
    """``rng(n)`` returning SHAKE-256(seed || counter) so known-answer tests are exact."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0

    def __call__(self, size: int) -> bytes:
        out = hashlib.shake_256(self.seed + self.counter.to_bytes(8, "big")).digest(size)
        self.counter += 1
        return out


class ScriptedRng:
    """``rng(n)`` returning pre-recorded values in order (to feed both us and an oracle)."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = list(values)

    def __call__(self, size: int) -> bytes:
        value = self.values.pop(0)
        assert len(value) == size
        return value


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())
