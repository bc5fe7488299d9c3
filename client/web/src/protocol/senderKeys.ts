/**
 * Sender keys for groups (docs/protocol-e2e.md §7; WhatsApp Encryption Overview,
 * "Group Messages"), as crypto/sender_keys.py.
 *
 * Sending message i: mk, ck' = KDF_CK(ck_i); key, nonce = EXPAND(mk, "Carnet group
 * message keys v1"); AEAD with AD = envelope bytes 0..9; Ed25519 signature over every
 * byte before it. Receivers verify the signature *before* decrypting, derive at most
 * MAX_SKIP ahead, keep at most MAX_SKIPPED_KEYS skipped keys and MAX_KEYS_PER_SENDER
 * key ids, reject used iterations and commit only on success.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { isU32, readU32 } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { MAX_PLAINTEXT_SIZE, encodeDistribution, encodeGroupMessage, groupHeaderBytes, groupSignedBytes, parseEnvelope } from './envelope.ts';
import { GROUP_MESSAGE_KEY_INFO, expandMessageKey, kdfCk } from './kdf.ts';
import { isRecord } from './keys.ts';
import { type Rng, aeadDecrypt, aeadEncrypt, defaultRng, ed25519KeyPairFromSeed, ed25519Sign, ed25519Verify, randomBytes } from './primitives.ts';

export const GROUP_MAX_SKIP = 1000;
export const GROUP_MAX_SKIPPED_KEYS = 2000;
export const MAX_KEYS_PER_SENDER = 5;

function u32Field(value: unknown): number {
  if (typeof value !== 'number' || !isU32(value)) throw new InvalidMessage();
  return value;
}

/** Our sender key in one conversation. */
export class GroupSender {
  private readonly signingPublic: Uint8Array;
  private readonly signingSecret: Uint8Array;

  constructor(
    readonly keyId: number,
    private chainKey: Uint8Array,
    private iteration: number,
    private readonly signingSeed: Uint8Array,
  ) {
    if (chainKey.length !== 32 || !isU32(keyId)) throw new CryptoUsageError('invalid sender key');
    const pair = ed25519KeyPairFromSeed(signingSeed);
    this.signingPublic = pair.publicKey;
    this.signingSecret = pair.secretKey;
  }

  /** A new sender key (also how to rotate). Draws 4 + 32 + 32 random bytes, in that order. */
  static generate(rng: Rng = defaultRng): GroupSender {
    const keyId = readU32(randomBytes(rng, 4), 0);
    return new GroupSender(keyId, randomBytes(rng, 32), 0, randomBytes(rng, 32));
  }

  /** The 74-byte distribution for the current iteration; send it only inside pairwise sessions. */
  distribution(): Uint8Array {
    return encodeDistribution({ type: 'distribution', keyId: this.keyId, iteration: this.iteration, chainKey: this.chainKey, signingKey: this.signingPublic });
  }

  encrypt(plaintext: Uint8Array): Uint8Array {
    if (plaintext.length > MAX_PLAINTEXT_SIZE || this.iteration > 0xffffffff) {
      throw new CryptoUsageError('plaintext too large or sender key exhausted');
    }
    const [nextChainKey, messageKey] = kdfCk(this.chainKey);
    const [key, nonce] = expandMessageKey(messageKey, GROUP_MESSAGE_KEY_INFO);
    const ciphertext = aeadEncrypt(key, nonce, plaintext, groupHeaderBytes(this.keyId, this.iteration));
    const signature = ed25519Sign(this.signingSecret, groupSignedBytes(this.keyId, this.iteration, ciphertext));
    const envelope = encodeGroupMessage({ type: 'group', keyId: this.keyId, iteration: this.iteration, ciphertext, signature });
    this.chainKey = nextChainKey;
    this.iteration += 1;
    return envelope;
  }

  toDict(): Record<string, unknown> {
    return { key_id: this.keyId, chain_key: b64urlEncode(this.chainKey), iteration: this.iteration, signing_seed: b64urlEncode(this.signingSeed) };
  }

  static fromDict(data: unknown): GroupSender {
    if (!isRecord(data)) throw new InvalidMessage();
    return new GroupSender(u32Field(data.key_id), b64urlDecode(data.chain_key, 32), u32Field(data.iteration), b64urlDecode(data.signing_seed, 32));
  }
}

interface ReceivingKey {
  readonly signingKey: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly iteration: number;
  readonly skipped: ReadonlyMap<number, Uint8Array>;
}

function messageKeyFor(state: ReceivingKey, iteration: number): [ReceivingKey, Uint8Array] {
  if (iteration < state.iteration) {
    const stored = state.skipped.get(iteration);
    if (stored === undefined) throw new InvalidMessage();
    const skipped = new Map(state.skipped);
    skipped.delete(iteration);
    return [{ ...state, skipped }, stored];
  }
  if (iteration - state.iteration > GROUP_MAX_SKIP) throw new InvalidMessage();
  const skipped = new Map(state.skipped);
  let chainKey = state.chainKey;
  for (let i = state.iteration; i < iteration; i += 1) {
    const [next, mk] = kdfCk(chainKey);
    skipped.set(i, mk);
    chainKey = next;
  }
  while (skipped.size > GROUP_MAX_SKIPPED_KEYS) skipped.delete(skipped.keys().next().value as number);
  const [next, messageKey] = kdfCk(chainKey);
  return [{ ...state, chainKey: next, iteration: iteration + 1, skipped }, messageKey];
}

/** The sender keys we hold for one sender device in one conversation. */
export class GroupReceiver {
  private readonly keys = new Map<number, ReceivingKey>();

  get keyIds(): number[] {
    return [...this.keys.keys()];
  }

  /** Install a distribution received inside a pairwise session; a known key id is ignored. */
  addDistribution(distribution: Uint8Array): number {
    const parsed = parseEnvelope(distribution);
    if (parsed.type !== 'distribution') throw new InvalidMessage();
    if (!this.keys.has(parsed.keyId)) {
      this.keys.set(parsed.keyId, { signingKey: parsed.signingKey, chainKey: parsed.chainKey, iteration: parsed.iteration, skipped: new Map() });
      while (this.keys.size > MAX_KEYS_PER_SENDER) this.keys.delete(this.keys.keys().next().value as number);
    }
    return parsed.keyId;
  }

  /** Whether a group envelope uses a key id we hold (else its distribution may be on its way). */
  knows(envelope: Uint8Array): boolean {
    try {
      const parsed = parseEnvelope(envelope);
      return parsed.type === 'group' && this.keys.has(parsed.keyId);
    } catch {
      return false;
    }
  }

  /** Verify, then decrypt; on failure nothing changes. @throws InvalidMessage */
  decrypt(envelope: Uint8Array): Uint8Array {
    const parsed = parseEnvelope(envelope);
    if (parsed.type !== 'group') throw new InvalidMessage();
    const state = this.keys.get(parsed.keyId);
    if (state === undefined) throw new InvalidMessage();
    ed25519Verify(state.signingKey, groupSignedBytes(parsed.keyId, parsed.iteration, parsed.ciphertext), parsed.signature);
    const [next, messageKey] = messageKeyFor(state, parsed.iteration);
    const [key, nonce] = expandMessageKey(messageKey, GROUP_MESSAGE_KEY_INFO);
    const plaintext = aeadDecrypt(key, nonce, parsed.ciphertext, groupHeaderBytes(parsed.keyId, parsed.iteration));
    this.keys.set(parsed.keyId, next);
    return plaintext;
  }

  toDict(): Record<string, unknown> {
    return {
      keys: [...this.keys.entries()].map(([keyId, k]) => ({
        key_id: keyId,
        signing_key: b64urlEncode(k.signingKey),
        chain_key: b64urlEncode(k.chainKey),
        iteration: k.iteration,
        skipped: [...k.skipped.entries()].map(([i, mk]) => [i, b64urlEncode(mk)]),
      })),
    };
  }

  static fromDict(data: unknown): GroupReceiver {
    const receiver = new GroupReceiver();
    if (!isRecord(data) || !Array.isArray(data.keys)) throw new InvalidMessage();
    for (const k of (data.keys as unknown[]).slice(-MAX_KEYS_PER_SENDER)) {
      if (!isRecord(k) || !Array.isArray(k.skipped)) throw new InvalidMessage();
      const skipped = new Map<number, Uint8Array>();
      for (const entry of k.skipped as unknown[]) {
        if (!Array.isArray(entry) || entry.length !== 2) throw new InvalidMessage();
        skipped.set(u32Field(entry[0]), b64urlDecode(entry[1], 32));
      }
      receiver.keys.set(u32Field(k.key_id), {
        signingKey: b64urlDecode(k.signing_key, 32),
        chainKey: b64urlDecode(k.chain_key, 32),
        iteration: u32Field(k.iteration),
        skipped,
      });
    }
    return receiver;
  }
}
