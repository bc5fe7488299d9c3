/**
 * Message franking (docs/protocol-e2e.md §8; Grubbs-Lu-Ristenpart 2017), as
 * crypto/franking.py. The sender commits with HMAC-SHA256(fk, body) — never a
 * Poly1305 tag — and encrypts fk ‖ body; the recipient checks the commitment before
 * showing the body. `serverStamp` is the server's computation, here so that tests can
 * check the known answers and a report can be explained; clients never hold the key.
 */

import { concat, u16, u32, u64, utf8 } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { type Rng, constantTimeEqual, defaultRng, hmacSha256, randomBytes } from './primitives.ts';

export const FRANKING_KEY_SIZE = 32;
export const COMMITMENT_SIZE = 32;
export const STAMP_SIZE = 36;
export const STAMP_CONTEXT = utf8('Carnet franking stamp v1\x00');

export interface FrankedMessage {
  /** fk ‖ body: encrypt this end to end. */
  readonly payload: Uint8Array;
  /** Send this next to the envelope, in clear. */
  readonly commitment: Uint8Array;
}

export function frank(body: Uint8Array, rng: Rng = defaultRng): FrankedMessage {
  const fk = randomBytes(rng, FRANKING_KEY_SIZE);
  return { payload: concat(fk, body), commitment: hmacSha256(fk, body) };
}

/** Split fk ‖ body and check the commitment. @throws InvalidMessage */
export function openFranked(payload: Uint8Array, commitment: Uint8Array): { body: Uint8Array; frankingKey: Uint8Array } {
  if (payload.length < FRANKING_KEY_SIZE || commitment.length !== COMMITMENT_SIZE) throw new InvalidMessage();
  const frankingKey = payload.slice(0, FRANKING_KEY_SIZE);
  const body = payload.slice(FRANKING_KEY_SIZE);
  if (!constantTimeEqual(hmacSha256(frankingKey, body), commitment)) throw new InvalidMessage();
  return { body, frankingKey };
}

/** stamp = u32 key_id ‖ HMAC-SHA256(server_key, context ‖ u32 key_id ‖ commitment ‖ u16-prefixed ids ‖ u64 ms). */
export function serverStamp(
  serverKey: Uint8Array,
  keyId: number,
  commitment: Uint8Array,
  senderDeviceId: string,
  conversationId: string,
  timestampMs: number,
): Uint8Array {
  const sender = utf8(senderDeviceId);
  const conversation = utf8(conversationId);
  if (sender.length > 0xffff || conversation.length > 0xffff) throw new CryptoUsageError('identifier too long');
  const tag = hmacSha256(
    serverKey,
    concat(STAMP_CONTEXT, u32(keyId), commitment, u16(sender.length), sender, u16(conversation.length), conversation, u64(timestampMs)),
  );
  return concat(u32(keyId), tag);
}
