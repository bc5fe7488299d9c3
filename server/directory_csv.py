"""The directory's CSV import format (docs/directory-import.md), parsed and validated.

Parsing is pure: text in, validated records out, or :class:`ImportRejected`
with every problem by line. Writing is the repository's (one transaction), so
a bad file imports nothing.

Columns (header row required; order free; ``,`` or ``;`` separated, UTF-8 with
or without BOM): ``uai, external_id, role, given_name, family_name`` are
required; ``school_name, timezone, email, classes, children, email_only`` are
optional. ``classes`` and ``children`` hold ``|``-separated lists.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from storage.directory import NumberedRecord
from storage.errors import ImportRejected, RowProblem
from storage.models import PersonRecord, Role, School

REQUIRED = ("uai", "external_id", "role", "given_name", "family_name")
OPTIONAL = ("school_name", "timezone", "email", "classes", "children", "email_only")
MAX_ROWS = 50_000
IMPORTABLE_ROLES = frozenset(Role) - {Role.OPERATOR}
_TRUE = {"1", "true", "yes", "oui", "x"}
_FALSE = {"", "0", "false", "no", "non"}


@dataclass(frozen=True)
class ParsedDirectory:
    records: list[NumberedRecord]
    schools: list[School]


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split("|") if part.strip())


def parse_directory_csv(source: str, text: str) -> ParsedDirectory:
    """Validate a whole file; nothing is returned unless every row is valid.

    Raises:
        ImportRejected: with file, line and reason for every problem found.
    """
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, strict=True)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if missing or unknown:
        reasons = [f"missing column {c}" for c in missing] + [
            f"unknown column {c!r}" for c in unknown
        ]
        raise ImportRejected(source, [RowProblem(1, r) for r in reasons])

    problems: list[RowProblem] = []
    records: list[NumberedRecord] = []
    schools: dict[str, School] = {}
    seen: dict[tuple[str, str], int] = {}
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise ImportRejected(
            source, [RowProblem(reader.line_num, f"not valid CSV: {exc}")]
        ) from None
    if len(rows) > MAX_ROWS:
        raise ImportRejected(source, [RowProblem(1, f"more than {MAX_ROWS} rows; split the file")])
    for index, row in enumerate(rows):
        line = index + 2  # 1-based, after the header (rows never span lines in this format)
        if None in row:
            problems.append(RowProblem(line, "more fields than columns"))
            continue
        cells = {k: (v or "").strip() for k, v in row.items()}
        problem = _check_row(line, cells, records, schools, seen)
        if problem:
            problems.append(problem)
    if not rows:
        problems.append(RowProblem(1, "no rows"))
    if problems:
        raise ImportRejected(source, problems)
    return ParsedDirectory(records, list(schools.values()))


def _check_row(
    line: int,
    cells: dict[str, str],
    records: list[NumberedRecord],
    schools: dict[str, School],
    seen: dict[tuple[str, str], int],
) -> RowProblem | None:
    flag = cells.get("email_only", "").lower()
    if flag not in _TRUE | _FALSE:
        return RowProblem(line, f"email_only must be yes or no, not {flag!r}")
    try:
        record = PersonRecord(
            uai=cells["uai"],
            external_id=cells["external_id"],
            role=cells["role"].lower(),
            given_name=cells["given_name"],
            family_name=cells["family_name"],
            email=cells.get("email") or None,
            classes=_split(cells.get("classes", "")),
            children=_split(cells.get("children", "")),
            email_only=flag in _TRUE,
        )
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        return RowProblem(line, f"{field}: {err['msg']}")
    if record.role not in IMPORTABLE_ROLES:
        return RowProblem(line, f"role {record.role.value} cannot be imported per school")
    if record.children and record.role != Role.PARENT:
        return RowProblem(line, "only parents have children")
    if record.role == Role.PUPIL and len(record.classes) > 1:
        return RowProblem(line, "a pupil is in one class")
    if record.email_only and not record.email:
        return RowProblem(line, "email_only needs an email address")
    key = (record.uai, record.external_id)
    if key in seen:
        return RowProblem(line, f"external_id {record.external_id} already on line {seen[key]}")
    seen[key] = line
    school_problem = _check_school(line, record.uai, cells, schools)
    if school_problem:
        return school_problem
    records.append(NumberedRecord(line, record))
    return None


def _check_school(
    line: int, uai: str, cells: dict[str, str], schools: dict[str, School]
) -> RowProblem | None:
    name, timezone = cells.get("school_name", ""), cells.get("timezone", "") or "Europe/Paris"
    if not name:
        return None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return RowProblem(line, f"unknown time zone {timezone!r}")
    try:
        school = School(uai=uai, name=name, timezone=timezone)
    except ValidationError:
        return RowProblem(line, "school_name: 1 to 100 characters")
    known = schools.setdefault(uai, school)
    if known != school:
        return RowProblem(line, f"school {uai} named or zoned differently on an earlier line")
    return None
