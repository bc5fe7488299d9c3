/**
 * X3DH key agreement (docs/protocol-e2e.md §3; Signal X3DH rev. 1 §3.3-§3.4),
 * as crypto/hazmat/x3dh.py. Identity keys are Ed25519 and take part in the DHs in
 * their X25519 form; AD = IK_A ‖ IK_B (Ed25519 public keys, 64 bytes).
 */

import { concat } from './bytes.ts';
import { InvalidMessage } from './errors.ts';
import { x3dhKdf } from './kdf.ts';
import { type DeviceKeys, type IdentityKeyPair, type PreKeyBundle, X25519KeyPair, verifyBundle } from './keys.ts';
import { type Rng, defaultRng, ed25519PublicToX25519, x25519 } from './primitives.ts';

export interface X3DHInitiation {
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  readonly ephemeralKey: Uint8Array;
  readonly signedPrekey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly oneTimePrekeyId: number | null;
}

export interface X3DHResponse {
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  readonly signedPrekey: X25519KeyPair;
  readonly usedOneTimePrekeyId: number | null;
}

/** Initiator side: verify SPK_sig, then DH1..DH4 and SK. @throws InvalidMessage */
export function x3dhInitiate(identity: IdentityKeyPair, bundle: PreKeyBundle, rng: Rng = defaultRng): X3DHInitiation {
  verifyBundle(bundle);
  const ephemeral = X25519KeyPair.generate(rng);
  const remoteIdentity = ed25519PublicToX25519(bundle.identityKey);
  const parts = [
    x25519(identity.x25519Private(), bundle.signedPrekey),
    x25519(ephemeral.privateKey, remoteIdentity),
    x25519(ephemeral.privateKey, bundle.signedPrekey),
  ];
  if (bundle.oneTimePrekey !== null) parts.push(x25519(ephemeral.privateKey, bundle.oneTimePrekey));
  return {
    sharedSecret: x3dhKdf(concat(...parts)),
    associatedData: concat(identity.publicKey, bundle.identityKey),
    ephemeralKey: ephemeral.publicKey,
    signedPrekey: bundle.signedPrekey,
    signedPrekeyId: bundle.signedPrekeyId,
    oneTimePrekeyId: bundle.oneTimePrekeyId,
  };
}

/** Responder side, from the ids in a prekey message. @throws InvalidMessage unknown ids, bad keys */
export function x3dhRespond(
  own: DeviceKeys,
  initiatorIdentityKey: Uint8Array,
  ephemeralKey: Uint8Array,
  signedPrekeyId: number,
  oneTimePrekeyId: number | null,
): X3DHResponse {
  const spk = own.findSignedPrekey(signedPrekeyId);
  const otpk = oneTimePrekeyId === null ? null : own.findOneTimePrekey(oneTimePrekeyId);
  if (spk === null || (oneTimePrekeyId !== null && otpk === null)) throw new InvalidMessage();
  const remoteIdentity = ed25519PublicToX25519(initiatorIdentityKey);
  const parts = [
    x25519(spk.keyPair.privateKey, remoteIdentity),
    x25519(own.identity.x25519Private(), ephemeralKey),
    x25519(spk.keyPair.privateKey, ephemeralKey),
  ];
  if (otpk !== null) parts.push(x25519(otpk.keyPair.privateKey, ephemeralKey));
  return {
    sharedSecret: x3dhKdf(concat(...parts)),
    associatedData: concat(initiatorIdentityKey, own.identity.publicKey),
    signedPrekey: spk.keyPair,
    usedOneTimePrekeyId: oneTimePrekeyId,
  };
}
