/** Shared test helpers: the repository's vector files and the deterministic rng. */

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const VECTORS = resolve(REPO, 'tests/vectors');

export function loadJson<T = any>(relative: string): T {
  return JSON.parse(readFileSync(resolve(VECTORS, relative), 'utf8')) as T;
}

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function toHex(data: Uint8Array): string {
  return Buffer.from(data).toString('hex');
}

/**
 * The rng of tests/crypto/crypto_testkit.py: call i returns
 * SHAKE-256(seed ‖ u64be(i)) truncated to the requested size.
 */
export function deterministicRng(seed: Uint8Array): (size: number) => Uint8Array {
  let counter = 0n;
  return (size: number) => {
    const block = new Uint8Array(8);
    new DataView(block.buffer).setBigUint64(0, counter, false);
    counter += 1n;
    const digest = createHash('shake256', { outputLength: size }).update(seed).update(block).digest();
    return new Uint8Array(digest);
  };
}

export function scriptedRng(values: Uint8Array[]): (size: number) => Uint8Array {
  const queue = [...values];
  return (size: number) => {
    const next = queue.shift();
    if (next === undefined || next.length !== size) throw new Error('scripted rng exhausted or wrong size');
    return next;
  };
}
