"""Reading a parent's reply email: the new text only (docs/email-bridge.md, "Replies").

Sans-I/O. The text/plain part is preferred (an HTML-only mail is reduced to
its text); then everything from the first quote header ("Le ... a écrit :",
"On ... wrote:", "-----Original Message-----", "De :"/"From:" blocks), quoted
lines (``>``), and signatures (the RFC 3676 ``-- `` delimiter and the usual
"Envoyé de mon ..." / "Sent from my ...") is dropped.
"""

from __future__ import annotations

import html
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

MAX_REPLY_CHARS = 4000

_QUOTE_HEADERS = [
    re.compile(r"^\s*(le|on)\s.{0,200}(a écrit|wrote)\s*:?\s*$", re.I),
    re.compile(r"^\s*-{2,}\s*(original message|message d'origine|message original)", re.I),
    re.compile(r"^\s*(de|from)\s*:\s*.+@", re.I),
    re.compile(r"^_{20,}\s*$"),
]
_SIGNATURES = [
    re.compile(r"^--\s*$"),
    re.compile(r"^\s*(envoyé|envoye) (de|depuis) mon ", re.I),
    re.compile(r"^\s*sent from my ", re.I),
    re.compile(r"^\s*(get|obtenir) outlook pour ", re.I),
]


def parse_email(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # noqa: S101 - policy.default builds EmailMessage
    return message


def sender_address(message: EmailMessage) -> str:
    """The address in ``From:`` (lowercased), or ``""``."""
    return parseaddr(str(message.get("From", "")))[1].strip().lower()


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        content = re.sub(r"(?is)<(script|style|blockquote).*?</\1>", "", content)
        content = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content)
        content = html.unescape(re.sub(r"<[^>]+>", "", content))
    return content


def new_text(message: EmailMessage) -> str:
    """The reply's own text, without quotes and signature, at most ``MAX_REPLY_CHARS``."""
    kept: list[str] = []
    for line in _text_of(message).replace("\r\n", "\n").split("\n"):
        if any(p.search(line) for p in _QUOTE_HEADERS + _SIGNATURES):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    text = "\n".join(kept).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text[:MAX_REPLY_CHARS]
