"""``carnet admin rotate-keys``: rotate a purpose's server keys (franking, device sessions).

A new key becomes the newest of its purpose in ``server_keys``
(:meth:`storage.server_keys.ServerKeyRepository.rotate`); the ``--keep`` newest
older keys still verify, older ones are retired. The command prints the new
key id, never a secret.

Running nodes load the keys once, at start (``server/secrets_state.py``), so a
rotation takes effect on a node when it restarts: do a rolling restart after
rotating (docs/operations.md, "Key rotation"). Until every node has restarted,
a node that has not yet done so signs with the old key (still valid
everywhere) and does not know the new one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime

from server import device_sessions, logs
from server.clock import SystemClock
from server.config import ConfigError, load_settings
from server.runtime import open_store
from server.secrets_state import FRANKING_PURPOSE
from storage.database import Store
from storage.errors import StorageError

__all__ = ["PURPOSES", "add_rotate_keys_command", "main", "rotate_keys"]

PURPOSES = (FRANKING_PURPOSE, device_sessions.PURPOSE)
"""The purposes with server keys: franking stamps and device session tokens."""


def _keep(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError("--keep is between 0 and 100")
    return number


def add_rotate_keys_command(
    admin_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``rotate-keys`` to ``carnet admin``.

    Args:
        admin_commands: The ``admin`` subparsers.
        common: Adds the shared ``--config`` / ``--data-dir`` options.
    """
    rotate = admin_commands.add_parser(
        "rotate-keys",
        help="rotate the server keys of a purpose (then restart the nodes, one at a time)",
    )
    common(rotate)
    rotate.add_argument("--purpose", choices=PURPOSES, required=True)
    rotate.add_argument(
        "--keep",
        type=_keep,
        default=1,
        help="older keys that still verify (default 1; 0 invalidates every older"
        " stamp or session at once)",
    )


async def rotate_keys(store: Store, purpose: str, keep: int, now: datetime) -> int:
    """Rotate ``purpose``'s keys and report the new key id on stdout.

    Args:
        store: The database.
        purpose: ``franking`` or ``device-session``.
        keep: Older keys left valid.
        now: The rotation time.

    Returns:
        The exit status (0).
    """
    await store.server_keys.active(purpose, now)  # the first key exists before a rotation
    key = await store.server_keys.rotate(purpose, now, keep=keep)
    remaining = await store.server_keys.active(purpose, now)
    older = ", ".join(str(k.key_id) for k in remaining[1:]) or "none"
    print(f"{purpose} key {key.key_id}")
    print(
        f"(new key id {key.key_id} for {purpose}; still verifying: {older};"
        " restart every node, one at a time, to sign with it)",
        file=sys.stderr,
    )
    return 0


def main(args: argparse.Namespace) -> int:
    """Entry point for ``carnet admin rotate-keys`` (called by :mod:`server.cli`).

    Args:
        args: Parsed arguments (``purpose``, ``keep``, ``config``, ``data_dir``).

    Returns:
        The exit status: 0, 1 when the database fails, 2 for a bad configuration.
    """
    try:
        settings = load_settings(args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"carnet: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)

    async def run() -> int:
        async with open_store(settings) as store:
            return await rotate_keys(store, args.purpose, args.keep, SystemClock().now())

    try:
        return asyncio.run(run())
    except StorageError as exc:
        print(f"carnet: {exc}", file=sys.stderr)
        return 1
