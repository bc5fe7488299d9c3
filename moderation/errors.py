"""Exceptions raised by :mod:`moderation`.

Refusals are not exceptions: every decision function returns a
:class:`moderation.reasons.Decision` carrying a documented reason code
(docs/moderation.md, "Reason codes"). Exceptions are for invalid inputs and
bugs, split between the peer's mistakes and ours (h11's
``RemoteProtocolError`` / ``LocalProtocolError``)::

    ModerationError              root; carries ``status_hint``
    ├── PolicyError              a policy document is invalid (400; names the field)
    ├── IllegalTransition        a report moved along an edge the table forbids (409)
    └── ModerationUsageError     the library was called wrongly (500; our bug)

``server/`` maps ``status_hint`` to an HTTP status or an ``error`` frame; only
:class:`PolicyError` messages are meant for the director who sent the document.
"""

from __future__ import annotations

__all__ = ["IllegalTransition", "ModerationError", "ModerationUsageError", "PolicyError"]


class ModerationError(Exception):
    """Root of every exception raised by :mod:`moderation`.

    Attributes:
        status_hint: HTTP-like status that ``server/`` may map to a response.
    """

    status_hint: int = 400


class PolicyError(ModerationError):
    """A school's policy document does not validate.

    The message names every offending field as a dotted path, e.g.
    ``quiet_hours.start: Input should be a valid time``.

    Attributes:
        problems: ``(field path, message)`` pairs, in document order.
    """

    status_hint = 400

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


class IllegalTransition(ModerationError):
    """A report state change that the transition table does not allow."""

    status_hint = 409


class ModerationUsageError(ModerationError):
    """Local code called the library wrongly (naive datetime, unknown school, ...)."""

    status_hint = 500
