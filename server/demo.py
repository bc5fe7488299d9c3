"""The demo school that ``carnet serve --demo`` (``make serve``) loads.

One school, one class, a teacher, a director, three pupils and their parents
(one family with two separated parents, each with their own rights), an
enrolment code per person and an operator token. Everything is written to
``<data dir>/demo.json`` (mode 0600: it holds secrets) and printed; a second
start finds the same school and reprints the same file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from server.admin_actions import create_api_token, import_directory, issue_enrolment_code
from storage.database import Store

DEMO_UAI = "9999999D"
DEMO_CSV = (Path(__file__).parent / "demo_school.csv").read_text(encoding="utf-8")


def demo_file(data_dir: Path) -> Path:
    return data_dir / "demo.json"


async def load_demo(store: Store, data_dir: Path, now: datetime, code_days: int) -> dict[str, Any]:
    """Create the demo school once; return what ``demo.json`` holds."""
    path = demo_file(data_dir)
    if path.exists() and await store.directory.school(DEMO_UAI) is not None:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    await import_directory(store, "demo", DEMO_CSV, now)
    people = []
    for person in await store.directory.people_of_school(DEMO_UAI):
        code, expires_at = await issue_enrolment_code(
            store, person.id, now, timedelta(days=code_days)
        )
        people.append(
            {
                "person_id": person.id,
                "name": person.display_name,
                "role": person.role.value,
                "external_id": person.external_id,
                "code": code.text,
                "code_expires_at": expires_at.isoformat(),
            }
        )
    order = ["teacher", "director", "pupil", "parent"]
    people.sort(key=lambda p: (order.index(p["role"]), p["external_id"]))
    token, _ = await create_api_token(store, "operator", None, "demo operator", now)
    demo = {"school": {"uai": DEMO_UAI, "class": "5e B"}, "people": people, "operator_token": token}
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(demo, out, ensure_ascii=False, indent=2)
    return demo


def describe(demo: dict[str, Any], path: Path) -> str:
    """A readable table of the demo people and their codes."""
    lines = [f"Demo school {demo['school']['uai']}, class {demo['school']['class']} ({path}):"]
    for p in demo["people"]:
        lines.append(f"  {p['role']:<9} {p['name']:<18} code {p['code']}")
    lines.append(f"  operator token: {demo['operator_token']}")
    return "\n".join(lines)
