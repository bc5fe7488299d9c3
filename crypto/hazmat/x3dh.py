"""X3DH key agreement (Signal X3DH spec, revision 1, §2-§3).

Curve X25519, hash SHA-256, info :data:`crypto.hazmat.kdf.X3DH_INFO`. Identity keys
are Ed25519 and take part in the DHs in their X25519 form (libsodium conversion,
spec §2.3 "a single key pair ... for both"). ``Encode(PK)`` is the raw 32-byte key;
the associated data is ``AD = IK_A || IK_B`` with both *Ed25519* identity public keys
(A = initiator, B = responder), 64 bytes, spec §3.3.

* :func:`initiate`: spec §3.3 — verify the signed prekey signature, generate EK_A,
  ``DH1 = DH(IK_A, SPK_B)``, ``DH2 = DH(EK_A, IK_B)``, ``DH3 = DH(EK_A, SPK_B)``,
  ``DH4 = DH(EK_A, OPK_B)`` if the bundle had a one-time prekey,
  ``SK = KDF(DH1 || DH2 || DH3 [|| DH4])``. The ephemeral private key is not returned.
* :func:`respond`: spec §3.4 — the same DHs from the responder's private keys, which
  the caller hands in; reports which one-time prekey was used so it gets deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.errors import InvalidMessage
from crypto.hazmat import primitives as prim
from crypto.hazmat.kdf import x3dh_kdf
from crypto.keys import DeviceKeys, IdentityKeyPair, PreKeyBundle, X25519KeyPair

__all__ = ["X3DHInitiation", "X3DHResponse", "initiate", "respond"]


@dataclass(frozen=True)
class X3DHInitiation:
    """Initiator's result: SK, AD and what goes in the prekey message header."""

    shared_secret: bytes = field(repr=False)
    associated_data: bytes
    ephemeral_key: bytes
    signed_prekey: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None


@dataclass(frozen=True)
class X3DHResponse:
    """Responder's result: SK, AD, the signed prekey pair used and the one-time prekey id."""

    shared_secret: bytes = field(repr=False)
    associated_data: bytes
    signed_prekey: X25519KeyPair
    used_one_time_prekey_id: int | None


def initiate(
    identity: IdentityKeyPair, bundle: PreKeyBundle, rng: prim.Rng = prim.default_rng
) -> X3DHInitiation:
    """Run the initiator side of X3DH (spec §3.3).

    Args:
        identity: Our identity key (IK_A).
        bundle: The responder's prekey bundle, fetched from the server.
        rng: Random source for EK_A.

    Returns:
        The shared secret, associated data and header values.

    Raises:
        InvalidMessage: the signed prekey signature is bad, or a key is invalid
            (low order, not a point).
    """
    bundle.verify()
    ephemeral = X25519KeyPair.generate(rng)
    remote_identity = prim.ed25519_public_to_x25519(bundle.identity_key)
    key_material = (
        prim.x25519(identity.x25519_private(), bundle.signed_prekey)
        + prim.x25519(ephemeral.private, remote_identity)
        + prim.x25519(ephemeral.private, bundle.signed_prekey)
    )
    if bundle.one_time_prekey is not None:
        key_material += prim.x25519(ephemeral.private, bundle.one_time_prekey)
    return X3DHInitiation(
        shared_secret=x3dh_kdf(key_material),
        associated_data=identity.public + bundle.identity_key,
        ephemeral_key=ephemeral.public,
        signed_prekey=bundle.signed_prekey,
        signed_prekey_id=bundle.signed_prekey_id,
        one_time_prekey_id=bundle.one_time_prekey_id,
    )


def respond(
    own: DeviceKeys,
    initiator_identity_key: bytes,
    ephemeral_key: bytes,
    signed_prekey_id: int,
    one_time_prekey_id: int | None,
) -> X3DHResponse:
    """Run the responder side of X3DH (spec §3.4).

    Args:
        own: Our private keys (identity, signed prekeys, one-time prekeys).
        initiator_identity_key: IK_A, the initiator's Ed25519 public key (untrusted).
        ephemeral_key: EK_A (untrusted).
        signed_prekey_id: Which of our signed prekeys was used.
        one_time_prekey_id: Which one-time prekey was used, or ``None``.

    Returns:
        The shared secret, associated data, our signed prekey pair and the one-time
        prekey id to delete.

    Raises:
        InvalidMessage: unknown prekey ids or invalid keys.
    """
    spk = own.find_signed_prekey(signed_prekey_id)
    otpk = None if one_time_prekey_id is None else own.find_one_time_prekey(one_time_prekey_id)
    if spk is None or (one_time_prekey_id is not None and otpk is None):
        raise InvalidMessage()
    remote_identity = prim.ed25519_public_to_x25519(initiator_identity_key)
    key_material = (
        prim.x25519(spk.key_pair.private, remote_identity)
        + prim.x25519(own.identity.x25519_private(), ephemeral_key)
        + prim.x25519(spk.key_pair.private, ephemeral_key)
    )
    if otpk is not None:
        key_material += prim.x25519(otpk.key_pair.private, ephemeral_key)
    return X3DHResponse(
        shared_secret=x3dh_kdf(key_material),
        associated_data=initiator_identity_key + own.identity.public,
        signed_prekey=spk.key_pair,
        used_one_time_prekey_id=one_time_prekey_id,
    )
