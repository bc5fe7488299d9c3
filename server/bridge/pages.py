"""The reading page behind the email's link (server-rendered, no JavaScript).

- ``GET  /bridge/m/{token}``: the conversation's kept messages, a reply form
  (when the parent may write there) and, for announcements to acknowledge,
  one "I acknowledge" button per message.
- ``POST /bridge/m/{token}/reply``: post the reply (``text``), then 303 back.
- ``POST /bridge/m/{token}/ack``: acknowledge message ``seq``, then 303 back.

The link token is signed and short-lived (``bridge_link_hours``); each
rendered form carries a signed nonce (CSRF), and the reply's client id derives
from that nonce, so a form submitted twice posts once. Responses are
``no-store``, sent with ``Referrer-Policy: no-referrer`` (the token is in the
URL) and a CSP that allows no script at all. The page is bilingual (FR/EN),
labelled, keyboard-usable and readable at 360 px (docs/email-bridge.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from server.bridge import tokens
from server.bridge.errors import BridgeError, ReplyRefused, TokenRefused
from server.bridge.mail import ENV, local_time
from server.bridge.replies import MAX_REPLY_CHARS
from server.bridge.runtime import BRIDGE
from server.bridge.worker import BridgeWorker
from storage.bridge import Token

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
NOTICES = {
    "sent": ("Votre réponse a été envoyée.", "Your reply was sent."),
    "acked": ("Votre accusé de lecture est enregistré.", "Your acknowledgement is recorded."),
}


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)


def _problem(status: int, fr: str, en: str) -> web.Response:
    return _html(ENV.get_template("bridge/problem.html").render(fr=fr, en=en), status)


async def _link(request: web.Request) -> tuple[BridgeWorker, Token]:
    worker = request.app.get(BRIDGE)
    if worker is None:
        raise web.HTTPNotFound
    token_id = tokens.check_token(worker.keyring, tokens.LINK, request.match_info["token"])
    token = await worker.store.bridge.token(token_id)
    if token is None or token.purpose != tokens.LINK:
        raise TokenRefused("this link is not valid")
    if token.expires_at <= worker.s.clock.now():
        raise TokenRefused("this link has expired")
    return worker, token


async def _context(
    worker: BridgeWorker, token: Token, link: str, notice: str, error: str
) -> dict[str, Any]:
    store = worker.store
    conversation = await store.conversations.get(token.conversation)
    person = await store.directory.person(token.person_id)
    school = await store.directory.school(person.uai) if person else None
    timezone = school.timezone if school else "Europe/Paris"
    kept = await worker.devices.mailbox(token.device_id, token.conversation)
    names: dict[str, str] = {}
    messages = []
    for k in kept:
        if k.sender_person not in names:
            sender = await store.directory.person(k.sender_person)
            names[k.sender_person] = sender.display_name if sender else "?"
        acked = bool(
            conversation and conversation.acknowledge
        ) and await worker.devices.acknowledged(token.conversation, k.seq, token.person_id)
        messages.append(
            {"seq": k.seq, "sender": names[k.sender_person], "text": k.text, "acked": acked,
             "at": local_time(k.created_at, timezone), "iso": k.created_at.isoformat()}
        )  # fmt: skip
    nonce, tag = tokens.form_token(worker.keyring, token.token_id)
    return {
        "title": (conversation.title if conversation else "") or "Carnet",
        "school": school.name if school else "",
        "reader": person.display_name if person else "",
        "messages": messages,
        "can_reply": conversation is not None
        and worker.devices.may_reply(conversation, token.person_id),
        "acknowledge": bool(conversation and conversation.acknowledge),
        "base": f"/bridge/m/{link}",
        "nonce": nonce,
        "tag": tag,
        "max_chars": MAX_REPLY_CHARS,
        "notice": NOTICES.get(notice),
        "error": error,
    }


async def show(request: web.Request) -> web.Response:
    try:
        worker, token = await _link(request)
    except TokenRefused:
        return _problem(
            410,
            "Ce lien n'est plus valable. Le prochain e-mail de Carnet contiendra un nouveau lien.",
            "This link is no longer valid. The next email from Carnet will bring a new one.",
        )
    link = request.match_info["token"]
    context = await _context(worker, token, link, request.query.get("done", ""), "")
    return _html(ENV.get_template("bridge/page.html").render(context))


async def _form(request: web.Request, worker: BridgeWorker, token: Token) -> dict[str, str]:
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    tokens.check_form(
        worker.keyring, token.token_id, fields.get("nonce", ""), fields.get("tag", "")
    )
    return fields


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    try:
        worker, token = await _link(request)
        fields = await _form(request, worker, token)
    except TokenRefused:
        return _problem(
            403,
            "Ce formulaire n'est plus valable : rechargez la page depuis le lien de l'e-mail.",
            "This form is no longer valid: open the page again from the email's link.",
        )
    try:
        if action == "reply":
            text = fields.get("text", "")
            if len(text) > MAX_REPLY_CHARS:
                raise ReplyRefused(f"at most {MAX_REPLY_CHARS} characters")
            client_id = "page-" + hashlib.sha256(fields["nonce"].encode()).hexdigest()[:32]
            await worker.devices.reply(token.device_id, token.conversation, text, client_id)
            done = "sent"
        else:
            seq = fields.get("seq", "")
            if not seq.isdigit():
                raise ReplyRefused("no such message")
            await worker.devices.acknowledge(token.device_id, token.conversation, int(seq))
            done = "acked"
    except BridgeError as exc:
        context = await _context(worker, token, request.match_info["token"], "", str(exc))
        return _html(ENV.get_template("bridge/page.html").render(context), 422)
    raise web.HTTPSeeOther(f"/bridge/m/{request.match_info['token']}?done={done}", headers=HEADERS)


async def reply(request: web.Request) -> web.StreamResponse:
    return await _act(request, "reply")


async def acknowledge(request: web.Request) -> web.StreamResponse:
    return await _act(request, "ack")


def setup(app: web.Application) -> None:
    app.router.add_get("/bridge/m/{token}", show)
    app.router.add_post("/bridge/m/{token}/reply", reply)
    app.router.add_post("/bridge/m/{token}/ack", acknowledge)
