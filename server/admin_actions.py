"""Administrative actions shared by the REST admin API and the CLI.

Each function takes the store and the time explicitly, so the CLI (which may
run beside a live server) and the API do exactly the same thing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.auth import new_token
from server.codes import EnrolmentCode, generate_code
from server.directory_csv import parse_directory_csv
from server.membership import Submit, sync_class_channels, write_event
from storage.database import Store
from storage.directory import ImportSummary
from storage.errors import DuplicateKey

CODE_DRAWS = 8
"""Lookup collisions are rare (20 bits); after this many draws something is wrong."""


async def import_directory(
    store: Store, source: str, text: str, now: datetime, submit: Submit | None = None
) -> ImportSummary:
    """Validate then import a directory CSV, all or nothing; then bring the
    class channels of the schools it touched in line (when ``submit`` is given).

    Raises:
        ImportRejected: the file is invalid; nothing was written.
    """
    parsed = parse_directory_csv(source, text)
    summary = await store.directory.apply_import(source, parsed.records, parsed.schools, now)
    if submit is not None:
        classes = await store.conversations.class_ids_of_schools(summary.uais)
        await sync_class_channels(store, submit, now, classes)
    return summary


async def issue_enrolment_code(
    store: Store, person_id: str, now: datetime, valid_for: timedelta
) -> tuple[EnrolmentCode, datetime]:
    """Create a one-time code for ``person_id``; returns it (shown once) and its expiry.

    Raises:
        DuplicateKey: no free lookup was found in ``CODE_DRAWS`` draws.
    """
    expires_at = now + valid_for
    for _ in range(CODE_DRAWS):
        code = generate_code()
        try:
            await store.enrolment.add_code(
                code.lookup, code.secret_hash, person_id, now, expires_at
            )
        except DuplicateKey:
            continue
        return code, expires_at
    raise DuplicateKey("no free enrolment code lookup")


async def create_api_token(
    store: Store, role: str, school: str | None, label: str, now: datetime, actor: str = "cli"
) -> tuple[str, str]:
    """Create an operator or DPO token; returns (token shown once, token id)."""
    token = new_token(role)
    token_id = await store.tokens.add(token, role, school, label, now)
    await store.audit.record(
        actor, "token.create", f"token:{token_id}", school, {"role": role}, now
    )
    return token, token_id


async def remove_person(
    store: Store, person_id: str, now: datetime | None = None, submit: Submit | None = None
) -> bool:
    """Remove a person with their devices, codes, prekeys, cursors and ciphertexts.

    With ``submit``, every conversation they were in gets a ``removed`` event, so
    the other members rotate their sender keys (DPO erasure passes none: an
    event would name the erased person again).

    Idempotent: a retry after a failure finishes the job. Returns False if the
    person did not exist.
    """
    moment = now or datetime.now(UTC)
    conversations = await store.conversations.of_person(person_id) if submit else []
    devices = await store.enrolment.remove_person(person_id)
    for device_id in devices:
        await store.prekeys.forget_device(device_id)
        await store.cursors.forget_device(device_id)
    await store.messages.forget_devices(devices)
    await store.conversations.remove_person(person_id, moment)
    if submit is not None:
        for conversation in conversations:
            members = [m for m in conversation.members if m != person_id]
            await write_event(
                store, submit, moment, conversation.id, "removed", [person_id], None, members
            )
    return await store.directory.remove_person(person_id)
