"""``carnet chat``: a line-based terminal client on the SDK.

Usage::

    carnet chat --url https://carnet.example --keystore ~/.carnet/me.keystore --code XXXX-...
    carnet chat --keystore ~/.carnet/me.keystore          # later runs: unlock and go

With ``--code`` it enrols a new device and creates the keystore (new passphrase,
asked twice); otherwise it unlocks the keystore. The passphrase comes from
``CARNET_PASSPHRASE`` if set, else from the terminal. It lists the school
directory; ``/to <number or person id>`` picks a person (their direct
conversation), ``/group <name> <p1>,<p2>,...`` creates a group conversation with
those people (numbers or ids) and writes there; every other line is sent to the
current conversation. Incoming messages are printed with the sender's name and
time, membership changes and expired messages as notices. ``/who`` lists the
directory again, ``/quit`` (or end of input) leaves.

The parsing and formatting are pure functions (:func:`parse_command`,
:func:`parse_group`, :func:`format_message`, :func:`format_event`) so they are
tested without a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from client.client import Client
from client.errors import ClientError
from client.handle import ConversationHandle
from client.http import Person
from client.messages import Event, ExpiredMessages, Message

__all__ = [
    "BRIDGE_WARNING",
    "Command",
    "add_chat_arguments",
    "format_event",
    "format_message",
    "main",
    "parse_command",
    "parse_group",
    "run_chat",
]

BRIDGE_WARNING = "not end-to-end encrypted beyond the school's server (email bridge)"


@dataclass(frozen=True)
class Command:
    """One input line: ``kind`` is ``to``, ``group``, ``who``, ``quit``, ``say`` or
    ``unknown``."""

    kind: str
    argument: str = ""


def parse_command(line: str) -> Command | None:
    """Parse one input line.

    Args:
        line: The line, without or with its newline.

    Returns:
        The command, or ``None`` for a blank line.
    """
    text = line.strip()
    if not text:
        return None
    if not text.startswith("/"):
        return Command("say", text)
    name, _, argument = text[1:].partition(" ")
    if name in ("to", "group", "who", "quit"):
        return Command(name, argument.strip())
    return Command("unknown", name)


def resolve_recipient(argument: str, people: Sequence[Person]) -> Person | None:
    """Find the person a ``/to`` argument names: a list number or a person id.

    Args:
        argument: What followed ``/to``.
        people: The numbered directory (1-based, as printed).

    Returns:
        The person, or ``None``.
    """
    if argument.isdigit() and 1 <= int(argument) <= len(people):
        return people[int(argument) - 1]
    return next((p for p in people if p.person_id == argument), None)


def parse_group(argument: str, people: Sequence[Person]) -> tuple[str, list[Person]] | None:
    """Parse ``/group <name> <p1>,<p2>,...`` (numbers or person ids).

    Args:
        argument: What followed ``/group``.
        people: The numbered directory.

    Returns:
        The title and the people, or ``None`` if malformed or someone is unknown.
    """
    title, _, listed = argument.strip().rpartition(" ")
    if not title.strip() or not listed:
        return None
    chosen = [resolve_recipient(item.strip(), people) for item in listed.split(",")]
    found = [p for p in chosen if p is not None]
    if len(found) != len(chosen) or not found:
        return None
    return title.strip(), found


def format_event(event: Event, names: Mapping[str, str]) -> str:
    """One printed notice for a membership change or expired messages.

    Args:
        event: The event.
        names: Person id to display name.

    Returns:
        ``* ...`` line.
    """
    if isinstance(event, ExpiredMessages):
        count = event.to_seq - event.from_seq + 1
        return f"* {count} message(s) in {event.conversation} expired before reaching you"
    who = ", ".join(names.get(p, p) for p in event.persons)
    by = f" by {names.get(event.by, event.by)}" if event.by else ""
    return f"* {event.conversation}: {event.action} {who}{by}"


def format_message(message: Message, names: Mapping[str, str], tz: tzinfo | None = None) -> str:
    """One printed line for an incoming message.

    Args:
        message: The message.
        names: Person id to display name.
        tz: Time zone for the time (default: local).

    Returns:
        ``[HH:MM] Name: text`` with a marker for copies of our own messages, group
        conversations and email-bridge senders.
    """
    moment = datetime.fromtimestamp(message.ts / 1000, UTC).astimezone(tz)
    sender = names.get(message.sender_person, message.sender_person)
    if message.from_me:
        target = names.get(message.to_person or "", message.to_person or "?")
        who = f"you (other device) -> {target}"
    else:
        who = sender
    where = f" @{message.conversation}" if message.group else ""
    warning = f" [{BRIDGE_WARNING}]" if message.sender_kind == "email-bridge" else ""
    return f"[{moment:%H:%M}] {who}{where}: {message.body}{warning}"


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``carnet chat``'s options to a parser.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument("--url", help="server URL (needed with --code)")
    parser.add_argument("--keystore", required=True, type=Path, help="keystore file")
    parser.add_argument("--code", help="enrolment code: enrol a new device into --keystore")


def _passphrase(new: bool) -> str:
    from_env = os.environ.get("CARNET_PASSPHRASE")
    if from_env:
        return from_env
    if not new:
        return getpass.getpass("Keystore passphrase: ")
    first = getpass.getpass("New keystore passphrase: ")
    if first != getpass.getpass("Repeat it: "):
        raise ClientError("the passphrases differ")
    return first


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_chat(args: argparse.Namespace) -> int:
    """Run the terminal client until ``/quit`` or end of input.

    Args:
        args: Parsed arguments (``url``, ``keystore``, ``code``).

    Returns:
        The exit status (0 on a normal exit).
    """
    try:
        if args.code:
            if not args.url:
                print("--url is needed to enrol with --code", file=sys.stderr)
                return 2
            client = await Client.enrol(args.url, args.code, args.keystore, _passphrase(True))
            print(f"Enrolled device {client.device_id}; keys saved in {args.keystore}")
        else:
            client = Client.load(args.keystore, _passphrase(False))
        async with client:
            return await _converse(client, await _stdin_lines())
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _converse(client: Client, lines: asyncio.StreamReader) -> int:
    people = [p for p in await client.directory() if p.person_id != client.person_id]
    names = {p.person_id: p.name for p in people}
    _print_directory(people)
    target: ConversationHandle | None = None
    async with asyncio.TaskGroup() as group:
        printer = group.create_task(_print_incoming(client, names))
        notices = group.create_task(_print_events(client, names))
        while True:
            raw = await lines.readline()
            if not raw:
                break
            command = parse_command(raw.decode("utf-8", "replace"))
            if command is None:
                continue
            if command.kind == "quit":
                break
            if command.kind == "who":
                _print_directory(people)
            elif command.kind == "to":
                target = await _choose(client, command.argument, people) or target
            elif command.kind == "group":
                target = await _group(client, command.argument, people) or target
            elif command.kind == "unknown":
                print(f"unknown command /{command.argument}: /to, /group, /who, /quit")
            elif target is None:
                print("choose a conversation first: /to <number> or /group <name> <numbers>")
            else:
                try:
                    await target.send(command.argument)
                except (ClientError, TimeoutError) as exc:
                    print(f"not sent: {exc}")
        printer.cancel()
        notices.cancel()
    return 0


async def _choose(
    client: Client, argument: str, people: Sequence[Person]
) -> ConversationHandle | None:
    person = resolve_recipient(argument, people)
    if person is None:
        print(f"no such person: {argument!r}")
        return None
    try:
        contact = await client.contact(person.person_id, refresh=True)
        conversation = await client.direct(person.person_id)
    except ClientError as exc:
        print(f"cannot reach {person.name}: {exc}")
        return None
    if not contact.devices:
        print(f"{person.name} has no device yet; messages cannot be sent")
    if contact.has_email_bridge:
        print(f"warning: {person.name} reads by email: {BRIDGE_WARNING}")
    print(f"now writing to {person.name}")
    return conversation


async def _group(
    client: Client, argument: str, people: Sequence[Person]
) -> ConversationHandle | None:
    parsed = parse_group(argument, people)
    if parsed is None:
        print("usage: /group <name> <number or id>,<number or id>,...")
        return None
    title, members = parsed
    try:
        conversation = await client.create_group([p.person_id for p in members], title)
    except ClientError as exc:
        print(f"cannot create the group: {exc}")
        return None
    for person in members:
        try:
            contact = await client.contact(person.person_id)
        except ClientError:
            continue
        if contact.has_email_bridge:
            print(f"warning: {person.name} reads by email: {BRIDGE_WARNING}")
    print(f"now writing to group {title} ({conversation.id})")
    return conversation


async def _print_incoming(client: Client, names: Mapping[str, str]) -> None:
    try:
        async for message in client.messages():
            print(format_message(message, names), flush=True)
    except ClientError as exc:
        print(f"connection lost: {exc}", flush=True)


async def _print_events(client: Client, names: Mapping[str, str]) -> None:
    try:
        async for event in client.events():
            print(format_event(event, names), flush=True)
    except ClientError:
        pass  # reported by _print_incoming


def _print_directory(people: Sequence[Person]) -> None:
    for number, person in enumerate(people, 1):
        print(f"{number:3}. {person.name} ({person.role}) {person.person_id}")


def main(args: argparse.Namespace) -> int:
    """Entry point for ``carnet chat``.

    Args:
        args: Parsed arguments.

    Returns:
        The exit status.
    """
    return asyncio.run(run_chat(args))
