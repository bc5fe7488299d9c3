"""The documents stay true to the code: every error code, frame type and route
that exists is in docs/protocol.md, and the README's quick start is what CI runs."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from protocol import ErrorCode
from protocol.frames import AnyClientFrame, AnyServerFrame

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def frame_types(union: object) -> set[str]:
    return {
        typing.get_args(model.model_fields["type"].annotation)[0]
        for model in typing.get_args(union)
    }


def test_every_error_code_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", PROTOCOL, re.MULTILINE))
    assert {code.value for code in ErrorCode} <= documented


def test_every_frame_type_is_documented() -> None:
    for kind in frame_types(AnyClientFrame) | frame_types(AnyServerFrame):
        assert f"`{kind}`" in PROTOCOL, kind


def test_every_device_route_is_documented() -> None:
    routes = set()
    for module in ("devices_api", "conversations_api", "receipts_api", "attachments_api"):
        source = (ROOT / "server" / f"{module}.py").read_text()
        routes |= set(re.findall(r'add_(?:get|post|put|delete)\("([^"]+)"', source))
    for route in routes:
        assert route in PROTOCOL, route


def test_the_quick_start_is_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(?:\$ )?(make \w+)\s*$", quick, re.MULTILINE)
    assert commands == ["make serve", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
