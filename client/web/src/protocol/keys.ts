/**
 * Device keys and the public prekey bundle (docs/protocol-e2e.md §2; Signal X3DH
 * §2.2, §3.1-§3.3), the counterpart of crypto/keys.py, including its saved form
 * (`toDict` / `fromDict` give the same JSON as `DeviceKeys.to_dict`).
 *
 * Values are immutable; operations that "change" keys return new values.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { concat, isU32, utf8 } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import {
  type Rng,
  defaultRng,
  ed25519KeyPairFromSeed,
  ed25519SeedToX25519Private,
  ed25519Sign,
  ed25519Verify,
  randomBytes,
  x25519PublicFromPrivate,
} from './primitives.ts';

/** Prefix of what an identity key signs for a signed prekey (24 bytes, NUL included). */
export const SIGNED_PREKEY_CONTEXT = utf8('Carnet signed prekey v1\x00');

function checkId(name: string, value: number): void {
  if (!isU32(value)) throw new CryptoUsageError(`${name} must be a uint32`);
}

/** Check a signed prekey signature (§2.1). @throws InvalidMessage */
export function verifySignedPrekey(identityKey: Uint8Array, signedPrekey: Uint8Array, signature: Uint8Array): void {
  if (signedPrekey.length !== 32) throw new InvalidMessage();
  ed25519Verify(identityKey, concat(SIGNED_PREKEY_CONTEXT, signedPrekey), signature);
}

export class X25519KeyPair {
  private constructor(
    readonly privateKey: Uint8Array,
    readonly publicKey: Uint8Array,
  ) {}

  static fromPrivate(privateKey: Uint8Array): X25519KeyPair {
    return new X25519KeyPair(privateKey.slice(), x25519PublicFromPrivate(privateKey));
  }

  static generate(rng: Rng = defaultRng): X25519KeyPair {
    return X25519KeyPair.fromPrivate(randomBytes(rng, 32));
  }
}

export class IdentityKeyPair {
  readonly publicKey: Uint8Array;
  private readonly secretKey: Uint8Array;

  constructor(readonly seed: Uint8Array) {
    const pair = ed25519KeyPairFromSeed(seed);
    this.publicKey = pair.publicKey;
    this.secretKey = pair.secretKey;
  }

  static generate(rng: Rng = defaultRng): IdentityKeyPair {
    return new IdentityKeyPair(randomBytes(rng, 32));
  }

  /** Sign with Ed25519; callers must prefix a context string. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519Sign(this.secretKey, message);
  }

  x25519Private(): Uint8Array {
    return ed25519SeedToX25519Private(this.seed);
  }
}

export interface SignedPreKey {
  readonly keyId: number;
  readonly keyPair: X25519KeyPair;
  readonly signature: Uint8Array;
  readonly createdAt: number;
}

export function generateSignedPreKey(identity: IdentityKeyPair, keyId: number, now: number, rng: Rng = defaultRng): SignedPreKey {
  checkId('signed prekey id', keyId);
  const keyPair = X25519KeyPair.generate(rng);
  const signature = identity.sign(concat(SIGNED_PREKEY_CONTEXT, keyPair.publicKey));
  return { keyId, keyPair, signature, createdAt: now };
}

export interface OneTimePreKey {
  readonly keyId: number;
  readonly keyPair: X25519KeyPair;
}

/** The public keys another device needs to start a session (§2.3). */
export interface PreKeyBundle {
  readonly identityKey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly signedPrekey: Uint8Array;
  readonly signedPrekeySignature: Uint8Array;
  readonly oneTimePrekeyId: number | null;
  readonly oneTimePrekey: Uint8Array | null;
}

export type BundleJson = {
  identity_key: string;
  signed_prekey_id: number;
  signed_prekey: string;
  signed_prekey_signature: string;
  one_time_prekey_id?: number;
  one_time_prekey?: string;
};

function fieldU32(data: Record<string, unknown>, name: string): number {
  const value = data[name];
  if (typeof value !== 'number' || !isU32(value)) throw new InvalidMessage();
  return value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parse a bundle's JSON form (§2.3); does not verify the signature. @throws InvalidMessage */
export function bundleFromJson(data: unknown): PreKeyBundle {
  const required = ['identity_key', 'signed_prekey_id', 'signed_prekey', 'signed_prekey_signature'];
  const optional = ['one_time_prekey_id', 'one_time_prekey'];
  if (!isRecord(data)) throw new InvalidMessage();
  const names = Object.keys(data);
  if (!required.every((n) => names.includes(n)) || !names.every((n) => required.includes(n) || optional.includes(n))) {
    throw new InvalidMessage();
  }
  const hasOtpk = 'one_time_prekey' in data;
  if (hasOtpk !== 'one_time_prekey_id' in data) throw new InvalidMessage();
  return {
    identityKey: b64urlDecode(data.identity_key, 32),
    signedPrekeyId: fieldU32(data, 'signed_prekey_id'),
    signedPrekey: b64urlDecode(data.signed_prekey, 32),
    signedPrekeySignature: b64urlDecode(data.signed_prekey_signature, 64),
    oneTimePrekeyId: hasOtpk ? fieldU32(data, 'one_time_prekey_id') : null,
    oneTimePrekey: hasOtpk ? b64urlDecode(data.one_time_prekey, 32) : null,
  };
}

export function bundleToJson(bundle: PreKeyBundle): BundleJson {
  const out: BundleJson = {
    identity_key: b64urlEncode(bundle.identityKey),
    signed_prekey_id: bundle.signedPrekeyId,
    signed_prekey: b64urlEncode(bundle.signedPrekey),
    signed_prekey_signature: b64urlEncode(bundle.signedPrekeySignature),
  };
  if (bundle.oneTimePrekeyId !== null && bundle.oneTimePrekey !== null) {
    out.one_time_prekey_id = bundle.oneTimePrekeyId;
    out.one_time_prekey = b64urlEncode(bundle.oneTimePrekey);
  }
  return out;
}

export function verifyBundle(bundle: PreKeyBundle): void {
  verifySignedPrekey(bundle.identityKey, bundle.signedPrekey, bundle.signedPrekeySignature);
}

/** All private keys of one device. Persist with {@link DeviceKeys.toDict} (secret!). */
export class DeviceKeys {
  constructor(
    readonly identity: IdentityKeyPair,
    readonly signedPrekey: SignedPreKey,
    readonly previousSignedPrekey: SignedPreKey | null = null,
    readonly oneTimePrekeys: readonly OneTimePreKey[] = [],
    readonly nextPrekeyId: number = 1,
  ) {}

  static generate(now: number, oneTimePrekeys = 100, rng: Rng = defaultRng): DeviceKeys {
    const identity = IdentityKeyPair.generate(rng);
    const keys = new DeviceKeys(identity, generateSignedPreKey(identity, 0, now, rng));
    return keys.withNewOneTimePrekeys(oneTimePrekeys, rng);
  }

  withNewOneTimePrekeys(count: number, rng: Rng = defaultRng): DeviceKeys {
    const first = this.nextPrekeyId;
    const added: OneTimePreKey[] = [];
    for (let i = 0; i < count; i += 1) added.push({ keyId: first + i, keyPair: X25519KeyPair.generate(rng) });
    return new DeviceKeys(this.identity, this.signedPrekey, this.previousSignedPrekey, [...this.oneTimePrekeys, ...added], first + count);
  }

  withRotatedSignedPrekey(now: number, rng: Rng = defaultRng): DeviceKeys {
    const fresh = generateSignedPreKey(this.identity, this.nextPrekeyId, now, rng);
    return new DeviceKeys(this.identity, fresh, this.signedPrekey, this.oneTimePrekeys, this.nextPrekeyId + 1);
  }

  withoutOneTimePrekey(keyId: number): DeviceKeys {
    return new DeviceKeys(
      this.identity,
      this.signedPrekey,
      this.previousSignedPrekey,
      this.oneTimePrekeys.filter((k) => k.keyId !== keyId),
      this.nextPrekeyId,
    );
  }

  findSignedPrekey(keyId: number): SignedPreKey | null {
    for (const spk of [this.signedPrekey, this.previousSignedPrekey]) {
      if (spk !== null && spk.keyId === keyId) return spk;
    }
    return null;
  }

  findOneTimePrekey(keyId: number): OneTimePreKey | null {
    return this.oneTimePrekeys.find((k) => k.keyId === keyId) ?? null;
  }

  bundle(oneTimePrekeyId: number | null = null): PreKeyBundle {
    let otpk: OneTimePreKey | null = null;
    if (oneTimePrekeyId !== null) {
      otpk = this.findOneTimePrekey(oneTimePrekeyId);
      if (otpk === null) throw new CryptoUsageError('unknown one-time prekey id');
    }
    const spk = this.signedPrekey;
    return {
      identityKey: this.identity.publicKey,
      signedPrekeyId: spk.keyId,
      signedPrekey: spk.keyPair.publicKey,
      signedPrekeySignature: spk.signature,
      oneTimePrekeyId: otpk?.keyId ?? null,
      oneTimePrekey: otpk?.keyPair.publicKey ?? null,
    };
  }

  /** Every private key, in crypto/keys.py `DeviceKeys.to_dict` form. */
  toDict(): Record<string, unknown> {
    const spk = (k: SignedPreKey) => ({
      id: k.keyId,
      private: b64urlEncode(k.keyPair.privateKey),
      signature: b64urlEncode(k.signature),
      created_at: k.createdAt,
    });
    return {
      identity_seed: b64urlEncode(this.identity.seed),
      signed_prekey: spk(this.signedPrekey),
      previous_signed_prekey: this.previousSignedPrekey === null ? null : spk(this.previousSignedPrekey),
      one_time_prekeys: this.oneTimePrekeys.map((k) => ({ id: k.keyId, private: b64urlEncode(k.keyPair.privateKey) })),
      next_prekey_id: this.nextPrekeyId,
    };
  }

  /** Restore keys saved with {@link toDict} (or by the Python side). @throws InvalidMessage */
  static fromDict(data: unknown): DeviceKeys {
    try {
      if (!isRecord(data)) throw new InvalidMessage();
      const spk = (d: unknown): SignedPreKey => {
        if (!isRecord(d) || typeof d.created_at !== 'number' || !Number.isInteger(d.created_at)) throw new InvalidMessage();
        return {
          keyId: fieldU32(d, 'id'),
          keyPair: X25519KeyPair.fromPrivate(b64urlDecode(d.private, 32)),
          signature: b64urlDecode(d.signature, 64),
          createdAt: d.created_at,
        };
      };
      const otpks = data.one_time_prekeys;
      if (!Array.isArray(otpks)) throw new InvalidMessage();
      return new DeviceKeys(
        new IdentityKeyPair(b64urlDecode(data.identity_seed, 32)),
        spk(data.signed_prekey),
        data.previous_signed_prekey === null ? null : spk(data.previous_signed_prekey),
        otpks.map((k: unknown) => {
          if (!isRecord(k)) throw new InvalidMessage();
          return { keyId: fieldU32(k, 'id'), keyPair: X25519KeyPair.fromPrivate(b64urlDecode(k.private, 32)) };
        }),
        fieldU32(data, 'next_prekey_id'),
      );
    } catch (error) {
      if (error instanceof InvalidMessage) throw error;
      throw new InvalidMessage();
    }
  }
}

