"""Recording admin and DPO actions in the audit log (RGPD art. 5(2), 30(1), 32(1)(d)).

Every handler of ``/v1/admin`` and ``/v1/dpo`` calls :func:`audit` once it has
acted; the actor is the token's role and id (never the token itself).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.state import CLOCK, STORE
from storage.directory import ImportSummary
from storage.tokens import ApiToken


def actor_of(grant: ApiToken) -> str:
    """``operator:<token id>`` or ``dpo:<token id>``: who acted, as the log names them."""
    return f"{grant.role}:{grant.token_id}"


async def audit(
    request: web.Request,
    grant: ApiToken,
    action: str,
    target: str | None,
    school: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry for the action the caller just did.

    Raises:
        AuditWriteConflict: the log stayed contended (answered as 500).
    """
    await request.app[STORE].audit.record(
        actor_of(grant), action, target, school, details, request.app[CLOCK].now()
    )


async def audit_import(request: web.Request, grant: ApiToken, summary: ImportSummary) -> None:
    """Record a directory import with its counts (never the people's names)."""
    details = {"created": summary.people_created, "updated": summary.people_updated}
    await audit(request, grant, "directory.import", None, grant.school, details)
