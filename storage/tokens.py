"""API token repository: operator and DPO bearer tokens, stored hashed.

Documents: ``api_tokens {_id: sha256(token), role, school, label, created_at,
revoked_at}``. The token itself is shown once, at creation, and never stored.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.ids import secret_hash

Doc = dict[str, Any]


@dataclass(frozen=True)
class ApiToken:
    """What a valid token grants: a role, optionally scoped to one school."""

    token_id: str
    role: str
    school: str | None
    label: str


class TokenRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._tokens = db["api_tokens"]

    async def create_indexes(self) -> None:
        """Nothing beyond ``_id``: tokens are looked up by their hash."""

    async def add(
        self, token: str, role: str, school: str | None, label: str, now: datetime
    ) -> str:
        """Store a new token's hash; returns the token id (a hash prefix, for audit)."""
        digest = secret_hash(token)
        await self._tokens.insert_one(
            {"_id": digest, "role": role, "school": school, "label": label, "created_at": now}
        )
        return digest[:16]

    async def check(self, token: str) -> ApiToken | None:
        """The grant of ``token``, or None if unknown or revoked.

        The hash is compared again in constant time after the lookup, so the
        answer's timing does not depend on how much of a guess matched.
        """
        digest = secret_hash(token)
        doc = await self._tokens.find_one({"_id": digest, "revoked_at": {"$exists": False}})
        if doc is None or not hmac.compare_digest(doc["_id"], digest):
            return None
        return ApiToken(digest[:16], doc["role"], doc.get("school"), doc.get("label", ""))
