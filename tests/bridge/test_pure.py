"""Pure parts of the bridge: sealing, signed tokens, reply stripping."""

from __future__ import annotations

import secrets

import pytest

from server.bridge import tokens
from server.bridge.errors import BadBridgeKey, SealBroken, TokenRefused
from server.bridge.keyring import BridgeKeyring, parse_key
from server.bridge.replies import new_text, parse_email, sender_address
from tests.bridge.helpers import new_bridge_key


def test_sealed_records_open_only_as_themselves_and_survive_rotation() -> None:
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    old = BridgeKeyring(old_key)
    sealed = old.seal(b"state", "bridge_devices:d_1")
    assert old.open(sealed, "bridge_devices:d_1") == b"state"
    with pytest.raises(SealBroken):
        old.open(sealed, "bridge_devices:d_2")  # moved to another record
    with pytest.raises(SealBroken):
        old.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), "bridge_devices:d_1")
    rotated = BridgeKeyring(new_key, [old_key])
    assert rotated.open(sealed, "bridge_devices:d_1") == b"state"
    assert not rotated.is_current(sealed)
    assert rotated.is_current(rotated.seal(b"state", "r"))
    with pytest.raises(SealBroken):
        BridgeKeyring(new_key).open(sealed, "bridge_devices:d_1")  # old key dropped


def test_bridge_key_parsing() -> None:
    assert len(parse_key(new_bridge_key())) == 32
    for bad in ("", "abc", "!" * 43, new_bridge_key()[:-2]):
        with pytest.raises(BadBridgeKey):
            parse_key(bad)


def test_tokens_verify_and_forgeries_do_not() -> None:
    keyring = BridgeKeyring(secrets.token_bytes(32))
    token_id, text = tokens.new_token(keyring, tokens.REPLY)
    assert tokens.check_token(keyring, tokens.REPLY, text.upper()) == token_id
    address = tokens.reply_address(text, "reply.test")
    assert len(address.partition("@")[0]) <= 64
    assert tokens.token_of_address(address.upper().replace("REPLY.TEST", "reply.test"),
                                   "reply.test") == text  # fmt: skip
    with pytest.raises(TokenRefused):
        tokens.check_token(keyring, tokens.LINK, text)  # another purpose
    with pytest.raises(TokenRefused):
        tokens.check_token(BridgeKeyring(secrets.token_bytes(32)), tokens.REPLY, text)
    with pytest.raises(TokenRefused):
        tokens.token_of_address(address, "other.test")
    nonce, tag = tokens.form_token(keyring, token_id)
    tokens.check_form(keyring, token_id, nonce, tag)
    with pytest.raises(TokenRefused):
        tokens.check_form(keyring, "another", nonce, tag)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Merci !\n\nLe lun. 1 sept. 2026, Carnet a écrit :\n> texte", "Merci !"),
        ("OK\n> cité\nsuite\n-- \nSignature", "OK\nsuite"),
        ("Thanks\n\nOn Mon, Sep 1, 2026 at 10:00 Carnet wrote:\n> hi", "Thanks"),
        ("D'accord\n\nEnvoyé de mon iPhone", "D'accord"),
        ("> only quoted", ""),
    ],
)
def test_reply_text_without_quotes_and_signatures(body: str, expected: str) -> None:
    raw = (
        "From: Sophie <Sophie.Bernard@demo.example>\r\nTo: r-x@reply.test\r\n"
        "Subject: Re\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body.replace("\n", "\r\n")
    ).encode()
    message = parse_email(raw)
    assert sender_address(message) == "sophie.bernard@demo.example"
    assert new_text(message) == expected
