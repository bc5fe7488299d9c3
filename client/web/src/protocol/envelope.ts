/**
 * Binary envelopes, version 1 (docs/protocol-e2e.md §6), byte for byte as
 * crypto/envelope.py: version byte, type byte, fixed-size fields, one u32-prefixed
 * AEAD ciphertext (16 ≤ L ≤ 65552). Parsing is strict: truncated input, trailing
 * bytes, unknown version or type, a bad one-time prekey flag or an oversized length
 * all raise the same opaque {@link InvalidMessage}.
 */

import { Reader, concat, isU32, u32 } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { AEAD_TAG_SIZE } from './primitives.ts';

export const VERSION = 0x01;
export const MAX_PLAINTEXT_SIZE = 65536;
export const MAX_CIPHERTEXT_SIZE = MAX_PLAINTEXT_SIZE + AEAD_TAG_SIZE;
export const MAX_ENVELOPE_SIZE = 119 + MAX_CIPHERTEXT_SIZE;

export const EnvelopeType = {
  PREKEY_MESSAGE: 0x01,
  RATCHET_MESSAGE: 0x02,
  GROUP_MESSAGE: 0x03,
  SENDER_KEY_DISTRIBUTION: 0x04,
} as const;

function check(condition: boolean, what: string): void {
  if (!condition) throw new CryptoUsageError(`invalid envelope field: ${what}`);
}

/**
 * Whether `key` is an X25519 public key in its one encoding. RFC 7748 §5: X25519
 * masks the top bit of the last byte on input, so a key with it set is the same
 * key; envelopes carry EK_A and DHs with it clear, or a flipped bit would pass.
 */
function canonicalX25519(key: Uint8Array): boolean {
  return key.length === 32 && (key[31]! & 0x80) === 0;
}

function checkCiphertext(ciphertext: Uint8Array): void {
  check(ciphertext.length >= AEAD_TAG_SIZE && ciphertext.length <= MAX_CIPHERTEXT_SIZE, 'ciphertext length');
}

/** Double Ratchet HEADER: DHs (32) ‖ u32 PN ‖ u32 N. */
export interface RatchetHeader {
  readonly ratchetKey: Uint8Array;
  readonly previousChainLength: number;
  readonly messageNumber: number;
}

export function encodeHeader(header: RatchetHeader): Uint8Array {
  check(canonicalX25519(header.ratchetKey), 'ratchet key');
  return concat(header.ratchetKey, u32(header.previousChainLength), u32(header.messageNumber));
}

export interface RatchetMessage {
  readonly type: 'ratchet';
  readonly header: RatchetHeader;
  readonly ciphertext: Uint8Array;
}

export interface PreKeyMessage {
  readonly type: 'prekey';
  readonly identityKey: Uint8Array;
  readonly ephemeralKey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly oneTimePrekeyId: number | null;
  readonly message: RatchetMessage;
}

export interface GroupMessage {
  readonly type: 'group';
  readonly keyId: number;
  readonly iteration: number;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array;
}

export interface SenderKeyDistribution {
  readonly type: 'distribution';
  readonly keyId: number;
  readonly iteration: number;
  readonly chainKey: Uint8Array;
  readonly signingKey: Uint8Array;
}

export type Envelope = PreKeyMessage | RatchetMessage | GroupMessage | SenderKeyDistribution;

function ratchetBody(message: RatchetMessage): Uint8Array {
  checkCiphertext(message.ciphertext);
  return concat(encodeHeader(message.header), u32(message.ciphertext.length), message.ciphertext);
}

export function encodeRatchetMessage(message: RatchetMessage): Uint8Array {
  return concat(Uint8Array.of(VERSION, EnvelopeType.RATCHET_MESSAGE), ratchetBody(message));
}

export function encodePreKeyMessage(message: PreKeyMessage): Uint8Array {
  check(message.identityKey.length === 32, 'identity key');
  check(canonicalX25519(message.ephemeralKey), 'ephemeral key');
  const otpk = message.oneTimePrekeyId;
  return concat(
    Uint8Array.of(VERSION, EnvelopeType.PREKEY_MESSAGE),
    message.identityKey,
    message.ephemeralKey,
    u32(message.signedPrekeyId),
    Uint8Array.of(otpk === null ? 0 : 1),
    u32(otpk ?? 0),
    ratchetBody(message.message),
  );
}

/** Bytes 0..9 of a group message: its AEAD associated data. */
export function groupHeaderBytes(keyId: number, iteration: number): Uint8Array {
  return concat(Uint8Array.of(VERSION, EnvelopeType.GROUP_MESSAGE), u32(keyId), u32(iteration));
}

/** Every byte of a group message before its signature. */
export function groupSignedBytes(keyId: number, iteration: number, ciphertext: Uint8Array): Uint8Array {
  checkCiphertext(ciphertext);
  return concat(groupHeaderBytes(keyId, iteration), u32(ciphertext.length), ciphertext);
}

export function encodeGroupMessage(message: GroupMessage): Uint8Array {
  check(message.signature.length === 64, 'signature');
  return concat(groupSignedBytes(message.keyId, message.iteration, message.ciphertext), message.signature);
}

export function encodeDistribution(d: SenderKeyDistribution): Uint8Array {
  check(isU32(d.keyId) && isU32(d.iteration), 'key id or iteration');
  check(d.chainKey.length === 32 && d.signingKey.length === 32, 'key sizes');
  return concat(
    Uint8Array.of(VERSION, EnvelopeType.SENDER_KEY_DISTRIBUTION),
    u32(d.keyId),
    u32(d.iteration),
    d.chainKey,
    d.signingKey,
  );
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  switch (envelope.type) {
    case 'prekey':
      return encodePreKeyMessage(envelope);
    case 'ratchet':
      return encodeRatchetMessage(envelope);
    case 'group':
      return encodeGroupMessage(envelope);
    case 'distribution':
      return encodeDistribution(envelope);
  }
}

function readCiphertext(reader: Reader): Uint8Array {
  const size = reader.u32();
  if (size < AEAD_TAG_SIZE || size > MAX_CIPHERTEXT_SIZE) throw new InvalidMessage();
  return reader.take(size);
}

function readX25519(reader: Reader): Uint8Array {
  const key = reader.take(32);
  if (!canonicalX25519(key)) throw new InvalidMessage();
  return key;
}

function readRatchet(reader: Reader): RatchetMessage {
  const header = { ratchetKey: readX25519(reader), previousChainLength: reader.u32(), messageNumber: reader.u32() };
  return { type: 'ratchet', header, ciphertext: readCiphertext(reader) };
}

function readPreKey(reader: Reader): PreKeyMessage {
  const identityKey = reader.take(32);
  const ephemeralKey = readX25519(reader);
  const signedPrekeyId = reader.u32();
  const flag = reader.u8();
  const otpkId = reader.u32();
  if ((flag !== 0 && flag !== 1) || (flag === 0 && otpkId !== 0)) throw new InvalidMessage();
  const message = readRatchet(reader);
  return { type: 'prekey', identityKey, ephemeralKey, signedPrekeyId, oneTimePrekeyId: flag ? otpkId : null, message };
}

function readGroup(reader: Reader): GroupMessage {
  const keyId = reader.u32();
  const iteration = reader.u32();
  const ciphertext = readCiphertext(reader);
  return { type: 'group', keyId, iteration, ciphertext, signature: reader.take(64) };
}

function readDistribution(reader: Reader): SenderKeyDistribution {
  return { type: 'distribution', keyId: reader.u32(), iteration: reader.u32(), chainKey: reader.take(32), signingKey: reader.take(32) };
}

const READERS: Record<number, (reader: Reader) => Envelope> = {
  [EnvelopeType.PREKEY_MESSAGE]: readPreKey,
  [EnvelopeType.RATCHET_MESSAGE]: readRatchet,
  [EnvelopeType.GROUP_MESSAGE]: readGroup,
  [EnvelopeType.SENDER_KEY_DISTRIBUTION]: readDistribution,
};

/** Parse untrusted bytes into an envelope. @throws InvalidMessage */
export function parseEnvelope(data: Uint8Array): Envelope {
  if (!(data instanceof Uint8Array) || data.length < 2 || data.length > MAX_ENVELOPE_SIZE) {
    throw new InvalidMessage();
  }
  const reader = new Reader(data);
  const version = reader.u8();
  const read = READERS[reader.u8()];
  if (version !== VERSION || read === undefined) throw new InvalidMessage();
  const envelope = read(reader);
  reader.finish();
  return envelope;
}
