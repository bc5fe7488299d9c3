"""The record of processing activities (RGPD art. 30(1)), generated from the live settings.

:func:`build_register` answers the seven points of art. 30(1): the
controller, the purposes, the categories of data subjects and of personal
data, the recipients, transfers outside the EU, the time limits for erasure
(read from the running configuration, so the register never disagrees with
what the retention jobs do) and the security measures of art. 32(1).
:func:`render_html` renders the same content as a page (jinja2, autoescaped).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from server.config import Settings

ARRETE_ENT = "Arrêté du 30 novembre 2006 (ENT), art. 6"
CNIL_LOGS = "CNIL, délibération n° 2021-122 du 14 octobre 2021 (journalisation)"

_env = Environment(
    loader=PackageLoader("server", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def retention_table(settings: Settings) -> list[dict[str, Any]]:
    """Each data category with its live duration and the source of its default."""
    return [
        {
            "category": "undelivered_ciphertext",
            "data": "end-to-end encrypted messages not yet delivered to a device",
            "duration": f"until delivered, at most {settings.undelivered_days} days",
            "days": settings.undelivered_days,
            "source": "RGPD art. 5(1)(c) and (e): minimisation; the server cannot read it",
        },
        {
            "category": "conversation_metadata",
            "data": "conversations, membership, sequence numbers, delivery cursors",
            "duration": "end of the school year (31 August) + "
            f"{settings.retention_metadata_margin_days} days",
            "days": settings.retention_metadata_margin_days,
            "source": f"{ARRETE_ENT}: data kept for the school year; margin for incidents",
        },
        {
            "category": "receipts",
            "data": "delivery, read and acknowledgement receipts",
            "duration": "end of the school year (31 August) + "
            f"{settings.retention_receipts_margin_days} days",
            "days": settings.retention_receipts_margin_days,
            "source": f"{ARRETE_ENT}: school-year data; acknowledgements prove notices",
        },
        {
            "category": "attachments",
            "data": "encrypted attachments",
            "duration": f"{settings.retention_attachment_days} days",
            "days": settings.retention_attachment_days,
            "source": "RGPD art. 5(1)(e); not stored yet by this version",
        },
        {
            "category": "reports",
            "data": "reports with franking proof and moderation decisions",
            "duration": f"{settings.retention_reports_days} days",
            "days": settings.retention_reports_days,
            "source": "RGPD art. 5(1)(e): time to handle and evidence an incident",
        },
        {
            "category": "audit_log",
            "data": "administrative and DPO actions (hash-chained)",
            "duration": f"{settings.retention_audit_days} days",
            "days": settings.retention_audit_days,
            "source": f"{CNIL_LOGS}: 6 months to 1 year",
        },
        {
            "category": "access_logs",
            "data": "connection logs (reverse proxy; Carnet keeps none itself)",
            "duration": f"{settings.retention_access_log_days} days",
            "days": settings.retention_access_log_days,
            "source": f"{CNIL_LOGS}: 6 months to 1 year",
        },
        {
            "category": "people_left",
            "data": "accounts, devices and keys of people who left the school",
            "duration": f"erased {settings.retention_left_days} days after leaving",
            "days": settings.retention_left_days,
            "source": f"{ARRETE_ENT}: deleted within three months of leaving",
        },
        {
            "category": "dpo_requests",
            "data": "data subject requests and their answers (closed ones)",
            "duration": f"{settings.retention_requests_days} days after closing",
            "days": settings.retention_requests_days,
            "source": "Code civil art. 2224 (5-year limitation period); RGPD art. 5(2)",
        },
    ]


def build_register(
    settings: Settings, now: datetime, school: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The art. 30(1) record, as JSON-ready data.

    Args:
        settings: the running configuration (durations, limits).
        now: when the record is generated.
        school: ``{"uai", "name"}`` of the school whose record this is, if any.
    """
    controller = (
        f"{school['name']} ({school['uai']}), represented by its head of school"
        if school
        else "each school of the deployment, represented by its head of school"
    )
    return {
        "title": "Carnet — record of processing activities (RGPD art. 30)",
        "generated_at": now.isoformat(),
        "controller": controller,
        "processor": "the operator of this Carnet deployment (RGPD art. 28)",
        "purposes": [
            "written communication between the school, pupils and families "
            "(carnet de liaison), within the school's public-interest mission "
            "(RGPD art. 6(1)(e))",
            "announcements to be acknowledged by guardians",
            "moderation and protection of pupils (contact policy, reports)",
            "security and accountability of the service (audit log)",
        ],
        "data_subjects": [
            "pupils (minors)",
            "parents and legal guardians",
            "teachers, staff and the head of school",
        ],
        "data_categories": [
            "identity: name, role, school (UAI), class, family links, school email",
            "devices: public identity and prekeys, enrolment dates, kind (app or email bridge)",
            "message metadata: conversation, sender, time, recipients, receipts",
            "message content: end-to-end encrypted, never readable by the server",
            "reports: franking commitment and stamp of the reported message",
            "audit log: who (token or role) did what administrative action, when",
        ],
        "sensitive_data": "none processed by design (content is encrypted end to end)",
        "recipients": [
            "members of each conversation (content, through their own devices)",
            "school moderators for reports",
            "the school's DPO and the deployment's operators (directory, audit)",
            "the SMTP relay for families without the app (notification, or content "
            "when the school opts in to full-content mail)",
        ],
        "transfers_outside_eu": "none",
        "retention": retention_table(settings),
        "security_measures": [
            "end-to-end encryption (X3DH, Double Ratchet, sender keys; "
            "XChaCha20-Poly1305) — the server stores ciphertext only",
            f"ciphertext deleted once delivered, at most after {settings.undelivered_days} days",
            "device authentication by Ed25519 signature; no passwords on the server",
            "one-time enrolment codes, hashed, short-lived "
            f"({settings.enrol_code_days} days) and attempt-limited "
            f"({settings.enrol_attempts_per_code} tries)",
            "operator and DPO tokens stored as SHA-256 hashes, scoped to a school",
            "tamper-evident hash-chained audit log of every administrative action",
            "retention jobs with legal holds; erasure across every collection",
            "rate limits on enrolment; bounded frames and queues",
        ],
        "rights": {
            "access (art. 15)": "GET /v1/dpo/people/{id}/export",
            "erasure (art. 17)": "POST /v1/dpo/people/{id}/erase",
            "requests and deadlines (art. 12)": "/v1/dpo/requests",
            "breach scoping (art. 33)": "POST /v1/dpo/breach-scope",
        },
    }


def render_html(register: dict[str, Any]) -> str:
    """The register as a standalone HTML page."""
    return _env.get_template("register.html").render(register=register)
