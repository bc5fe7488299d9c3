"""Bearer tokens for the operator and DPO APIs (``Authorization: Bearer ...``).

Tokens are 256-bit random strings prefixed by their role (``carnet_operator_``,
``carnet_dpo_``), stored only as SHA-256 hashes and compared in constant time
(:meth:`storage.tokens.TokenRepository.check`).
"""

from __future__ import annotations

import secrets

from aiohttp import web

from protocol import ErrorCode
from server.errors import ApiError
from server.state import STORE
from storage.models import Person
from storage.tokens import ApiToken

TOKEN_ROLES = ("operator", "dpo")


def new_token(role: str) -> str:
    return f"carnet_{role}_{secrets.token_urlsafe(32)}"


async def require_token(request: web.Request, *roles: str) -> ApiToken:
    """The caller's token grant, if its role is one of ``roles``.

    Raises:
        ApiError: ``unauthorized`` (no or bad token) or ``forbidden`` (wrong role).
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise ApiError(ErrorCode.UNAUTHORIZED, "send Authorization: Bearer <token>")
    grant = await request.app[STORE].tokens.check(token.strip())
    if grant is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "unknown or revoked token")
    if grant.role not in roles:
        raise ApiError(ErrorCode.FORBIDDEN, f"this needs a {' or '.join(roles)} token")
    return grant


def require_school(grant: ApiToken, uai: str) -> None:
    """A token scoped to one school may only act on that school.

    Raises:
        ApiError: ``forbidden``.
    """
    if grant.school is not None and grant.school != uai:
        raise ApiError(ErrorCode.FORBIDDEN, "this token is scoped to another school")


async def operator_person(request: web.Request) -> tuple[ApiToken, Person]:
    """An operator token and the person named by ``{person_id}`` in the path.

    Raises:
        ApiError: ``unauthorized``/``forbidden`` (token), ``not_found`` (person),
            ``forbidden`` (a person of another school for a scoped token).
    """
    grant = await require_token(request, "operator")
    person = await request.app[STORE].directory.person(request.match_info["person_id"])
    if person is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such person")
    require_school(grant, person.uai)
    return grant, person
