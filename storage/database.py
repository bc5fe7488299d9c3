"""Connection to the database and the repositories composed on it.

:class:`Store` owns one ``AsyncMongoClient`` and hands each repository the
collections of its aggregate; nothing else in Carnet holds a client. Indexes
are created at start, idempotently (``create_index`` on an existing index with
the same options is a no-op).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from storage.attachments import AttachmentRepository
from storage.audit import AuditLog
from storage.breach import BreachScope
from storage.bridge import BridgeRepository
from storage.conversations import ConversationRepository
from storage.cursors import CursorRepository
from storage.directory import DirectoryRepository
from storage.dpo_requests import RequestRepository
from storage.enrolment import EnrolmentRepository
from storage.errors import DatabaseUnavailable
from storage.heads import HeadRepository
from storage.leases import LeaseRepository
from storage.legal_holds import LegalHoldRepository
from storage.messages import MessageRepository
from storage.moderation import ModerationRepository
from storage.prekeys import PrekeyRepository
from storage.receipts import ReceiptRepository
from storage.retention import RetentionRepository
from storage.server_keys import ServerKeyRepository
from storage.subjects import SubjectRepository
from storage.throttle import ThrottleRepository
from storage.tokens import TokenRepository

Doc = dict[str, Any]


@dataclass(frozen=True)
class StoreOptions:
    """Settings of the storage layer that come from Carnet's configuration."""

    max_code_attempts: int = 5
    server_selection_timeout_ms: int = 10_000


class Store:
    """The repositories of one Carnet database.

    Args:
        client: a connected client; the store closes it in :meth:`close`.
        db_name: the database that holds Carnet's collections.
        options: storage settings.
    """

    def __init__(
        self, client: AsyncMongoClient[Doc], db_name: str, options: StoreOptions | None = None
    ) -> None:
        options = options or StoreOptions()
        self.client = client
        self.db = client[db_name]
        self.directory = DirectoryRepository(client, self.db)
        self.tokens = TokenRepository(self.db)
        self.enrolment = EnrolmentRepository(client, self.db, options.max_code_attempts)
        self.conversations = ConversationRepository(self.db)
        self.messages = MessageRepository(self.db)
        self.heads = HeadRepository(self.db)
        self.cursors = CursorRepository(self.db)
        self.receipts = ReceiptRepository(self.db)
        self.attachments = AttachmentRepository(self.db)
        self.throttle = ThrottleRepository(self.db)
        self.prekeys = PrekeyRepository(self.db)
        self.server_keys = ServerKeyRepository(self.db)
        self.audit = AuditLog(self.db)
        self.retention = RetentionRepository(self.db)
        self.holds = LegalHoldRepository(self.db)
        self.leases = LeaseRepository(self.db)
        self.dpo_requests = RequestRepository(self.db)
        self.subjects = SubjectRepository(self.db)
        self.breach = BreachScope(self.db)
        self.bridge = BridgeRepository(client, self.db)
        self.moderation = ModerationRepository(self.db)

    @classmethod
    async def connect(cls, uri: str, db_name: str, options: StoreOptions | None = None) -> Store:
        """Connect, check the server answers, and create every index.

        Raises:
            DatabaseUnavailable: the server did not answer ``ping``.
        """
        options = options or StoreOptions()
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=options.server_selection_timeout_ms,
            appname="carnet",
        )
        store = cls(client, db_name, options)
        try:
            await store.ping()
            await store.create_indexes()
        except DatabaseUnavailable:
            await client.close()
            raise
        return store

    async def ping(self) -> None:
        """Raises DatabaseUnavailable unless the server answers."""
        try:
            await self.client.admin.command("ping")
        except PyMongoError as exc:
            raise DatabaseUnavailable(type(exc).__name__) from None

    async def create_indexes(self) -> None:
        try:
            for repository in (
                self.directory,
                self.tokens,
                self.enrolment,
                self.conversations,
                self.messages,
                self.heads,
                self.cursors,
                self.receipts,
                self.attachments,
                self.throttle,
                self.prekeys,
                self.server_keys,
                self.audit,
                self.retention,
                self.holds,
                self.leases,
                self.dpo_requests,
                self.subjects,
                self.breach,
                self.bridge,
                self.moderation,
            ):
                await repository.create_indexes()
        except PyMongoError as exc:
            raise DatabaseUnavailable(type(exc).__name__) from None

    async def close(self) -> None:
        await self.client.close()
