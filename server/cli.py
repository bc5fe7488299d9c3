"""``carnet``: the command line (serve, directory import, admin tokens and codes).

Every command reads the same configuration (flags > ``CARNET_*`` > ``--config``
TOML > defaults) and exits with status 2 and a clear message when it is bad.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from client import chat as chat_client
from client import smoke as smoke_check
from server import logs
from server.admin_actions import create_api_token, import_directory, issue_enrolment_code
from server.app import create_app
from server.auth import TOKEN_ROLES
from server.clock import SystemClock
from server.config import ConfigError, Settings, load_settings
from server.demo import demo_file, describe, load_demo
from server.dpo_cli import add_dpo_commands, run_dpo_command
from server.metrics import Metrics
from server.runtime import open_store
from server.sequencer import Sequencer
from storage.database import Store
from storage.directory import ImportSummary
from storage.errors import ImportRejected, StorageError
from storage.ids import new_id

log = logging.getLogger("carnet")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML file of settings")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./data)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carnet", description="Carnet messaging server")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--demo", action="store_true", help="load the demo school")

    directory = commands.add_parser("directory", help="the school directory")
    directory_commands = directory.add_subparsers(dest="action", required=True)
    imp = directory_commands.add_parser("import", help="import a directory CSV (all or nothing)")
    _common(imp)
    imp.add_argument("file", type=Path)

    admin = commands.add_parser("admin", help="tokens and enrolment codes")
    admin_commands = admin.add_subparsers(dest="action", required=True)
    token = admin_commands.add_parser("create-token", help="create an operator or DPO token")
    _common(token)
    token.add_argument("--role", choices=TOKEN_ROLES, required=True)
    token.add_argument("--school", help="restrict the token to this school (UAI)")
    token.add_argument("--label", default="", help="who or what the token is for")
    code = admin_commands.add_parser("enrolment-code", help="issue a one-time enrolment code")
    _common(code)
    code.add_argument("--school", required=True, help="the school's UAI")
    code.add_argument("--external-id", required=True, help="the person's id in the registry")
    add_dpo_commands(commands)

    chat = commands.add_parser("chat", help="a line-based end-to-end encrypted chat client")
    chat_client.add_chat_arguments(chat)
    smoke = commands.add_parser("smoke", help="post-deployment check (token in CARNET_TOKEN)")
    smoke_check.add_smoke_arguments(smoke)
    from server import key_rotation  # noqa: PLC0415 - registered here only

    key_rotation.add_rotate_keys_command(admin_commands, _common)
    return parser


def _loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop unless the settings ask for the standard loop (docs/performance.md:
    about a tenth less CPU per WebSocket frame)."""
    if settings.event_loop == "uvloop":
        import uvloop  # noqa: PLC0415 - only the commands that run a loop need it

        return uvloop.new_event_loop
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "admin" and args.action == "rotate-keys":
        from server import key_rotation  # noqa: PLC0415

        return key_rotation.main(args)
    if args.command == "chat":  # clients of a server: no server configuration
        return chat_client.main(args)
    if args.command == "smoke":
        return smoke_check.main(args)
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if args.command == "serve":
        overrides.update(host=args.host, port=args.port)
    try:
        settings = load_settings(args.config, **overrides)
    except ConfigError as exc:
        print(f"carnet: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings)) as runner:
            return runner.run(_dispatch(args, settings))
    except ImportRejected as exc:
        print(f"carnet: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"carnet: {exc}", file=sys.stderr)
        return 1


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        await serve(settings, demo=args.demo)
        return 0
    clock = SystemClock()
    async with open_store(settings) as store:
        if args.command == "dpo":
            return await run_dpo_command(args, store, settings, clock.now())
        if args.command == "directory":
            text = args.file.read_text(encoding="utf-8")
            lifetime = timedelta(days=settings.undelivered_days)
            summary = await import_with_channel_sync(
                store, str(args.file), text, clock.now(), lifetime
            )
            print(
                f"imported {args.file}: {summary.people_created} people created,"
                f" {summary.people_updated} updated, {summary.classes} classes"
            )
        elif args.action == "create-token":
            token, token_id = await create_api_token(
                store, args.role, args.school, args.label, clock.now()
            )
            print(token)
            print(f"(token id {token_id}; shown once, stored hashed)", file=sys.stderr)
        else:
            person = await store.directory.person_by_external_id(args.school, args.external_id)
            if person is None:
                print(f"carnet: no person {args.external_id} in {args.school}", file=sys.stderr)
                return 1
            days = timedelta(days=settings.enrol_code_days)
            enrolment, expires_at = await issue_enrolment_code(store, person.id, clock.now(), days)
            print(f"{enrolment.text}  ({person.display_name}, expires {expires_at:%Y-%m-%d})")
    return 0


async def import_with_channel_sync(
    store: Store, source: str, text: str, now: datetime, lifetime: timedelta
) -> ImportSummary:
    """Import a directory file, then sync class channels through a short-lived
    sequencer of this process (a live server delivers its events by change stream)."""
    sequencer = Sequencer(store, new_id("cli", 6), lifetime, lambda docs: None, Metrics())
    async with asyncio.TaskGroup() as group:
        group.create_task(sequencer.run())
        await asyncio.sleep(0)
        try:
            return await import_directory(store, source, text, now, submit=sequencer.submit)
        finally:
            sequencer.close()


async def serve(settings: Settings, demo: bool = False) -> None:
    """Run until SIGINT or SIGTERM, then drain: close sockets (1001), stop the database."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    clock = SystemClock()
    async with open_store(settings) as store:
        if demo:
            info = await load_demo(store, settings.data_dir, clock.now(), settings.enrol_code_days)
            print(describe(info, demo_file(settings.data_dir)), flush=True)
        app = create_app(settings, store, clock)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10, access_log=None)
        await runner.setup()
        # Everything loaded so far lives as long as the process: out of the
        # collector's sight, a full collection under load scans what the node
        # holds, not the libraries (53–107 ms pauses before, 15–54 after;
        # docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
            print(f"Carnet is listening on http://{settings.host}:{settings.port}", flush=True)
            await stop.wait()
            log.info("shutting down")
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
