"""Reports with franking proof and moderators' decisions (issue 5, "Reports with proof").

- ``POST /v1/reports`` (device, a member of the conversation): the reported
  message's plaintext, franking key, commitment, the server's stamp, sender
  device and time. Verified with the server's :class:`crypto.FrankingKeyring`
  (:func:`moderation.verify_proof`); a report without a valid proof is filed
  as ``unverified``, never dropped.
- ``GET /v1/reports`` (device): the caller's reports and their state (the
  outcome the reporter is told; a ``notice`` frame also says it live).
- ``GET /v1/moderation/reports?state=`` and
  ``POST /v1/moderation/reports/{id}/decision`` (a device of the school's
  director or a designated moderator, :func:`moderation.may_moderate`);
  ``suspended`` also suspends the proven sender's sending until ``until``.
  Every decision is audited (``report.decide``).

The plaintext is what the reporter chose to hand over (RGPD art. 5(1)(c)); it is
sealed at rest with a server key (``server/report_sealing.py``);
it is shown to the moderators only and never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from crypto import AbuseReport
from crypto.encoding import b64url_encode
from moderation import (
    IllegalTransition,
    Proof,
    ReportCase,
    ReportState,
    may_moderate,
    verify_proof,
)
from protocol import ErrorCode, NoticeFrame, dump_frame
from protocol.frames import B64, Identifier
from server.devices_api import requester
from server.errors import ApiError, read_model
from server.fanout import millis
from server.moderation_api import me
from server.moderation_gate import GATE, refusal
from server.report_sealing import ReportSeal
from server.state import CLOCK, FRANKING, REPORT_SEAL, STORE
from storage.models import Person

MAX_REPORTED_BYTES = 64 * 1024


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    conversation: Identifier
    seq: Annotated[int, Field(ge=1, le=2**53)]
    plaintext: Annotated[B64, Field(max_length=MAX_REPORTED_BYTES)]
    franking_key: Annotated[B64, Field(max_length=64)]
    commitment: Annotated[B64, Field(max_length=64)]
    stamp: Annotated[B64, Field(max_length=128)]
    sender_device: Identifier
    ts: Annotated[int, Field(ge=0, le=2**53)]
    """Server time of the message (``ts`` of its ``deliver`` frame), ms since the epoch."""


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["under_review", "dismissed", "warned", "suspended", "escalated"]
    until: AwareDatetime | None = None
    """For ``suspended``: when the sender may send again."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _opened(stored: Any, seal: ReportSeal | None) -> str | None:
    body = seal.open(stored) if seal is not None else None
    return b64url_encode(body) if body is not None else None


def report_json(
    doc: dict[str, Any], moderator: bool, seal: ReportSeal | None = None
) -> dict[str, Any]:
    body = {
        "id": doc["_id"],
        "uai": doc["uai"],
        "conversation": doc["conversation"],
        "seq": doc["seq"],
        "proof": doc["proof"],
        "state": doc["state"],
        "created_at": _iso(doc["created_at"]),
        "decided_at": _iso(doc.get("decided_at")),
    }
    if moderator:
        body |= {
            "reporter": doc["reporter"],
            "sender_device": doc["sender_device"],
            "reported_person": doc.get("reported_person"),
            "ts": doc["ts"],
            "plaintext": _opened(doc.get("body"), seal),
            "history": [
                {"state": h["state"], "by": h["by"], "at": _iso(h["at"])} for h in doc["history"]
            ],
            "until": _iso(doc.get("until")),
        }
    return body


async def file_report(request: web.Request) -> web.Response:
    device, reporter = await requester(request)
    body = await read_model(request, ReportIn)
    store, now = request.app[STORE], request.app[CLOCK].now()
    conversation = await store.conversations.get(body.conversation)
    if conversation is None or reporter.id not in conversation.members:
        raise ApiError(ErrorCode.UNKNOWN_CONVERSATION, "no such conversation for you")
    proof = verify_proof(
        request.app[FRANKING],
        AbuseReport(
            body=body.plaintext,
            franking_key=body.franking_key,
            commitment=body.commitment,
            stamp=body.stamp,
            sender_device_id=body.sender_device,
            conversation_id=body.conversation,
            timestamp_ms=body.ts,
        ),
    )
    sender = await store.enrolment.device(body.sender_device)
    ident = await store.moderation.reports.add(
        {
            "uai": conversation.uai,
            "conversation": conversation.id,
            "seq": body.seq,
            "reporter": reporter.id,
            "reporter_device": device.id,
            "sender_device": body.sender_device,
            "reported_person": sender.person_id if sender and proof == Proof.VERIFIED else None,
            "ts": body.ts,
            "proof": proof.value,
            "state": ReportState.FILED.value,
            "history": [{"state": ReportState.FILED.value, "by": reporter.id, "at": now}],
            "body": request.app[REPORT_SEAL].seal(body.plaintext),
            "created_at": now,
        }
    )
    request.app[GATE].metrics.moderation_reports.labels(proof.value).inc()
    return web.json_response({"id": ident, "proof": proof.value, "state": "filed"}, status=201)


async def my_reports(request: web.Request) -> web.Response:
    reporter = await me(request)
    docs = await request.app[STORE].moderation.reports.of_reporter(reporter.id)
    return web.json_response({"reports": [report_json(d, moderator=False) for d in docs]})


async def _moderator(request: web.Request, uai: str | None = None) -> Person:
    person = await me(request)
    view = await request.app[GATE].lookup().view([person])
    decision = may_moderate(view, person, uai or person.uai, request.app[CLOCK].now())
    if not decision:
        raise refusal(decision)
    return person


async def list_reports(request: web.Request) -> web.Response:
    moderator = await _moderator(request)
    state = request.query.get("state")
    if state is not None and state not in {s.value for s in ReportState}:
        raise ApiError(ErrorCode.INVALID_REQUEST, "unknown state")
    docs = await request.app[STORE].moderation.reports.of_school(moderator.uai, state)
    seal = request.app[REPORT_SEAL]
    return web.json_response({"reports": [report_json(d, True, seal) for d in docs]})


async def decide(request: web.Request) -> web.Response:
    store, gate, now = request.app[STORE], request.app[GATE], request.app[CLOCK].now()
    doc = await store.moderation.reports.get(request.match_info["id"])
    if doc is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such report")
    moderator = await _moderator(request, doc["uai"])
    body = await read_model(request, DecisionIn)
    to = ReportState(body.state)
    case = ReportCase(doc["uai"], Proof(doc["proof"]), ReportState(doc["state"]))
    try:
        case.moved(to, moderator.id, now)
    except IllegalTransition as exc:
        raise ApiError(ErrorCode.CONFLICT, str(exc)) from None
    if to == ReportState.SUSPENDED:
        if body.until is None or body.until <= now:
            raise ApiError(ErrorCode.INVALID_REQUEST, "a suspension needs a future until")
        if doc.get("reported_person") is None:
            raise ApiError(ErrorCode.CONFLICT, "the sender is not proven; choose another outcome")
    moved = await store.moderation.reports.move(
        doc["_id"], doc["state"], to.value, moderator.id, now, body.until
    )
    if not moved:
        raise ApiError(ErrorCode.CONFLICT, "another moderator moved this report; reload")
    if to == ReportState.SUSPENDED:
        await gate.controls.add(
            {
                "uai": doc["uai"],
                "action": "suspend_person",
                "scope": None,
                "target": doc["reported_person"],
                "until": body.until,
                "at": now,
                "by": moderator.id,
            }
        )
    details = {"state": to.value, "proof": doc["proof"]}
    await store.audit.record(moderator.id, "report.decide", doc["_id"], doc["uai"], details, now)
    devices = await store.enrolment.devices_of(doc["reporter"])
    notice = NoticeFrame(
        kind="report_outcome", ts=millis(now), report_id=doc["_id"], state=to.value
    )
    await gate.controls.notify([d.id for d in devices], "notice", dump_frame(notice))
    updated = await store.moderation.reports.get(doc["_id"])
    return web.json_response(report_json(updated or doc, True, request.app[REPORT_SEAL]))


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/reports", file_report)
    app.router.add_get("/v1/reports", my_reports)
    app.router.add_get("/v1/moderation/reports", list_reports)
    app.router.add_post("/v1/moderation/reports/{id}/decision", decide)
