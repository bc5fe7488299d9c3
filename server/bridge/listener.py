"""The SMTP reply listener (aiosmtpd, on the node's event loop).

A parent's reply reaches the conversation only when (DESIGN.md, "SMTP bridge"):

1. it is addressed to one signed reply address ``r-<token>@<reply domain>``
   whose token verifies and has not expired (else ``550 5.1.1`` at RCPT);
2. the envelope sender and the ``From:`` header are both the guardian's
   address in the directory (else ``550 5.7.1``);
3. it has text once quotes and signature are stripped (else ``550 5.6.0``).

Refusals happen during the SMTP dialogue, so the sending mail system returns a
bounce to the parent with the reason. A database fault answers ``451`` (the
sender retries). The reply's client id derives from its ``Message-ID``: an
email delivered twice is posted once (idempotent sends).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo.errors import PyMongoError

from server.bridge import tokens
from server.bridge.errors import BridgeError, ReplyRefused, TokenRefused
from server.bridge.replies import new_text, parse_email, sender_address
from server.bridge.worker import BridgeWorker
from storage.errors import DatabaseUnavailable, DriverError

log = logging.getLogger(__name__)
MAX_EMAIL_BYTES = 1024 * 1024


class ReplyHandler:
    """aiosmtpd handler: checks addresses and posts replies through the worker."""

    def __init__(self, worker: BridgeWorker, domain: str) -> None:
        self.worker = worker
        self.domain = domain

    async def _token(self, address: str) -> Any:
        text = tokens.token_of_address(address, self.domain)
        token_id = tokens.check_token(self.worker.keyring, tokens.REPLY, text)
        token = await self.worker.store.bridge.token(token_id)
        if token is None or token.purpose != tokens.REPLY:
            raise TokenRefused("no such reply address")
        if token.expires_at <= self.worker.s.clock.now():
            raise TokenRefused("this reply address has expired; use the link in the email")
        return token

    async def handle_RCPT(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if envelope.rcpt_tos:
            return "452 4.5.3 one reply address per message"
        try:
            await self._token(address)
        except TokenRefused as exc:
            return f"550 5.1.1 {exc}"
        except (PyMongoError, DatabaseUnavailable, DriverError):
            return "451 4.3.0 temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        try:
            return await self._post(envelope)
        except (PyMongoError, DatabaseUnavailable, DriverError):
            return "451 4.3.0 temporary failure, try again later"

    async def _post(self, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if not isinstance(raw, bytes) or not envelope.rcpt_tos:
            return "554 5.6.0 no message"
        try:
            token = await self._token(envelope.rcpt_tos[0])
        except TokenRefused as exc:
            return f"550 5.1.1 {exc}"
        person = await self.worker.store.directory.person(token.person_id)
        message = parse_email(raw)
        allowed = (person.email or "").lower() if person is not None else ""
        if not allowed or {str(envelope.mail_from or "").lower(), sender_address(message)} != {
            allowed
        }:
            log.info("bridge reply refused: sender is not the guardian's address")
            return "550 5.7.1 this address may not reply to this conversation"
        text = new_text(message)
        if not text:
            return "550 5.6.0 the reply has no text (only quoted text or a signature)"
        ident = str(message.get("Message-ID", "")).strip() or hashlib.sha256(raw).hexdigest()
        client_id = "mail-" + hashlib.sha256(ident.encode()).hexdigest()[:32]
        try:
            seq = await self.worker.devices.reply(
                token.device_id, token.conversation, text, client_id
            )
        except ReplyRefused as exc:
            return f"550 5.7.1 {exc}"
        except BridgeError:
            return "451 4.3.0 temporary failure, try again later"
        log.info("bridge reply posted in %s at seq %d", token.conversation, seq)
        return "250 2.0.0 reply posted"


def make_protocol(handler: ReplyHandler) -> SMTP:
    return SMTP(
        handler,
        hostname=handler.domain,
        ident="Carnet reply listener",
        data_size_limit=MAX_EMAIL_BYTES,
        enable_SMTPUTF8=True,
        decode_data=False,
    )
