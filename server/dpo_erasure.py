"""Erasure of a person (RGPD art. 17), shared by the DPO API, the CLI and retention.

Order (each step idempotent, so a retry after a crash finishes the job):

1. refuse if a legal hold protects the person (art. 17(3)(e));
2. scrub them from every collection but the account's own
   (:meth:`storage.subjects.SubjectRepository.erase`: delete what is about
   them, replace them by ``"erased"`` elsewhere, drop them from arrays);
3. remove the account with its devices, codes, prekeys and queued messages
   (:func:`server.admin_actions.remove_person`, the same cascade as the
   admin API), which revokes every key the server holds for them, then
   sweep once more for what that cascade wrote;
4. drop their audit aliases, ended holds, and the name on their requests;
5. record the erasure in the audit log, naming the person: the one trace
   kept, as the controller's proof that it complied (art. 5(2), 17(3)(b)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.admin_actions import remove_person
from storage.database import Store


class ErasureBlocked(Exception):
    """A legal hold protects this person; nothing was erased."""


@dataclass(frozen=True)
class ErasureReport:
    person_id: str
    school: str | None
    devices: int
    touched: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "school": self.school,
            "devices": self.devices,
            "touched": self.touched,
            "dry_run": self.dry_run,
        }


async def erase_person(
    store: Store,
    person_id: str,
    actor: str,
    now: datetime,
    request_id: str | None = None,
    dry_run: bool = False,
) -> ErasureReport:
    """Erase ``person_id`` everywhere (see the module steps).

    Args:
        store: the repositories.
        person_id: who to erase.
        actor: who asked (``dpo:<token id>``, ``cli``, ``retention``).
        now: the time of the erasure.
        request_id: the art. 12 request this answers, if any.
        dry_run: only count what would be touched.

    Raises:
        ErasureBlocked: an active legal hold protects the person.
    """
    if await store.holds.held([person_id], now):
        raise ErasureBlocked(person_id)
    person = await store.directory.person(person_id)
    school = person.uai if person else None
    ids = await store.subjects.identifiers(person_id)
    if dry_run:
        counts: dict[str, int] = {}
        async for name, _ in store.subjects.documents(ids):
            counts[name] = counts.get(name, 0) + 1
        return ErasureReport(person_id, school, len(ids.device_ids), counts, dry_run=True)
    touched = await store.subjects.erase(ids)
    await remove_person(store, person_id)
    # the account cascade may write membership events naming them: sweep again
    for name, n in (await store.subjects.erase(ids)).items():
        touched[name] = touched.get(name, 0) + n
    touched["audit_subjects"] = await store.audit.forget_subjects(ids.all)
    touched["legal_holds"] = await store.holds.forget_subject(person_id)
    touched["dpo_requests"] = await store.dpo_requests.anonymise_person(person_id)
    touched = {name: n for name, n in touched.items() if n}
    details: dict[str, Any] = {
        "person": person_id,
        "devices": list(ids.device_ids),
        "touched": touched,
        "request": request_id,
    }
    await store.audit.record(actor, "person.erase", person_id, school, details, now, in_clear=True)
    return ErasureReport(person_id, school, len(ids.device_ids), touched)
