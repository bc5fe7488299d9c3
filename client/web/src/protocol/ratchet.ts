/**
 * The Double Ratchet (docs/protocol-e2e.md §4; Signal Double Ratchet rev. 1 §3),
 * as crypto/hazmat/ratchet.py: pure functions from state to new state; the input
 * state is never modified, so a failed decryption changes nothing.
 *
 * AEAD associated data = AD (64) ‖ 0x01 ‖ HEADER (40). Skipped keys are stored under
 * (DHr, N), oldest first; at most MAX_SKIP derived per chain per step and
 * MAX_SKIPPED_KEYS kept.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { concat, isU32, toHex } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { type RatchetHeader, type RatchetMessage, VERSION, encodeHeader } from './envelope.ts';
import { expandMessageKey, kdfCk, kdfRk } from './kdf.ts';
import { X25519KeyPair, isRecord } from './keys.ts';
import { type Rng, aeadDecrypt, aeadEncrypt, defaultRng, x25519 } from './primitives.ts';

export const MAX_SKIP = 1000;
export const MAX_SKIPPED_KEYS = 2000;

interface SkippedKey {
  readonly ratchetKey: Uint8Array;
  readonly n: number;
  readonly messageKey: Uint8Array;
}

export interface RatchetState {
  readonly associatedData: Uint8Array;
  readonly rootKey: Uint8Array;
  readonly sendingKeyPair: X25519KeyPair;
  readonly remoteRatchetKey: Uint8Array | null;
  readonly sendingChainKey: Uint8Array | null;
  readonly receivingChainKey: Uint8Array | null;
  readonly sendingCount: number;
  readonly receivingCount: number;
  readonly previousSendingCount: number;
  /** Keyed by `hex(DHr):N`, insertion order = age. Never mutated in place. */
  readonly skipped: ReadonlyMap<string, SkippedKey>;
}

const skipId = (ratchetKey: Uint8Array, n: number): string => `${toHex(ratchetKey)}:${n}`;

function sameKey(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}

export function initInitiator(sharedSecret: Uint8Array, remoteSignedPrekey: Uint8Array, associatedData: Uint8Array, rng: Rng = defaultRng): RatchetState {
  const sending = X25519KeyPair.generate(rng);
  const [rootKey, chainKey] = kdfRk(sharedSecret, x25519(sending.privateKey, remoteSignedPrekey));
  return {
    associatedData,
    rootKey,
    sendingKeyPair: sending,
    remoteRatchetKey: remoteSignedPrekey,
    sendingChainKey: chainKey,
    receivingChainKey: null,
    sendingCount: 0,
    receivingCount: 0,
    previousSendingCount: 0,
    skipped: new Map(),
  };
}

export function initResponder(sharedSecret: Uint8Array, signedPrekey: X25519KeyPair, associatedData: Uint8Array): RatchetState {
  return {
    associatedData,
    rootKey: sharedSecret,
    sendingKeyPair: signedPrekey,
    remoteRatchetKey: null,
    sendingChainKey: null,
    receivingChainKey: null,
    sendingCount: 0,
    receivingCount: 0,
    previousSendingCount: 0,
    skipped: new Map(),
  };
}

function aeadAd(state: RatchetState, header: RatchetHeader): Uint8Array {
  return concat(state.associatedData, Uint8Array.of(VERSION), encodeHeader(header));
}

/** RatchetEncrypt. @throws CryptoUsageError no sending chain yet */
export function ratchetEncrypt(state: RatchetState, plaintext: Uint8Array): [RatchetState, RatchetMessage] {
  if (state.sendingChainKey === null) {
    throw new CryptoUsageError('cannot send before the first message was received');
  }
  const [nextChainKey, messageKey] = kdfCk(state.sendingChainKey);
  const header: RatchetHeader = {
    ratchetKey: state.sendingKeyPair.publicKey,
    previousChainLength: state.previousSendingCount,
    messageNumber: state.sendingCount,
  };
  const [key, nonce] = expandMessageKey(messageKey);
  const ciphertext = aeadEncrypt(key, nonce, plaintext, aeadAd(state, header));
  return [
    { ...state, sendingChainKey: nextChainKey, sendingCount: state.sendingCount + 1 },
    { type: 'ratchet', header, ciphertext },
  ];
}

function skipMessageKeys(state: RatchetState, until: number): RatchetState {
  if (state.receivingCount + MAX_SKIP < until) throw new InvalidMessage();
  if (state.receivingChainKey === null || state.remoteRatchetKey === null) return state;
  const skipped = new Map(state.skipped);
  let chainKey = state.receivingChainKey;
  let count = state.receivingCount;
  while (count < until) {
    const [next, messageKey] = kdfCk(chainKey);
    skipped.set(skipId(state.remoteRatchetKey, count), { ratchetKey: state.remoteRatchetKey, n: count, messageKey });
    chainKey = next;
    count += 1;
  }
  while (skipped.size > MAX_SKIPPED_KEYS) {
    const oldest = skipped.keys().next().value as string;
    skipped.delete(oldest);
  }
  return { ...state, receivingChainKey: chainKey, receivingCount: count, skipped };
}

function dhRatchet(state: RatchetState, header: RatchetHeader, rng: Rng): RatchetState {
  const [rootKey1, receivingChainKey] = kdfRk(state.rootKey, x25519(state.sendingKeyPair.privateKey, header.ratchetKey));
  const sending = X25519KeyPair.generate(rng);
  const [rootKey, sendingChainKey] = kdfRk(rootKey1, x25519(sending.privateKey, header.ratchetKey));
  return {
    ...state,
    rootKey,
    sendingKeyPair: sending,
    remoteRatchetKey: header.ratchetKey,
    sendingChainKey,
    receivingChainKey,
    sendingCount: 0,
    receivingCount: 0,
    previousSendingCount: state.sendingCount,
  };
}

function open(state: RatchetState, header: RatchetHeader, messageKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const [key, nonce] = expandMessageKey(messageKey);
  return aeadDecrypt(key, nonce, ciphertext, aeadAd(state, header));
}

/** RatchetDecrypt; commit the returned state only. @throws InvalidMessage */
export function ratchetDecrypt(state: RatchetState, message: RatchetMessage, rng: Rng = defaultRng): [RatchetState, Uint8Array] {
  const header = message.header;
  const id = skipId(header.ratchetKey, header.messageNumber);
  const stored = state.skipped.get(id);
  if (stored !== undefined) {
    const plaintext = open(state, header, stored.messageKey, message.ciphertext);
    const skipped = new Map(state.skipped);
    skipped.delete(id);
    return [{ ...state, skipped }, plaintext];
  }
  let working = state;
  if (!sameKey(state.remoteRatchetKey, header.ratchetKey)) {
    working = skipMessageKeys(working, header.previousChainLength);
    working = dhRatchet(working, header, rng);
  } else if (header.messageNumber < state.receivingCount) {
    throw new InvalidMessage(); // replay: used, or skipped and deleted
  }
  working = skipMessageKeys(working, header.messageNumber);
  if (working.receivingChainKey === null) throw new InvalidMessage();
  const [nextChainKey, messageKey] = kdfCk(working.receivingChainKey);
  const plaintext = open(working, header, messageKey, message.ciphertext);
  return [{ ...working, receivingChainKey: nextChainKey, receivingCount: working.receivingCount + 1 }, plaintext];
}

/** JSON-able form, the same as crypto/hazmat/ratchet.py `RatchetState.to_dict` (secret). */
export function ratchetToDict(state: RatchetState): Record<string, unknown> {
  const opt = (v: Uint8Array | null) => (v === null ? null : b64urlEncode(v));
  return {
    ad: b64urlEncode(state.associatedData),
    rk: b64urlEncode(state.rootKey),
    dhs: b64urlEncode(state.sendingKeyPair.privateKey),
    dhr: opt(state.remoteRatchetKey),
    cks: opt(state.sendingChainKey),
    ckr: opt(state.receivingChainKey),
    ns: state.sendingCount,
    nr: state.receivingCount,
    pn: state.previousSendingCount,
    skipped: [...state.skipped.values()].map((s) => [b64urlEncode(s.ratchetKey), s.n, b64urlEncode(s.messageKey)]),
  };
}

/** Restore {@link ratchetToDict}. @throws InvalidMessage */
export function ratchetFromDict(data: unknown): RatchetState {
  if (!isRecord(data) || !Array.isArray(data.skipped)) throw new InvalidMessage();
  const u32 = (v: unknown): number => {
    if (typeof v !== 'number' || !isU32(v)) throw new InvalidMessage();
    return v;
  };
  const opt = (v: unknown) => (v === null ? null : b64urlDecode(v, 32));
  const skipped = new Map<string, SkippedKey>();
  for (const entry of data.skipped as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 3) throw new InvalidMessage();
    const ratchetKey = b64urlDecode(entry[0], 32);
    const n = u32(entry[1]);
    skipped.set(skipId(ratchetKey, n), { ratchetKey, n, messageKey: b64urlDecode(entry[2], 32) });
  }
  if (skipped.size > MAX_SKIPPED_KEYS) throw new InvalidMessage();
  return {
    associatedData: b64urlDecode(data.ad, 64),
    rootKey: b64urlDecode(data.rk, 32),
    sendingKeyPair: X25519KeyPair.fromPrivate(b64urlDecode(data.dhs, 32)),
    remoteRatchetKey: opt(data.dhr),
    sendingChainKey: opt(data.cks),
    receivingChainKey: opt(data.ckr),
    sendingCount: u32(data.ns),
    receivingCount: u32(data.nr),
    previousSendingCount: u32(data.pn),
    skipped,
  };
}
