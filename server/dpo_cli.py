"""``carnet dpo ...``: the DPO's command line, the same actions as ``/v1/dpo``.

- ``carnet dpo register [--school UAI] [--html]``: the art. 30 record.
- ``carnet dpo export PERSON_ID --output FILE.zip``: the art. 15 archive.
- ``carnet dpo erase PERSON_ID [--request R] [--dry-run]``: art. 17 erasure.
- ``carnet dpo requests [--school UAI] [--overdue]``: art. 12 requests;
  ``--add PERSON_ID --kind KIND`` records one, ``--close R --status S
  --outcome TEXT`` answers one.
- ``carnet dpo audit-verify``: verify the audit chain (exit 1 if broken).
- ``carnet dpo retention-plan [--school UAI]``: the retention dry run.

Every command is recorded in the audit log with the actor ``cli:dpo``
(whoever can run it has the server's own configuration and database).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from server.clock import SystemClock
from server.config import Settings
from server.dpo_erasure import ErasureBlocked, erase_person
from server.dpo_export import export_chunks, plain
from server.metrics import Metrics
from server.register import build_register, render_html
from server.retention_jobs import RetentionScheduler
from storage.database import Store
from storage.dpo_requests import RequestKind, RequestStatus

ACTOR = "cli:dpo"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file of settings")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")


def add_dpo_commands(commands: Any) -> None:
    """Add ``carnet dpo`` and its subcommands to the ``carnet`` parser."""
    dpo = commands.add_parser("dpo", help="the DPO's tools (RGPD)")
    actions = dpo.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="the record of processing (art. 30)")
    _common(register)
    register.add_argument("--school", help="the school's UAI")
    register.add_argument("--html", action="store_true", help="HTML instead of JSON")
    export = actions.add_parser("export", help="everything held about a person (art. 15)")
    _common(export)
    export.add_argument("person_id")
    export.add_argument("--output", type=Path, required=True, help="the zip file to write")
    erase = actions.add_parser("erase", help="erase a person everywhere (art. 17)")
    _common(erase)
    erase.add_argument("person_id")
    erase.add_argument("--request", help="the art. 12 request this answers")
    erase.add_argument("--dry-run", action="store_true", help="only count what would go")
    requests = actions.add_parser("requests", help="data subject requests (art. 12)")
    _common(requests)
    requests.add_argument("--school", help="the school's UAI")
    requests.add_argument("--overdue", action="store_true", help="only open, past deadline")
    requests.add_argument("--add", metavar="PERSON_ID", help="record a request for a person")
    requests.add_argument("--kind", choices=[k.value for k in RequestKind], default="access")
    requests.add_argument("--close", metavar="REQUEST_ID", help="answer a request")
    requests.add_argument("--status", choices=[s.value for s in RequestStatus], default="done")
    requests.add_argument("--outcome", default="", help="what was done")
    verify = actions.add_parser("audit-verify", help="verify the audit log's hash chain")
    _common(verify)
    plan = actions.add_parser("retention-plan", help="what retention would delete now")
    _common(plan)
    plan.add_argument("--school", help="the school's UAI")


def _print(value: Any) -> None:
    print(json.dumps(plain(value), ensure_ascii=False, indent=2))


async def run_dpo_command(
    args: argparse.Namespace, store: Store, settings: Settings, now: datetime
) -> int:
    """Run one ``carnet dpo`` command; returns the exit status."""
    audit = store.audit
    if args.action == "register":
        school = await store.directory.school(args.school) if args.school else None
        info = {"uai": school.uai, "name": school.name} if school else None
        register = build_register(settings, now, info)
        await audit.record(ACTOR, "register.read", None, args.school, None, now)
        print(render_html(register) if args.html else json.dumps(register, indent=2))
        return 0
    if args.action == "export":
        person = await store.directory.person(args.person_id)
        if person is None:
            print(f"carnet: no person {args.person_id}", file=sys.stderr)
            return 1
        await audit.record(ACTOR, "person.export", person.id, person.uai, None, now)
        ids = await store.subjects.identifiers(person.id)
        with args.output.open("wb") as out:
            async for chunk in export_chunks(store, ids, now):
                out.write(chunk)
        print(f"wrote {args.output}")
        return 0
    if args.action == "erase":
        try:
            report = await erase_person(
                store, args.person_id, ACTOR, now, args.request, dry_run=args.dry_run
            )
        except ErasureBlocked:
            print("carnet: a legal hold suspends this person's erasure", file=sys.stderr)
            return 1
        _print(report.as_dict())
        return 0
    if args.action == "requests":
        return await _requests(args, store, now)
    if args.action == "audit-verify":
        result = await audit.verify()
        await audit.record(ACTOR, "audit.verify", None, None, {"ok": result.ok}, now)
        _print(result.as_dict())
        return 0 if result.ok else 1
    scheduler = RetentionScheduler(store, settings, SystemClock(), Metrics(), owner=ACTOR)
    plan = await scheduler.plan(now, args.school)
    await audit.record(ACTOR, "retention.dry_run", None, args.school, None, now)
    _print({"now": now, "school": args.school, "would_delete": plan})
    return 0


async def _requests(args: argparse.Namespace, store: Store, now: datetime) -> int:
    requests = store.dpo_requests
    if args.add:
        person = await store.directory.person(args.add)
        if person is None:
            print(f"carnet: no person {args.add}", file=sys.stderr)
            return 1
        doc = await requests.record(RequestKind(args.kind), person.id, person.uai, now, "", ACTOR)
        await store.audit.record(ACTOR, "request.record", doc["_id"], person.uai, None, now)
        _print(doc)
        return 0
    if args.close:
        closed = await requests.close(args.close, RequestStatus(args.status), args.outcome, now)
        if closed is None:
            print(f"carnet: no request {args.close}", file=sys.stderr)
            return 1
        await store.audit.record(ACTOR, "request.update", args.close, closed["school"], None, now)
        _print(closed)
        return 0
    docs = await requests.listing(args.school, now, overdue_only=args.overdue)
    await store.audit.record(ACTOR, "request.list", None, args.school, None, now)
    _print({"requests": docs})
    return 0
