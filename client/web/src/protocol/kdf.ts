/**
 * The KDF chains of docs/protocol-e2e.md §1, §3, §4 (crypto/hazmat/kdf.py):
 * X3DH KDF (Signal X3DH §2.2), KDF_RK and KDF_CK (Double Ratchet §5.2) and the
 * message key expansion into an XChaCha20-Poly1305 key and nonce.
 */

import { concat, utf8 } from './bytes.ts';
import { HASH_SIZE, hkdfSha256, hmacSha256 } from './primitives.ts';

export const X3DH_INFO = utf8('Carnet X3DH v1');
export const RATCHET_INFO = utf8('Carnet ratchet v1');
export const MESSAGE_KEY_INFO = utf8('Carnet message keys v1');
export const GROUP_MESSAGE_KEY_INFO = utf8('Carnet group message keys v1');

const X3DH_F = new Uint8Array(32).fill(0xff);
const ZERO_SALT = new Uint8Array(HASH_SIZE);
const MESSAGE_KEY_CONSTANT = Uint8Array.of(0x01);
const CHAIN_KEY_CONSTANT = Uint8Array.of(0x02);

/** SK = HKDF(F ‖ KM, salt = 32×0, "Carnet X3DH v1", 32). */
export function x3dhKdf(keyMaterial: Uint8Array): Uint8Array {
  return hkdfSha256(concat(X3DH_F, keyMaterial), ZERO_SALT, X3DH_INFO, 32);
}

/** KDF_RK(rk, dh_out) → [new root key, chain key]. */
export function kdfRk(rootKey: Uint8Array, dhOutput: Uint8Array): [Uint8Array, Uint8Array] {
  const okm = hkdfSha256(dhOutput, rootKey, RATCHET_INFO, 64);
  return [okm.slice(0, 32), okm.slice(32)];
}

/** KDF_CK(ck) → [next chain key, message key]. */
export function kdfCk(chainKey: Uint8Array): [Uint8Array, Uint8Array] {
  return [hmacSha256(chainKey, CHAIN_KEY_CONSTANT), hmacSha256(chainKey, MESSAGE_KEY_CONSTANT)];
}

/** EXPAND(mk, info) → [AEAD key (32), nonce (24)]. */
export function expandMessageKey(messageKey: Uint8Array, info: Uint8Array = MESSAGE_KEY_INFO): [Uint8Array, Uint8Array] {
  const okm = hkdfSha256(messageKey, ZERO_SALT, info, 56);
  return [okm.slice(0, 32), okm.slice(32)];
}
