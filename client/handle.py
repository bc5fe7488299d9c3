"""A conversation as the application holds it: its description and its verbs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from client.conversations import ConversationInfo
from client.messages import SentReceipt

if TYPE_CHECKING:
    from client.client import Client

__all__ = ["ConversationHandle"]


@dataclass(frozen=True)
class ConversationHandle:
    """One conversation of a connected :class:`client.Client`.

    ``info`` is a snapshot taken when the handle was made; the client keeps its own
    copy current from membership events, and :meth:`refresh` fetches a new one.
    """

    client: Client
    info: ConversationInfo

    @property
    def id(self) -> str:
        """The conversation id."""
        return self.info.id

    @property
    def kind(self) -> str:
        """``direct``, ``group``, ``class`` or ``announcement``."""
        return self.info.kind

    @property
    def members(self) -> tuple[str, ...]:
        """Member person ids (as of the snapshot)."""
        return self.info.members

    async def send(self, text: str) -> SentReceipt:
        """Send a text (see :meth:`client.Client.send`).

        Args:
            text: The message.

        Returns:
            The server's receipt.

        Raises:
            NoDevices: nobody else has a device with keys.
            SendRefused: the server refused the send.
            ConnectionFailed: the client stopped.
            TimeoutError: no ``sent`` in time.
        """
        return await self.client.send(self.id, text)

    async def add_member(self, person_id: str) -> ConversationHandle:
        """Add a member (owners only).

        Args:
            person_id: The new member.

        Returns:
            The handle after the change.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: not connected.
        """
        return ConversationHandle(self.client, await self.client.add_member(self.id, person_id))

    async def remove_member(self, person_id: str) -> None:
        """Remove a member (owners only).

        Args:
            person_id: Who goes.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: not connected.
        """
        await self.client.remove_member(self.id, person_id)

    async def leave(self) -> None:
        """Leave the conversation.

        Raises:
            ApiError: ``not_allowed`` (direct), ``unknown_conversation``.
            ClientError: not connected.
        """
        await self.client.leave(self.id)

    async def refresh(self) -> ConversationHandle:
        """Fetch the conversation again.

        Returns:
            A handle with the current members.

        Raises:
            ApiError: ``unknown_conversation`` (we were removed).
            ClientError: not connected.
        """
        return await self.client.conversation(self.id)
