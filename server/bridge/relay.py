"""Handing an email to the configured relay (aiosmtplib), and what a failure means.

A relay's answer decides the outcome (RFC 5321 §4.2.1): a 5xx reply to the
recipient or the data is permanent (``bounced``: recorded for the school,
never retried); a 4xx reply, a timeout or a refused connection is transient
(``retry`` with exponential backoff: ``retry_seconds × 2^(attempt-1)``, at
most six hours, ``failed`` after ``max_attempts``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

import aiosmtplib

from server.config import Settings

MAX_BACKOFF = timedelta(hours=6)


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    BOUNCED = "bounced"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int | None = None
    reason: str = ""


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones."""
    delay = timedelta(seconds=settings.bridge_retry_seconds * 2 ** max(0, attempts - 1))
    return min(delay, MAX_BACKOFF)


async def hand_over(settings: Settings, message: EmailMessage, sender: str, to: str) -> Result:
    """Send one email through the relay; never raises for relay or network trouble."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            sender=sender,
            recipients=[to],
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            start_tls=settings.smtp_starttls,
            use_tls=False,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout_seconds,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0] if exc.recipients else None
        code = first.code if first is not None else 550
        return _classify(code, first.message if first is not None else "recipient refused")
    except aiosmtplib.SMTPResponseException as exc:
        return _classify(exc.code, exc.message)
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return Result(Outcome.RETRY, None, type(exc).__name__)
    return Result(Outcome.SENT)


def _classify(code: int, message: str) -> Result:
    reason = message[:200]
    if 500 <= code < 600:
        return Result(Outcome.BOUNCED, code, reason)
    return Result(Outcome.RETRY, code, reason)
