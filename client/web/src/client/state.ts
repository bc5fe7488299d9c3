/**
 * Everything secret a device keeps, as one JSON-able value (encrypted at rest by the
 * app, src/app/vault.ts): its keys, its pairwise sessions with the identity key each
 * peer device was first seen with (trust on first use, checked against safety
 * numbers), its sender keys and those of others, and the envelope ids already
 * processed (deliveries are at least once).
 */

import { b64urlDecode, b64urlEncode } from '../protocol/base64url.ts';
import { InvalidMessage } from '../protocol/errors.ts';
import { DeviceKeys, isRecord } from '../protocol/keys.ts';
import { GroupReceiver, GroupSender } from '../protocol/senderKeys.ts';
import { Session } from '../protocol/session.ts';

const MAX_SEEN = 5000;

export interface OurSenderKey {
  sender: GroupSender;
  /** The devices it was distributed to; any change rotates it (docs/protocol-e2e.md §7). */
  members: string[];
}

export class DeviceState {
  sessions = new Map<string, Session>();
  pins = new Map<string, Uint8Array>();
  senders = new Map<string, OurSenderKey>();
  receivers = new Map<string, GroupReceiver>();
  seen: string[] = [];

  constructor(
    public keys: DeviceKeys,
    readonly deviceId: string,
    readonly personId: string,
  ) {}

  receiver(conversation: string, device: string): GroupReceiver {
    const id = `${conversation} ${device}`;
    let receiver = this.receivers.get(id);
    if (receiver === undefined) {
      receiver = new GroupReceiver();
      this.receivers.set(id, receiver);
    }
    return receiver;
  }

  markSeen(envelopeId: string): void {
    this.seen.push(envelopeId);
    if (this.seen.length > MAX_SEEN) this.seen.splice(0, this.seen.length - MAX_SEEN);
  }

  toJSON(): Record<string, unknown> {
    return {
      version: 1,
      device_id: this.deviceId,
      person_id: this.personId,
      keys: this.keys.toDict(),
      sessions: Object.fromEntries([...this.sessions].map(([d, s]) => [d, s.toDict()])),
      pins: Object.fromEntries([...this.pins].map(([d, k]) => [d, b64urlEncode(k)])),
      senders: Object.fromEntries([...this.senders].map(([c, s]) => [c, { sender: s.sender.toDict(), members: s.members }])),
      receivers: Object.fromEntries([...this.receivers].map(([id, r]) => [id, r.toDict()])),
      seen: this.seen,
    };
  }

  /** @throws InvalidMessage malformed saved state */
  static fromJSON(data: unknown): DeviceState {
    if (!isRecord(data) || data.version !== 1 || typeof data.device_id !== 'string' || typeof data.person_id !== 'string') {
      throw new InvalidMessage();
    }
    const state = new DeviceState(DeviceKeys.fromDict(data.keys), data.device_id, data.person_id);
    const record = (v: unknown): Record<string, unknown> => {
      if (!isRecord(v)) throw new InvalidMessage();
      return v;
    };
    for (const [d, s] of Object.entries(record(data.sessions))) state.sessions.set(d, Session.fromDict(s));
    for (const [d, k] of Object.entries(record(data.pins))) state.pins.set(d, b64urlDecode(k, 32));
    for (const [c, s] of Object.entries(record(data.senders))) {
      const entry = record(s);
      if (!Array.isArray(entry.members)) throw new InvalidMessage();
      state.senders.set(c, { sender: GroupSender.fromDict(entry.sender), members: entry.members.map(String) });
    }
    for (const [id, r] of Object.entries(record(data.receivers))) state.receivers.set(id, GroupReceiver.fromDict(r));
    state.seen = Array.isArray(data.seen) ? data.seen.map(String).slice(-MAX_SEEN) : [];
    return state;
  }
}
