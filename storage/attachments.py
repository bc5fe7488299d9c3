"""Attachments: ciphertext blobs in GridFS, streamed in and out, never whole in memory.

Clients encrypt attachments themselves (the key travels inside the message
that references the attachment); the server stores opaque bytes with their
conversation, uploader and expiry (``metadata``), and deletes them when they
expire, like undelivered messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from gridfs import AsyncGridFSBucket, NoFile
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
CHUNK = 255 * 1024


class AttachmentTooLarge(Exception):
    """The upload went over the configured size limit (nothing was kept)."""


@dataclass(frozen=True)
class AttachmentInfo:
    attachment_id: str
    conversation: str
    uploader: str
    length: int
    expires_at: datetime


class AttachmentRepository:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self._bucket = AsyncGridFSBucket(db, bucket_name="attachments", chunk_size_bytes=CHUNK)
        self._files = db["attachments.files"]

    async def create_indexes(self) -> None:
        await self._files.create_index("metadata.expires_at", name="expiry")
        await self._files.create_index("metadata.conversation", name="conversation")

    async def store(
        self,
        chunks: AsyncIterator[bytes],
        conversation: str,
        uploader: str,
        expires_at: datetime,
        limit: int,
    ) -> AttachmentInfo:
        """Stream ``chunks`` into GridFS.

        Raises:
            AttachmentTooLarge: more than ``limit`` bytes; the partial file is deleted.
        """
        metadata = {"conversation": conversation, "uploader": uploader, "expires_at": expires_at}
        stream = self._bucket.open_upload_stream("attachment", metadata=metadata)
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise AttachmentTooLarge
                await stream.write(chunk)
        except BaseException:
            await stream.abort()
            raise
        await stream.close()
        return AttachmentInfo(str(stream._id), conversation, uploader, size, expires_at)

    async def info(self, attachment_id: str) -> AttachmentInfo | None:
        try:
            oid = ObjectId(attachment_id)
        except (InvalidId, TypeError):
            return None
        doc = await self._files.find_one({"_id": oid})
        if doc is None:
            return None
        meta = doc.get("metadata", {})
        return AttachmentInfo(
            attachment_id,
            meta["conversation"],
            meta["uploader"],
            int(doc["length"]),
            meta["expires_at"],
        )

    async def chunks(self, attachment_id: str) -> AsyncIterator[bytes]:
        """The stored bytes, one GridFS chunk at a time."""
        try:
            stream = await self._bucket.open_download_stream(ObjectId(attachment_id))
        except NoFile:
            return
        while True:
            data = await stream.readchunk()
            if not data:
                break
            yield data

    async def purge_expired(self, now: datetime) -> int:
        ids = [
            d["_id"]
            async for d in self._files.find({"metadata.expires_at": {"$lte": now}}, {"_id": 1})
        ]
        for oid in ids:
            try:
                await self._bucket.delete(oid)
            except NoFile:
                continue
        return len(ids)

    async def forget_uploader(self, person_id: str) -> None:
        ids = [
            d["_id"] async for d in self._files.find({"metadata.uploader": person_id}, {"_id": 1})
        ]
        for oid in ids:
            try:
                await self._bucket.delete(oid)
            except NoFile:
                continue
