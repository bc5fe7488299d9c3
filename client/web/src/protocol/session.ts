/**
 * Pairwise sessions: X3DH then the Double Ratchet, with the life cycle of
 * docs/protocol-e2e.md §5 (crypto/session.py).
 *
 * Rules (all moves live in {@link TRANSITIONS}):
 * 1. An initiator session starts PENDING and sends every message as a prekey
 *    message repeating its X3DH values, until it has decrypted one from the peer.
 * 2. The first message decrypted from the peer moves PENDING to ESTABLISHED.
 * 3. A responder session starts ESTABLISHED and accepts later prekey messages only
 *    with the same IK_A and EK_A as the one that created it.
 * 4. close() moves to CLOSED; nothing is allowed from there.
 * 5. Only successful operations move the machine; a failed decryption changes nothing.
 * 6. Any move missing from the table raises CryptoUsageError.
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { isU32 } from './bytes.ts';
import { CryptoUsageError, InvalidMessage } from './errors.ts';
import { MAX_PLAINTEXT_SIZE, type RatchetMessage, encodePreKeyMessage, encodeRatchetMessage, parseEnvelope } from './envelope.ts';
import { type DeviceKeys, type IdentityKeyPair, type PreKeyBundle, isRecord } from './keys.ts';
import { type Rng, constantTimeEqual, defaultRng } from './primitives.ts';
import {
  type RatchetState,
  initInitiator,
  initResponder,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetFromDict,
  ratchetToDict,
} from './ratchet.ts';
import { x3dhInitiate, x3dhRespond } from './x3dh.ts';

export type SessionState = 'pending' | 'established' | 'closed';
export type SessionEvent = 'send' | 'receive' | 'close';

export const TRANSITIONS: ReadonlyMap<string, SessionState> = new Map([
  ['pending/send', 'pending'],
  ['pending/receive', 'established'],
  ['pending/close', 'closed'],
  ['established/send', 'established'],
  ['established/receive', 'established'],
  ['established/close', 'closed'],
]);

function nextState(state: SessionState, event: SessionEvent): SessionState {
  const next = TRANSITIONS.get(`${state}/${event}`);
  if (next === undefined) throw new CryptoUsageError(`illegal session move: ${event} in ${state}`);
  return next;
}

interface PrekeyHeader {
  readonly identityKey: Uint8Array;
  readonly ephemeralKey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly oneTimePrekeyId: number | null;
}

/** A pairwise session with one peer device. Not re-entrant: serialise calls per session. */
export class Session {
  constructor(
    private sessionState: SessionState,
    private ratchet: RatchetState,
    private readonly prekeyHeader: PrekeyHeader,
    private readonly isInitiator: boolean,
    private readonly rng: Rng = defaultRng,
  ) {}

  get state(): SessionState {
    return this.sessionState;
  }

  /** The peer's Ed25519 identity public key (compare with safety numbers). */
  get peerIdentityKey(): Uint8Array {
    const ad = this.ratchet.associatedData;
    return this.isInitiator ? ad.slice(32) : ad.slice(0, 32);
  }

  /** Encrypt one message: a prekey message while PENDING, a ratchet message after. */
  encrypt(plaintext: Uint8Array): Uint8Array {
    const next = nextState(this.sessionState, 'send');
    if (plaintext.length > MAX_PLAINTEXT_SIZE) throw new CryptoUsageError('plaintext too large');
    const [ratchet, message] = ratchetEncrypt(this.ratchet, plaintext);
    const h = this.prekeyHeader;
    const envelope =
      next === 'pending'
        ? encodePreKeyMessage({
            type: 'prekey',
            identityKey: h.identityKey,
            ephemeralKey: h.ephemeralKey,
            signedPrekeyId: h.signedPrekeyId,
            oneTimePrekeyId: h.oneTimePrekeyId,
            message,
          })
        : encodeRatchetMessage(message);
    this.ratchet = ratchet;
    this.sessionState = next;
    return envelope;
  }

  /** Decrypt one envelope from the peer; on failure nothing changes. @throws InvalidMessage */
  decrypt(envelope: Uint8Array): Uint8Array {
    const next = nextState(this.sessionState, 'receive');
    const parsed = parseEnvelope(envelope);
    let message: RatchetMessage;
    if (parsed.type === 'prekey' && !this.isInitiator) {
      const h = this.prekeyHeader;
      if (!(constantTimeEqual(parsed.identityKey, h.identityKey) && constantTimeEqual(parsed.ephemeralKey, h.ephemeralKey))) {
        throw new InvalidMessage();
      }
      message = parsed.message;
    } else if (parsed.type === 'ratchet') {
      message = parsed;
    } else {
      throw new InvalidMessage();
    }
    const [ratchet, plaintext] = ratchetDecrypt(this.ratchet, message, this.rng);
    this.ratchet = ratchet;
    this.sessionState = next;
    return plaintext;
  }

  close(): void {
    this.sessionState = nextState(this.sessionState, 'close');
  }

  /** The same JSON as crypto/session.py `Session.to_dict` (secret). */
  toDict(): Record<string, unknown> {
    const h = this.prekeyHeader;
    return {
      version: 1,
      state: this.sessionState,
      initiator: this.isInitiator,
      prekey: { ik: b64urlEncode(h.identityKey), ek: b64urlEncode(h.ephemeralKey), spk_id: h.signedPrekeyId, opk_id: h.oneTimePrekeyId },
      ratchet: ratchetToDict(this.ratchet),
    };
  }

  /** @throws InvalidMessage malformed data */
  static fromDict(data: unknown, rng: Rng = defaultRng): Session {
    if (!isRecord(data) || data.version !== 1 || typeof data.initiator !== 'boolean' || !isRecord(data.prekey)) {
      throw new InvalidMessage();
    }
    const state = data.state;
    if (state !== 'pending' && state !== 'established' && state !== 'closed') throw new InvalidMessage();
    const p = data.prekey;
    const id = (v: unknown): number => {
      if (typeof v !== 'number' || !isU32(v)) throw new InvalidMessage();
      return v;
    };
    const header: PrekeyHeader = {
      identityKey: b64urlDecode(p.ik, 32),
      ephemeralKey: b64urlDecode(p.ek, 32),
      signedPrekeyId: id(p.spk_id),
      oneTimePrekeyId: p.opk_id === null ? null : id(p.opk_id),
    };
    return new Session(state, ratchetFromDict(data.ratchet), header, data.initiator, rng);
  }
}

/** Start a session from a peer's bundle (X3DH §3.3). @throws InvalidMessage bad bundle */
export function initiateSession(identity: IdentityKeyPair, bundle: PreKeyBundle, rng: Rng = defaultRng): Session {
  const agreement = x3dhInitiate(identity, bundle, rng);
  const ratchet = initInitiator(agreement.sharedSecret, agreement.signedPrekey, agreement.associatedData, rng);
  const header: PrekeyHeader = {
    identityKey: identity.publicKey,
    ephemeralKey: agreement.ephemeralKey,
    signedPrekeyId: agreement.signedPrekeyId,
    oneTimePrekeyId: agreement.oneTimePrekeyId,
  };
  return new Session('pending', ratchet, header, true, rng);
}

export interface AcceptedSession {
  readonly session: Session;
  readonly plaintext: Uint8Array;
  /** Delete this one-time prekey now (DeviceKeys.withoutOneTimePrekey), or null. */
  readonly usedOneTimePrekeyId: number | null;
}

/** Create a session from a received prekey message (X3DH §3.4). @throws InvalidMessage */
export function acceptSession(own: DeviceKeys, envelope: Uint8Array, rng: Rng = defaultRng): AcceptedSession {
  const parsed = parseEnvelope(envelope);
  if (parsed.type !== 'prekey') throw new InvalidMessage();
  const response = x3dhRespond(own, parsed.identityKey, parsed.ephemeralKey, parsed.signedPrekeyId, parsed.oneTimePrekeyId);
  const initial = initResponder(response.sharedSecret, response.signedPrekey, response.associatedData);
  const [ratchet, plaintext] = ratchetDecrypt(initial, parsed.message, rng);
  const header: PrekeyHeader = {
    identityKey: parsed.identityKey,
    ephemeralKey: parsed.ephemeralKey,
    signedPrekeyId: parsed.signedPrekeyId,
    oneTimePrekeyId: parsed.oneTimePrekeyId,
  };
  return { session: new Session('established', ratchet, header, false, rng), plaintext, usedOneTimePrekeyId: response.usedOneTimePrekeyId };
}
