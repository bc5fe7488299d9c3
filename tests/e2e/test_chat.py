"""``carnet chat`` as a real process: enrol with a code, write to a person, then to a
group it creates."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.e2e.helpers import enrolled_client
from tests.support.servers import RunningServer

SCRIPT = """
import argparse, asyncio, sys
from client.chat import add_chat_arguments, run_chat
parser = argparse.ArgumentParser()
add_chat_arguments(parser)
sys.exit(asyncio.run(run_chat(parser.parse_args())))
"""


async def test_chat_enrols_and_sends_a_line(server: RunningServer, tmp_path: Path) -> None:
    teacher = await enrolled_client(server, tmp_path, "T001")
    async with teacher:
        parent = server.person("R001")
        keystore = tmp_path / "chat.keystore"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            SCRIPT,
            "--url",
            server.url,
            "--keystore",
            str(keystore),
            "--code",
            parent["code"],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CARNET_PASSPHRASE": "chat passphrase"},
        )
        commands = (
            f"/who\n/to {teacher.person_id}\nBonjour depuis le terminal\n"
            f"/group Sortie au musée {teacher.person_id}\nDépart à 8h\n/quit\n"
        )
        out, err = await asyncio.wait_for(process.communicate(commands.encode()), 60)
        assert process.returncode == 0, err.decode()
        text = out.decode()
        assert "Claire Durand" in text and "now writing to Claire Durand" in text
        assert "not sent" not in text
        assert "now writing to group Sortie au musée" in text
        message = await teacher.next_message()
        assert message.body == "Bonjour depuis le terminal" and not message.group
        assert message.sender_person == parent["person_id"]
        message = await teacher.next_message()
        assert message.body == "Départ à 8h" and message.group
        conversations = {c.id: c for c in await teacher.conversations()}
        assert conversations[message.conversation].title == "Sortie au musée"
        assert keystore.stat().st_mode & 0o777 == 0o600
