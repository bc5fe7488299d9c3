/**
 * Signed acknowledgements of announcements, the "mot à signer" (docs/protocol.md §5.3;
 * protocol/frames.py `acknowledgement_message`). A guardian's device signs, with its
 * Ed25519 identity key,
 *
 *   "carnet-ack-v1" ‖ 0x00 ‖ conversation ‖ 0x00 ‖ seq (decimal) ‖ 0x00 ‖ message_id ‖ 0x00 ‖ person_id
 *
 * (UTF-8), and posts `{seq, signature}`; the server verifies and keeps it as evidence.
 */

import { b64urlEncode } from './base64url.ts';
import { concat, utf8 } from './bytes.ts';
import { CryptoUsageError } from './errors.ts';
import type { IdentityKeyPair } from './keys.ts';

const CONTEXT = utf8('carnet-ack-v1');

export function acknowledgementMessage(conversation: string, seq: number, messageId: string, personId: string): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new CryptoUsageError('seq must be a positive integer');
  const parts = [conversation, String(seq), messageId, personId].map(utf8);
  const joined: Uint8Array[] = [CONTEXT];
  for (const part of parts) joined.push(Uint8Array.of(0), part);
  return concat(...joined);
}

/** The `POST /v1/conversations/{id}/acknowledgements` body. */
export function acknowledgementBody(
  identity: IdentityKeyPair,
  conversation: string,
  seq: number,
  messageId: string,
  personId: string,
): { seq: number; signature: string } {
  return { seq, signature: b64urlEncode(identity.sign(acknowledgementMessage(conversation, seq, messageId, personId))) };
}
