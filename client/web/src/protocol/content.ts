/**
 * What goes inside end-to-end ciphertexts, the same as the Python SDK
 * (client/content.py, docs/sdk.md "Content"): every pairwise and group plaintext is
 * a franked payload fk (32) ‖ body, the body canonical UTF-8 JSON (sorted keys, no
 * spaces) with a `t` member:
 *
 * - `{"t":"text","text":str,"to":person_id|null}`: a message;
 * - `{"t":"sender_key","conversation":str,"distribution":b64url}`: a sender key
 *   distribution for that conversation, only ever sent pairwise.
 * - An attachment rides inside a text message as an optional `attachment` member
 *   `{"id","key","name","type","size","digest"}` (docs/web-client.md, "Attachments"):
 *   the blob is encrypted client-side under `key` (src/protocol/attachment.ts), so the
 *   key travels only end to end. Readers that ignore the member (the Python SDK)
 *   still show the text.
 *
 * Extension point: later content types (announcements, acknowledgements, reports)
 * are added to {@link Content} and {@link decodeBody}; unknown types are refused as
 * undecryptable, as the SDK does.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { fromUtf8, utf8 } from './bytes.ts';
import { InvalidMessage } from './errors.ts';
import { isRecord } from './keys.ts';

/** A reference to an encrypted blob (`POST /v1/conversations/{id}/attachments`). */
export interface AttachmentRef {
  readonly id: string;
  /** 32-byte XChaCha20-Poly1305 key of the blob. */
  readonly key: Uint8Array;
  readonly name: string;
  readonly type: string;
  /** Plaintext size in bytes. */
  readonly size: number;
  /** BLAKE2b-256 of the uploaded ciphertext (checked before decrypting). */
  readonly digest: Uint8Array;
}

export interface TextContent {
  readonly t: 'text';
  readonly text: string;
  readonly to: string | null;
  readonly attachment?: AttachmentRef | undefined;
}

export interface SenderKeyContent {
  readonly t: 'sender_key';
  readonly conversation: string;
  readonly distribution: Uint8Array;
}

export type Content = TextContent | SenderKeyContent;

/** JSON with object keys sorted at every level and no whitespace (Python's sort_keys). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function attachmentJson(a: AttachmentRef): Record<string, unknown> {
  return { id: a.id, key: b64urlEncode(a.key), name: a.name, type: a.type, size: a.size, digest: b64urlEncode(a.digest) };
}

function attachmentFrom(value: unknown): AttachmentRef {
  if (!isRecord(value)) throw new InvalidMessage();
  const { id, name, type, size } = value;
  if (typeof id !== 'string' || typeof name !== 'string' || typeof type !== 'string') throw new InvalidMessage();
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new InvalidMessage();
  return { id, key: b64urlDecode(value.key, 32), name: name.slice(0, 255), type: type.slice(0, 100), size, digest: b64urlDecode(value.digest, 32) };
}

export function encodeBody(content: Content): Uint8Array {
  if (content.t === 'text') {
    const data: Record<string, unknown> = { t: 'text', text: content.text, to: content.to };
    if (content.attachment !== undefined) data.attachment = attachmentJson(content.attachment);
    return utf8(canonicalJson(data));
  }
  return utf8(canonicalJson({ t: 'sender_key', conversation: content.conversation, distribution: b64urlEncode(content.distribution) }));
}

/** Decode an untrusted body. @throws InvalidMessage not a body we understand */
export function decodeBody(body: Uint8Array): Content {
  let data: unknown;
  try {
    data = JSON.parse(fromUtf8(body));
  } catch {
    throw new InvalidMessage();
  }
  if (!isRecord(data)) throw new InvalidMessage();
  if (data.t === 'text') {
    const to = data.to ?? null;
    if (typeof data.text !== 'string' || !(to === null || typeof to === 'string')) throw new InvalidMessage();
    if (data.attachment === undefined || data.attachment === null) return { t: 'text', text: data.text, to };
    return { t: 'text', text: data.text, to, attachment: attachmentFrom(data.attachment) };
  }
  if (data.t === 'sender_key') {
    if (typeof data.conversation !== 'string') throw new InvalidMessage();
    return { t: 'sender_key', conversation: data.conversation, distribution: b64urlDecode(data.distribution) };
  }
  throw new InvalidMessage();
}
