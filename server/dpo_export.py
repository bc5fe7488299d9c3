"""Right of access (RGPD art. 15): everything held about a person, as a streamed zip.

The archive holds one JSON file per collection that names the person or one
of their devices (found generically, :meth:`storage.subjects.SubjectRepository.documents`),
plus ``audit_log.json`` (the audit entries about them, through their
aliases) and ``README.txt``. Hashes of secrets and ciphertext, which the
server cannot read, are left out.

The zip is written as it is read: :class:`_Spool` collects what
:mod:`zipfile` writes (streaming mode, data descriptors, zip64) and every
document is flushed to the client before the next is read, so memory stays
bounded by one document, whatever the size of the export.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from typing import IO, Any

from aiohttp import web

from crypto.encoding import b64url_encode
from storage.database import Store
from storage.subjects import Identifiers

log = logging.getLogger(__name__)

README = """\
Carnet: personal data export (RGPD art. 15)

Person: {person_id}
Generated: {now}

One JSON file per collection of the Carnet database that names this person
or one of their devices, plus audit_log.json, the administrative actions
that concerned them. Dates are ISO 8601 (UTC), binary values (public keys,
commitments) base64url. Message content is end-to-end encrypted: the server
never could read it and it is not part of this export; it lives on the
person's own devices.
"""


def plain(value: Any) -> Any:
    """A JSON-ready copy: datetimes as ISO 8601, bytes as base64url."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return b64url_encode(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _dumps(doc: Any) -> bytes:
    # default=str: ObjectIds and any other BSON scalar, as their text form
    return json.dumps(plain(doc), ensure_ascii=False, indent=1, default=str).encode()


class _Spool:
    """A write-only file for :mod:`zipfile`: keeps bytes until :meth:`take`."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do: :meth:`take` hands the bytes over."""

    def close(self) -> None:
        """Nothing to release."""

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


class _Member:
    """One JSON array inside the zip, written document by document."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self._file: IO[bytes] = archive.open(name, "w", force_zip64=True)
        self._file.write(b"[\n")
        self._first = True

    def add(self, doc: Any) -> None:
        if not self._first:
            self._file.write(b",\n")
        self._first = False
        self._file.write(_dumps(doc))

    def close(self) -> None:
        self._file.write(b"\n]\n")
        self._file.close()


async def export_chunks(store: Store, ids: Identifiers, now: datetime) -> AsyncIterator[bytes]:
    """The person's zip archive, in pieces of at most one document (plus zip framing)."""
    spool = _Spool()
    # Not a ``with``: on an error the archive is abandoned, never closed half-written.
    archive = zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED)
    archive.writestr("README.txt", README.format(person_id=ids.person_id, now=now.isoformat()))
    yield spool.take()
    member: _Member | None = None
    current = ""
    async for name, doc in store.subjects.documents(ids, skip={"audit_log", "audit_heads"}):
        if name != current:
            if member is not None:
                member.close()
            member, current = _Member(archive, f"{name}.json"), name
        assert member is not None  # noqa: S101 - set on the first document
        member.add(doc)
        yield spool.take()
    if member is not None:
        member.close()
    audit = _Member(archive, "audit_log.json")
    for entry in await store.audit.about(list(ids.all)):
        audit.add(entry)
    audit.close()
    archive.close()
    yield spool.take()


async def stream_export(
    request: web.Request, store: Store, ids: Identifiers, now: datetime
) -> web.StreamResponse:
    """Send the person's archive as ``application/zip``, built while it is sent."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="carnet-{ids.person_id}.zip"',
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    try:
        async for chunk in export_chunks(store, ids, now):
            if chunk:
                await response.write(chunk)
    except Exception:
        # The status line is sent: the only honest signal left is a cut connection
        # (the client gets a truncated, invalid zip, never a partial one that looks whole).
        log.exception("export of %s failed after it started", ids.person_id)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
