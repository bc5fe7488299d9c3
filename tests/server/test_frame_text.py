"""The deliver frame written directly is the pydantic model's JSON (docs/protocol.md, "deliver")."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from protocol import parse_server_frame
from server.fanout import frame_for, frame_text
from storage.messages import StoredMessage

ids = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)


@given(
    message_id=ids,
    conversation=ids,
    seq=st.integers(min_value=1, max_value=2**53),
    ciphertext=st.binary(max_size=300),
    group=st.booleans(),
    commitment=st.none() | st.binary(min_size=32, max_size=32),
    stamp=st.none() | st.binary(min_size=1, max_size=64),
    silent=st.booleans(),
    millis=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_the_direct_json_equals_the_model_json(
    message_id: str,
    conversation: str,
    seq: int,
    ciphertext: bytes,
    group: bool,
    commitment: bytes | None,
    stamp: bytes | None,
    silent: bool,
    millis: int,
) -> None:
    message = StoredMessage(
        message_id=message_id,
        conversation=conversation,
        seq=seq,
        sender_device="d_sender",
        sender_person="p_sender",
        created_at=datetime.fromtimestamp(millis / 1000, UTC),
        ciphertext=ciphertext,
        group=group,
        commitment=commitment,
        stamp=stamp,
        silent=silent,
    )
    kind, text = frame_text(message)
    model = frame_for(message)
    assert kind == model.type == "deliver"
    assert json.loads(text) == json.loads(model.model_dump_json())
    assert parse_server_frame(text) == model  # what a client reads
