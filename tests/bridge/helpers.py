"""A real SMTP relay for the bridge tests, and a Carnet with the bridge on.

The relay is aiosmtpd on the test's event loop and 127.0.0.1; it can be taken
down and brought back on the same port (relay outage tests).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import unused_port
from aiosmtpd.smtp import SMTP, Envelope, Session

from server.bridge import BRIDGE
from server.bridge.replies import parse_email
from server.bridge.worker import BridgeWorker
from tests.support.servers import RunningServer, running_server

REPLY_DOMAIN = "reply.carnet.test"
FROM = "carnet@college.test"


@dataclass
class Relay:
    """An SMTP relay that keeps what it accepts."""

    port: int = field(default_factory=unused_port)
    received: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    server: asyncio.Server | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.original_content, bytes)
        self.received.append(
            (
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                parse_email(envelope.original_content),
            )
        )
        self.arrived.set()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, hostname="relay.test", decode_data=False), "127.0.0.1", self.port
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


def new_bridge_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


@asynccontextmanager
async def bridge_server(
    database_uri: str, tmp_path: Path, relay: Relay, **overrides: Any
) -> AsyncIterator[RunningServer]:
    settings: dict[str, Any] = {
        "bridge_key": new_bridge_key(),
        "smtp_host": "127.0.0.1",
        "smtp_port": relay.port,
        "smtp_timeout_seconds": 5,
        "bridge_interval_seconds": 0,
        "bridge_reply_domain": REPLY_DOMAIN,
        "bridge_listen_port": unused_port(),
        "bridge_from_address": FROM,
        **overrides,
    }
    async with running_server(database_uri, tmp_path, **settings) as running:
        yield running


def worker(server: RunningServer) -> BridgeWorker:
    return server.app[BRIDGE]


async def make_email_only(server: RunningServer, external_id: str) -> tuple[str, str]:
    """Mark a demo guardian email-only through the admin API: (person id, device id)."""
    person_id = server.person(external_id)["person_id"]
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/admin/people/{person_id}/email-bridge",
            headers={"Authorization": f"Bearer {server.operator_token}"},
        ) as response:
            body = await response.json()
            assert response.status == 201, body
    return person_id, str(body["device_id"])


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def link_of(message: EmailMessage) -> str:
    found = re.search(
        r"http://127\.0\.0\.1:\d+/bridge/m/[a-z2-7]{16}-[a-z2-7]{16}", text_part(message)
    )
    assert found is not None, text_part(message)
    return found.group(0)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the first form whose action ends with ``action``."""
    form = re.search(rf'<form method="post" action="[^"]*/{action}">(.*?)</form>', page, re.S)
    assert form is not None, page
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(1)))
