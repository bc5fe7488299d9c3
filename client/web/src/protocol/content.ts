/**
 * What goes inside end-to-end ciphertexts, the same as the Python SDK
 * (client/content.py, docs/sdk.md "Content"): every pairwise and group plaintext is
 * a franked payload fk (32) ‖ body, the body canonical UTF-8 JSON (sorted keys, no
 * spaces) with a `t` member:
 *
 * - `{"t":"text","text":str,"to":person_id|null}`: a message;
 * - `{"t":"sender_key","conversation":str,"distribution":b64url}`: a sender key
 *   distribution for that conversation, only ever sent pairwise.
 *
 * Extension point: later content types (announcements, acknowledgements, reports)
 * are added to {@link Content} and {@link decodeBody}; unknown types are refused as
 * undecryptable, as the SDK does.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { fromUtf8, utf8 } from './bytes.ts';
import { InvalidMessage } from './errors.ts';
import { isRecord } from './keys.ts';

export interface TextContent {
  readonly t: 'text';
  readonly text: string;
  readonly to: string | null;
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

export function encodeBody(content: Content): Uint8Array {
  if (content.t === 'text') return utf8(canonicalJson({ t: 'text', text: content.text, to: content.to }));
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
    return { t: 'text', text: data.text, to };
  }
  if (data.t === 'sender_key') {
    if (typeof data.conversation !== 'string') throw new InvalidMessage();
    return { t: 'sender_key', conversation: data.conversation, distribution: b64urlDecode(data.distribution) };
  }
  throw new InvalidMessage();
}
