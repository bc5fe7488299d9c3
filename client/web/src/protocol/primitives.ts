/**
 * Size-checked wrappers over the libsodium primitives (docs/protocol-e2e.md §1),
 * the counterpart of crypto/hazmat/primitives.py and crypto/hazmat/kdf.py.
 *
 * - X25519 (RFC 7748) rejecting an all-zero shared secret (small-order peer key);
 * - Ed25519 (RFC 8032) detached signatures, libsodium strict verification;
 * - the libsodium Ed25519 → X25519 conversions;
 * - XChaCha20-Poly1305 IETF, 32-byte key, 24-byte nonce, 16-byte tag appended;
 * - HMAC-SHA256 (RFC 2104) with keys of any length, HKDF-SHA256 (RFC 5869) built
 *   from it (an empty salt means 32 zero bytes);
 * - SHA-512 for safety numbers.
 *
 * Failures caused by peer input raise {@link InvalidMessage}; wrong sizes coming
 * from our own code raise {@link CryptoUsageError}.
 */

import { concat } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { sodium } from './sodium.ts';

export const X25519_KEY_SIZE = 32;
export const ED25519_SEED_SIZE = 32;
export const ED25519_PUBLIC_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
export const AEAD_KEY_SIZE = 32;
export const AEAD_NONCE_SIZE = 24;
export const AEAD_TAG_SIZE = 16;
export const HASH_SIZE = 32;

/** A source of random bytes: `rng(n)` returns `n` bytes. Tests inject their own. */
export type Rng = (size: number) => Uint8Array;

export const defaultRng: Rng = (size) => sodium.randombytes_buf(size);

function requireSize(name: string, value: Uint8Array, size: number): void {
  if (!(value instanceof Uint8Array) || value.length !== size) {
    throw new CryptoUsageError(`${name} must be ${size} bytes`);
  }
}

export function randomBytes(rng: Rng, size: number): Uint8Array {
  const out = rng(size);
  requireSize('random output', out, size);
  return out;
}

export function x25519PublicFromPrivate(privateKey: Uint8Array): Uint8Array {
  requireSize('X25519 private key', privateKey, X25519_KEY_SIZE);
  return sodium.crypto_scalarmult_base(privateKey);
}

/** X25519 shared secret; a low-order peer key (all-zero output) is rejected. */
export function x25519(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  requireSize('X25519 private key', privateKey, X25519_KEY_SIZE);
  if (peerPublicKey.length !== X25519_KEY_SIZE) throw new InvalidMessage();
  let shared: Uint8Array;
  try {
    shared = sodium.crypto_scalarmult(privateKey, peerPublicKey);
  } catch {
    throw new InvalidMessage(); // libsodium refuses an all-zero result
  }
  if (sodium.is_zero(shared)) throw new InvalidMessage();
  return shared;
}

/** Ed25519 key pair from a seed: 32-byte public key, libsodium 64-byte secret key. */
export function ed25519KeyPairFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  requireSize('Ed25519 seed', seed, ED25519_SEED_SIZE);
  const pair = sodium.crypto_sign_seed_keypair(seed);
  return { publicKey: pair.publicKey, secretKey: pair.privateKey };
}

export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  requireSize('Ed25519 secret key', secretKey, 64);
  return sodium.crypto_sign_detached(message, secretKey);
}

/** @throws InvalidMessage wrong sizes, non-canonical encodings or a bad signature. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void {
  if (publicKey.length !== ED25519_PUBLIC_KEY_SIZE || signature.length !== ED25519_SIGNATURE_SIZE) {
    throw new InvalidMessage();
  }
  let ok = false;
  try {
    ok = sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidMessage();
}

export function ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== ED25519_PUBLIC_KEY_SIZE) throw new InvalidMessage();
  try {
    return sodium.crypto_sign_ed25519_pk_to_curve25519(publicKey);
  } catch {
    throw new InvalidMessage();
  }
}

export function ed25519SeedToX25519Private(seed: Uint8Array): Uint8Array {
  const { secretKey } = ed25519KeyPairFromSeed(seed);
  return sodium.crypto_sign_ed25519_sk_to_curve25519(secretKey);
}

export function aeadEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  requireSize('AEAD key', key, AEAD_KEY_SIZE);
  requireSize('AEAD nonce', nonce, AEAD_NONCE_SIZE);
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
}

/** @throws InvalidMessage wrong nonce size, short input or authentication failure. */
export function aeadDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array {
  requireSize('AEAD key', key, AEAD_KEY_SIZE);
  if (nonce.length !== AEAD_NONCE_SIZE || ciphertext.length < AEAD_TAG_SIZE) throw new InvalidMessage();
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    throw new InvalidMessage();
  }
}

/** HMAC-SHA256(key, data), any key length (RFC 2104). */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  const state = sodium.crypto_auth_hmacsha256_init(key);
  sodium.crypto_auth_hmacsha256_update(state, data);
  return sodium.crypto_auth_hmacsha256_final(state);
}

/** Constant-time equality; different lengths are simply unequal. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && sodium.memcmp(a, b);
}

const ZERO_SALT = new Uint8Array(HASH_SIZE);

/** HKDF-SHA256 extract-then-expand (RFC 5869 §2); an empty salt means 32 zero bytes. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_SIZE) {
    throw new CryptoUsageError('HKDF-SHA256 output length must be within 0..8160');
  }
  const prk = hmacSha256(salt.length > 0 ? salt : ZERO_SALT, ikm);
  const blocks: Uint8Array[] = [];
  let block: Uint8Array = new Uint8Array(0);
  for (let counter = 1; blocks.length * HASH_SIZE < length; counter += 1) {
    block = hmacSha256(prk, concat(block, info, Uint8Array.of(counter)));
    blocks.push(block);
  }
  return concat(...blocks).slice(0, length);
}

export function sha512(data: Uint8Array): Uint8Array {
  return sodium.crypto_hash_sha512(data);
}
