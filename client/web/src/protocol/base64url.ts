/**
 * Base64url without padding (RFC 4648 §5), strict as docs/protocol-e2e.md §1 asks:
 * padding, whitespace, characters outside the alphabet and non-canonical encodings
 * (non-zero trailing bits) are rejected. Mirrors crypto/encoding.py.
 */

import { InvalidMessage } from './errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUES = new Map<string, number>(Array.from(ALPHABET, (c, i) => [c, i]));

export function b64urlEncode(data: Uint8Array): string {
  let out = '';
  for (let i = 0; i < data.length; i += 3) {
    const b0 = data[i] as number;
    const b1 = data[i + 1];
    const b2 = data[i + 2];
    out += ALPHABET[b0 >> 2];
    out += ALPHABET[((b0 & 3) << 4) | ((b1 ?? 0) >> 4)];
    if (b1 !== undefined) out += ALPHABET[((b1 & 15) << 2) | ((b2 ?? 0) >> 6)];
    if (b2 !== undefined) out += ALPHABET[b2 & 63];
  }
  return out;
}

/**
 * Decode untrusted text, optionally checking the decoded size.
 *
 * @throws InvalidMessage not a string, not canonical base64url, or the wrong size.
 */
export function b64urlDecode(text: unknown, size?: number): Uint8Array {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new InvalidMessage();
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let index = 0;
  for (const char of text) {
    value = (value << 6) | (VALUES.get(char) as number);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[index] = (value >> bits) & 0xff;
      index += 1;
    }
    value &= (1 << bits) - 1;
  }
  if (value !== 0) throw new InvalidMessage(); // non-canonical: leftover bits set
  if (size !== undefined && out.length !== size) throw new InvalidMessage();
  return out;
}
