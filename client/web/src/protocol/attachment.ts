/**
 * Attachments encrypted on the client (DESIGN.md "Messaging semantics"; docs/protocol.md
 * §5.1 `POST /v1/conversations/{id}/attachments`; docs/web-client.md "Attachments").
 *
 * A fresh random 32-byte key per file; the uploaded blob is
 * `nonce (24) ‖ XChaCha20-Poly1305(key, nonce, file, ad = "carnet-attachment-v1")`.
 * The key, the file's name, type and size and the BLAKE2b-256 digest of the blob go
 * inside the end-to-end message ({@link AttachmentRef}), never to the server, which
 * stores an opaque blob. Opening checks the digest first (constant time), then the
 * tag; every failure is the one opaque {@link InvalidMessage}.
 */

import type { AttachmentRef } from './content.ts';
import { utf8 } from './bytes.ts';
import { InvalidMessage } from './errors.ts';
import { AEAD_KEY_SIZE, AEAD_NONCE_SIZE, AEAD_TAG_SIZE, type Rng, aeadDecrypt, aeadEncrypt, constantTimeEqual, defaultRng, randomBytes } from './primitives.ts';
import { sodium } from './sodium.ts';

export const ATTACHMENT_AD = utf8('carnet-attachment-v1');
/** The server's limit on a blob (docs/protocol.md §5.1): 25 MiB. */
export const MAX_ATTACHMENT_BLOB = 25 * 1024 * 1024;
export const MAX_ATTACHMENT_SIZE = MAX_ATTACHMENT_BLOB - AEAD_NONCE_SIZE - AEAD_TAG_SIZE;

export class AttachmentTooLarge extends Error {
  constructor() {
    super('attachment too large');
    this.name = 'AttachmentTooLarge';
  }
}

export function blobDigest(blob: Uint8Array): Uint8Array {
  return sodium.crypto_generichash(32, blob, null);
}

/** Encrypt a file; upload `blob`, then send `ref(id)` inside the message. @throws AttachmentTooLarge */
export function sealAttachment(
  file: Uint8Array,
  name: string,
  type: string,
  rng: Rng = defaultRng,
): { blob: Uint8Array; ref: (id: string) => AttachmentRef } {
  if (file.length > MAX_ATTACHMENT_SIZE) throw new AttachmentTooLarge();
  const key = randomBytes(rng, AEAD_KEY_SIZE);
  const nonce = randomBytes(rng, AEAD_NONCE_SIZE);
  const sealed = aeadEncrypt(key, nonce, file, ATTACHMENT_AD);
  const blob = new Uint8Array(nonce.length + sealed.length);
  blob.set(nonce, 0);
  blob.set(sealed, nonce.length);
  const digest = blobDigest(blob);
  return { blob, ref: (id) => ({ id, key, name, type, size: file.length, digest }) };
}

/** Check and decrypt a downloaded blob. @throws InvalidMessage */
export function openAttachment(blob: Uint8Array, ref: AttachmentRef): Uint8Array {
  if (blob.length < AEAD_NONCE_SIZE + AEAD_TAG_SIZE || !constantTimeEqual(blobDigest(blob), ref.digest)) throw new InvalidMessage();
  const file = aeadDecrypt(ref.key, blob.slice(0, AEAD_NONCE_SIZE), blob.slice(AEAD_NONCE_SIZE), ATTACHMENT_AD);
  if (file.length !== ref.size) throw new InvalidMessage();
  return file;
}
