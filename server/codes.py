"""One-time enrolment codes: format, generation and parsing (pure).

A code is 16 characters of Crockford's base32 shown in four groups,
``K7QM-3XHD-9RTF-W2NB``. The first group (20 bits) is the *lookup* that names
the stored code; the other twelve characters (60 bits) are the *secret*,
stored only as a SHA-256 hash. Wrong secrets count against the code (locked
after a few), failures count against the client address and globally;
docs/security.md gives the arithmetic of why guessing cannot succeed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from storage.ids import secret_hash

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U, so nothing is misread on paper."""
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
LOOKUP_CHARS = 4
SECRET_CHARS = 12
SECRET_BITS = SECRET_CHARS * 5


@dataclass(frozen=True)
class EnrolmentCode:
    lookup: str
    secret: str

    @property
    def text(self) -> str:
        """The code as printed for a person: four groups of four."""
        raw = self.lookup + self.secret
        return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))

    @property
    def secret_hash(self) -> str:
        return secret_hash(self.lookup + self.secret)


def generate_code() -> EnrolmentCode:
    """A fresh code from the operating system's CSPRNG."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LOOKUP_CHARS + SECRET_CHARS))
    return EnrolmentCode(raw[:LOOKUP_CHARS], raw[LOOKUP_CHARS:])


def parse_code(text: str) -> EnrolmentCode | None:
    """Normalise what a person typed (case, dashes, spaces, I/L/O); None if malformed."""
    raw = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(raw) != LOOKUP_CHARS + SECRET_CHARS or any(c not in ALPHABET for c in raw):
        return None
    return EnrolmentCode(raw[:LOOKUP_CHARS], raw[LOOKUP_CHARS:])
