/**
 * Safety numbers (docs/protocol-e2e.md §9; Signal NumericFingerprintGenerator), as
 * crypto/safety.py: H = 0x0000 ‖ IK ‖ stable_id, then 5200 × H = SHA-512(H ‖ IK);
 * 30 digits per party from six 5-byte big-endian chunks mod 100000; both parties'
 * digits, smaller first. QR payload: 0x01 ‖ own_H[0:32] ‖ peer_H[0:32].
 */

import { concat, utf8 } from './bytes.ts';
import { CryptoUsageError } from './errors.ts';
import { constantTimeEqual, sha512 } from './primitives.ts';

export const FINGERPRINT_ITERATIONS = 5200;
export const QR_VERSION = 0x01;

export function fingerprint(identityKey: Uint8Array, stableId: string): Uint8Array {
  if (identityKey.length !== 32) throw new CryptoUsageError('identity key must be 32 bytes');
  let digest = concat(Uint8Array.of(0, 0), identityKey, utf8(stableId));
  for (let i = 0; i < FINGERPRINT_ITERATIONS; i += 1) digest = sha512(concat(digest, identityKey));
  return digest;
}

function digits(fp: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let value = 0n;
    for (const byte of fp.slice(i, i + 5)) value = (value << 8n) | BigInt(byte);
    out += (value % 100000n).toString().padStart(5, '0');
  }
  return out;
}

export class SafetyNumber {
  constructor(
    readonly ownFingerprint: Uint8Array,
    readonly peerFingerprint: Uint8Array,
  ) {}

  /** The 60 digits, identical on both sides. */
  get digits(): string {
    const own = digits(this.ownFingerprint);
    const peer = digits(this.peerFingerprint);
    return own <= peer ? own + peer : peer + own;
  }

  /** 12 space-separated groups of 5 digits. */
  formatted(): string {
    return this.digits.match(/.{5}/g)?.join(' ') ?? '';
  }

  qrPayload(): Uint8Array {
    return concat(Uint8Array.of(QR_VERSION), this.ownFingerprint.slice(0, 32), this.peerFingerprint.slice(0, 32));
  }

  /** Compare a payload scanned from the peer's screen. */
  matchesQr(scanned: Uint8Array): boolean {
    const expected = concat(Uint8Array.of(QR_VERSION), this.peerFingerprint.slice(0, 32), this.ownFingerprint.slice(0, 32));
    return constantTimeEqual(scanned, expected);
  }
}

export function safetyNumber(ownIdentityKey: Uint8Array, ownId: string, peerIdentityKey: Uint8Array, peerId: string): SafetyNumber {
  return new SafetyNumber(fingerprint(ownIdentityKey, ownId), fingerprint(peerIdentityKey, peerId));
}
