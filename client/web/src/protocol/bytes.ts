/**
 * Byte helpers: big-endian integers (docs/protocol-e2e.md §1 "u16, u32, u64 are
 * unsigned big-endian"), concatenation, hex, UTF-8 and a bounded reader.
 */

import { CryptoUsageError, InvalidMessage } from './errors.ts';

export const UINT32_MAX = 0xffffffff;

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function isU32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= UINT32_MAX;
}

export function u16(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new CryptoUsageError('u16 out of range');
  }
  return Uint8Array.of(value >>> 8, value & 0xff);
}

export function u32(value: number): Uint8Array {
  if (!isU32(value)) throw new CryptoUsageError('u32 out of range');
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

export function u64(value: number | bigint): Uint8Array {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << 64n) throw new CryptoUsageError('u64 out of range');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big, false);
  return out;
}

export function readU32(data: Uint8Array, offset: number): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(offset, false);
}

export function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new CryptoUsageError('not hex');
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decode UTF-8 strictly; malformed input is an {@link InvalidMessage}. */
export function fromUtf8(data: Uint8Array): string {
  try {
    return decoder.decode(data);
  } catch {
    throw new InvalidMessage();
  }
}

/** Cursor over untrusted bytes; every short read raises {@link InvalidMessage}. */
export class Reader {
  private offset = 0;

  constructor(private readonly data: Uint8Array) {}

  take(size: number): Uint8Array {
    const end = this.offset + size;
    if (end > this.data.length) throw new InvalidMessage();
    const chunk = this.data.slice(this.offset, end);
    this.offset = end;
    return chunk;
  }

  u8(): number {
    return this.take(1)[0] as number;
  }

  u32(): number {
    return readU32(this.take(4), 0);
  }

  finish(): void {
    if (this.offset !== this.data.length) throw new InvalidMessage();
  }
}
