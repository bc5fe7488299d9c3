"""The REST calls the SDK makes (docs/protocol.md, "REST API"), with typed answers.

Device calls carry the device's session token from the ``ready`` frame; admin calls
carry an operator token. Every error answer raises :class:`client.errors.ApiError`
with the documented code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from client.conversations import ConversationInfo
from client.errors import ApiError, ClientError
from crypto import InvalidMessage, PreKeyBundle
from crypto.encoding import b64url_decode, b64url_encode

__all__ = [
    "BRIDGE_KIND",
    "Contact",
    "DeviceInfo",
    "Enrolled",
    "HttpApi",
    "Person",
]

BRIDGE_KIND = "email-bridge"
"""Device kind of a family without the app: the school's server holds its keys."""


@dataclass(frozen=True)
class Enrolled:
    """Answer to ``POST /v1/enrol``."""

    device_id: str
    person_id: str
    kind: str


@dataclass(frozen=True)
class DeviceInfo:
    """One device of a person, with a prekey bundle if it published keys."""

    device_id: str
    kind: str
    identity_key: bytes
    bundle: PreKeyBundle | None

    @property
    def end_to_end(self) -> bool:
        """False for an email-bridge device: content leaves E2E at the school's server."""
        return self.kind != BRIDGE_KIND


@dataclass(frozen=True)
class Contact:
    """A person's devices as the server lists them (the calling device omitted)."""

    person_id: str
    devices: tuple[DeviceInfo, ...]

    @property
    def has_email_bridge(self) -> bool:
        """True if any device is an email bridge.

        A client must then warn: "not end-to-end encrypted beyond the school's server".
        """
        return any(not d.end_to_end for d in self.devices)


@dataclass(frozen=True)
class Person:
    """A directory entry."""

    person_id: str
    name: str
    role: str


class HttpApi:
    """Thin typed wrapper over the server's REST API."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        """Wrap a server.

        Args:
            base_url: ``http(s)://host[:port]`` of the server.
            session: An open aiohttp session (the caller closes it).
        """
        self.base_url = base_url.rstrip("/")
        self._session = session

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: object = None,
    ) -> Any:
        """Make one request and return its JSON body (``None`` for 204).

        Args:
            method: HTTP method.
            path: Path starting with ``/``.
            token: Bearer token, if any.
            json: JSON body, if any.

        Returns:
            The decoded JSON answer.

        Raises:
            ApiError: the server answered with an error status.
            ClientError: the server could not be reached or answered garbage.
        """
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._session.request(
                method, self.base_url + path, json=json, headers=headers
            ) as response:
                if response.status == 204:
                    return None
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if response.status >= 400:
                    raise _api_error(response.status, body, response.headers.get("Retry-After"))
                return body
        except aiohttp.ClientError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from None

    # --- device ---------------------------------------------------------------

    async def enrol(self, code: str, identity_key: bytes) -> Enrolled:
        """Enrol a device with a one-time code.

        Args:
            code: The enrolment code (``XXXX-XXXX-XXXX-XXXX``).
            identity_key: The device's Ed25519 public key.

        Returns:
            The new device's ids.

        Raises:
            ApiError: ``invalid_code`` (400), ``rate_limited`` (429), ``conflict`` (409).
            ClientError: network failure or malformed answer.
        """
        body = await self.request(
            "POST", "/v1/enrol", json={"code": code, "identity_key": b64url_encode(identity_key)}
        )
        try:
            return Enrolled(str(body["device_id"]), str(body["person_id"]), str(body["kind"]))
        except (KeyError, TypeError):
            raise ClientError("malformed enrolment answer") from None

    async def put_prekeys(
        self,
        token: str,
        signed_prekey: Mapping[str, object] | None,
        one_time_prekeys: Sequence[Mapping[str, object]],
    ) -> int:
        """Publish prekeys (at most 100 one-time prekeys per call).

        Args:
            token: Device session token.
            signed_prekey: ``{"id", "key", "signature"}`` or ``None``.
            one_time_prekeys: ``[{"id", "key"}, ...]``.

        Returns:
            How many one-time prekeys the server now holds.

        Raises:
            ApiError: refused (e.g. 422 for a bad signature).
            ClientError: network failure or malformed answer.
        """
        payload: dict[str, object] = {"one_time_prekeys": list(one_time_prekeys)}
        if signed_prekey is not None:
            payload["signed_prekey"] = dict(signed_prekey)
        body = await self.request("PUT", "/v1/devices/me/prekeys", token=token, json=payload)
        try:
            return int(body["prekeys_left"])
        except (KeyError, TypeError, ValueError):
            raise ClientError("malformed prekey answer") from None

    async def devices(
        self, token: str, person_id: str, bundles: Sequence[str] | None = None
    ) -> Contact:
        """List a person's devices (``GET /v1/people/{id}/devices``).

        Each bundle served consumes one of that device's one-time prekeys, so the
        SDK lists without bundles and asks for bundles only for devices it has no
        session with.

        Args:
            token: Device session token.
            person_id: The person.
            bundles: Devices to get a prekey bundle for (``None`` or empty: none).

        Returns:
            The contact.

        Raises:
            ApiError: ``not_found`` and friends.
            ClientError: network failure or malformed answer.
        """
        wanted = ",".join(bundles) if bundles else "none"
        body = await self.request(
            "GET", f"/v1/people/{person_id}/devices?bundles={wanted}", token=token
        )
        try:
            devices = tuple(
                DeviceInfo(
                    device_id=str(d["device_id"]),
                    kind=str(d["kind"]),
                    identity_key=b64url_decode(d["identity_key"], 32),
                    bundle=None if d.get("bundle") is None else PreKeyBundle.from_dict(d["bundle"]),
                )
                for d in body["devices"]
            )
        except (KeyError, TypeError, InvalidMessage):
            raise ClientError("malformed device list") from None
        return Contact(person_id, devices)

    # --- conversations (docs/protocol.md, "Conversations") ---------------------

    async def create_conversation(
        self,
        token: str,
        kind: str,
        members: Sequence[str],
        title: str = "",
        class_id: str | None = None,
        acknowledge: bool = False,
    ) -> ConversationInfo:
        """Create a conversation (a direct one is found if it exists already).

        Args:
            token: Device session token.
            kind: ``direct``, ``group``, ``class`` or ``announcement``.
            members: The other members' person ids (the caller is added).
            title: Its title.
            class_id: For a class channel, the class whose people are the members.
            acknowledge: For an announcement, whether guardians acknowledge it.

        Returns:
            The conversation.

        Raises:
            ApiError: ``not_found`` (a person), ``not_allowed``, ``invalid_request``.
            ClientError: network failure or malformed answer.
        """
        payload: dict[str, object] = {"kind": kind, "members": list(members), "title": title}
        if class_id is not None:
            payload["class_id"] = class_id
        if acknowledge:
            payload["acknowledge"] = True
        body = await self.request("POST", "/v1/conversations", token=token, json=payload)
        return ConversationInfo.from_json(body)

    async def conversations(self, token: str) -> list[ConversationInfo]:
        """The caller's conversations, with its acknowledged seq and unread count.

        Args:
            token: Device session token.

        Returns:
            The conversations.

        Raises:
            ApiError: refused.
            ClientError: network failure or malformed answer.
        """
        body = await self.request("GET", "/v1/conversations", token=token)
        try:
            return [ConversationInfo.from_json(c) for c in body["conversations"]]
        except (KeyError, TypeError):
            raise ClientError("malformed conversation list") from None

    async def conversation(self, token: str, conversation_id: str) -> ConversationInfo:
        """One conversation of the caller.

        Args:
            token: Device session token.
            conversation_id: The conversation.

        Returns:
            The conversation.

        Raises:
            ApiError: ``unknown_conversation`` (404).
            ClientError: network failure or malformed answer.
        """
        body = await self.request("GET", f"/v1/conversations/{conversation_id}", token=token)
        return ConversationInfo.from_json(body)

    async def add_member(
        self, token: str, conversation_id: str, person_id: str
    ) -> ConversationInfo:
        """Add a member (owners only).

        Args:
            token: Device session token.
            conversation_id: The conversation.
            person_id: The new member.

        Returns:
            The conversation after the change.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: network failure or malformed answer.
        """
        body = await self.request(
            "POST",
            f"/v1/conversations/{conversation_id}/members",
            token=token,
            json={"person_id": person_id},
        )
        return ConversationInfo.from_json(body)

    async def remove_member(self, token: str, conversation_id: str, person_id: str) -> None:
        """Remove a member (owners), or leave (``person_id`` is the caller).

        Args:
            token: Device session token.
            conversation_id: The conversation.
            person_id: Who goes.

        Raises:
            ApiError: ``not_allowed``, ``not_found``, ``unknown_conversation``.
            ClientError: network failure.
        """
        await self.request(
            "DELETE", f"/v1/conversations/{conversation_id}/members/{person_id}", token=token
        )

    async def directory(self, token: str) -> list[Person]:
        """The people of the caller's school.

        Args:
            token: Device session token.

        Returns:
            The people.

        Raises:
            ApiError: refused.
            ClientError: network failure or malformed answer.
        """
        body = await self.request("GET", "/v1/directory", token=token)
        try:
            return [
                Person(str(p["person_id"]), str(p["name"]), str(p["role"])) for p in body["people"]
            ]
        except (KeyError, TypeError):
            raise ClientError("malformed directory") from None

    # --- admin (operator token) ---------------------------------------------

    async def admin_import_people(
        self,
        token: str,
        schools: Sequence[Mapping[str, object]],
        people: Sequence[Mapping[str, object]],
    ) -> dict[str, Any]:
        """Create or update schools and people (``POST /v1/admin/directory/people``).

        Args:
            token: Operator token.
            schools: ``[{"uai", "name", "timezone"}]``.
            people: Person records.

        Returns:
            The import summary.

        Raises:
            ApiError: refused.
            ClientError: network failure.
        """
        body = await self.request(
            "POST",
            "/v1/admin/directory/people",
            token=token,
            json={"schools": list(schools), "people": list(people)},
        )
        return dict(body) if isinstance(body, dict) else {}

    async def admin_school_people(self, token: str, uai: str) -> list[dict[str, Any]]:
        """A school's people (``GET /v1/admin/schools/{uai}/people``).

        Args:
            token: Operator token.
            uai: The school's UAI.

        Returns:
            The people records (``id``, ``external_id``, ...).

        Raises:
            ApiError: refused.
            ClientError: network failure or malformed answer.
        """
        body = await self.request("GET", f"/v1/admin/schools/{uai}/people", token=token)
        try:
            return [dict(p) for p in body["people"]]
        except (KeyError, TypeError):
            raise ClientError("malformed people list") from None

    async def admin_enrolment_code(self, token: str, person_id: str) -> str:
        """Issue a one-time enrolment code for a person.

        Args:
            token: Operator token.
            person_id: The person.

        Returns:
            The code.

        Raises:
            ApiError: refused.
            ClientError: network failure or malformed answer.
        """
        body = await self.request(
            "POST", f"/v1/admin/people/{person_id}/enrolment-codes", token=token
        )
        try:
            return str(body["code"])
        except (KeyError, TypeError):
            raise ClientError("malformed enrolment code answer") from None

    async def admin_delete_person(self, token: str, person_id: str) -> None:
        """Delete a person with their devices, codes and queued envelopes.

        Args:
            token: Operator token.
            person_id: The person.

        Raises:
            ApiError: refused.
            ClientError: network failure.
        """
        await self.request("DELETE", f"/v1/admin/people/{person_id}", token=token)


def _api_error(status: int, body: object, retry_header: str | None) -> ApiError:
    code, message, retry_after = "http_error", f"HTTP {status}", None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code", code))
        message = str(error.get("message", message))
        if isinstance(error.get("retry_after"), int | float):
            retry_after = float(error["retry_after"])
    if retry_after is None and retry_header is not None:
        try:
            retry_after = float(retry_header)
        except ValueError:
            retry_after = None
    return ApiError(status, code, message, retry_after)
