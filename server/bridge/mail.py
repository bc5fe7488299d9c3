"""Composing the notification email (docs/email-bridge.md, "Modes").

Sans-I/O. One email per conversation per batch window, in French then English,
as ``multipart/alternative`` (plain text and HTML, both from jinja2
templates). In the default mode it says who wrote, in which conversation and
when, with no content, and carries the reading link; in full-content mode
(the school's opt-in) it also carries the messages. The ``Message-ID`` is
derived from the queue entry, so a retried send is the same email to the
receiving side, and ``Reply-To`` is the signed reply address when replying is
allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

ENV = Environment(
    loader=PackageLoader("server", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Shown:
    """One message as the email or the page shows it."""

    seq: int
    sender: str
    at: str
    text: str


@dataclass(frozen=True)
class Notification:
    outbox_id: str
    to: str
    from_address: str
    school: str
    senders: tuple[str, ...]
    conversation: str
    count: int
    last_at: datetime
    link: str
    link_expires: datetime
    reply_to: str | None
    messages: tuple[Shown, ...] = ()
    """Only in full-content mode."""
    timezone: str = "Europe/Paris"


def local_time(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y %H:%M")


def compose(n: Notification) -> EmailMessage:
    """The email for one queue entry."""
    context = {
        "n": n,
        "senders": ", ".join(n.senders),
        "when": local_time(n.last_at, n.timezone),
        "expires": local_time(n.link_expires, n.timezone),
    }
    message = EmailMessage()
    domain = n.from_address.rpartition("@")[2] or "carnet.invalid"
    message["Subject"] = (
        f"Carnet : nouveau message de {context['senders']} / New message from {context['senders']}"
    )
    message["From"] = formataddr((f"Carnet – {n.school}", n.from_address))
    message["To"] = n.to
    if n.reply_to is not None:
        message["Reply-To"] = n.reply_to
    message["Message-ID"] = f"<{n.outbox_id}@{domain}>"
    message["Date"] = format_datetime(n.last_at)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["Content-Language"] = "fr, en"
    message.set_content(ENV.get_template("bridge/notification.txt").render(context))
    message.add_alternative(
        ENV.get_template("bridge/notification.html").render(context), subtype="html"
    )
    return message
