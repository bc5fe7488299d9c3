/**
 * The messaging core shared by the Node interop peer and the browser app: sessions
 * per peer device, franked payloads, sender keys per conversation, receiving with
 * at-least-once deduplication. The same content and flows as the Python SDK
 * (client/client.py), so both interoperate through a real Carnet.
 *
 * - Direct message: one pairwise envelope per device of the addressee and per other
 *   device of ours, one commitment (docs/protocol-e2e.md §8) for all.
 * - Group message: if the member devices differ from those our sender key was given
 *   to, a new sender key is distributed pairwise first (§7, rotation); then one
 *   group ciphertext for everyone.
 * - Receiving: pairwise envelopes open or start a session; group envelopes whose key
 *   has not arrived wait (bounded) without being acknowledged.
 *
 * - Membership events: our sender key of that conversation is dropped, so the next
 *   group message distributes a fresh one (rotation on every membership change,
 *   docs/protocol-e2e.md §7).
 * - Each readable message keeps its franking evidence (body, franking key,
 *   commitment, stamp) so that it can be reported (src/client/report.ts).
 */

import { b64urlDecode, b64urlEncode } from '../protocol/base64url.ts';
import { type AttachmentRef, type Content, decodeBody, encodeBody } from '../protocol/content.ts';
import { InvalidMessage } from '../protocol/errors.ts';
import { type DeliverFrame, type EventFrame, type SentFrame, ackFrame, sendFrame } from '../protocol/frames.ts';
import { frank, openFranked } from '../protocol/franking.ts';
import { bundleFromJson } from '../protocol/keys.ts';
import { constantTimeEqual } from '../protocol/primitives.ts';
import { GroupSender } from '../protocol/senderKeys.ts';
import { acceptSession, initiateSession } from '../protocol/session.ts';
import type { ConversationInfo, HttpApi, RemoteDevice } from './api.ts';
import type { DeviceState } from './state.ts';

export const BRIDGE_KIND = 'email-bridge';
const MAX_WAITING_GROUP = 100;
const PREKEY_BATCH = 50;

export interface Message {
  envelopeId: string;
  messageId: string;
  senderPerson: string;
  senderDevice: string;
  fromMe: boolean;
  conversation: string;
  seq: number;
  toPerson: string | null;
  text: string;
  attachment: AttachmentRef | null;
  ts: number;
  group: boolean;
  /** Delivered in the recipient's quiet hours: no notification. */
  silent: boolean;
  /** What a report needs (franking evidence, docs/protocol-e2e.md §8). */
  evidence: { body: Uint8Array; frankingKey: Uint8Array; commitment: Uint8Array; stamp: Uint8Array | null };
}

export interface Transport {
  request(clientMsgId: string, frameText: string): Promise<SentFrame>;
  sendRaw(frameText: string): void;
}

export class NoDevices extends Error {}

function newId(): string {
  return b64urlEncode(crypto.getRandomValues(new Uint8Array(12)));
}

export class Messenger {
  private readonly contacts = new Map<string, RemoteDevice[]>();
  private readonly waiting = new Map<string, DeliverFrame[]>();

  constructor(
    readonly state: DeviceState,
    private readonly api: HttpApi,
    private readonly token: () => string,
    private readonly transport: Transport,
    private readonly save: () => Promise<void> | void = () => undefined,
  ) {}

  /** Publish the signed prekey and a batch of one-time prekeys, making more when low. */
  async publishPrekeys(serverHolds: number, first = false): Promise<number> {
    if (!first && serverHolds >= PREKEY_BATCH / 2) return serverHolds;
    const before = new Set(this.state.keys.oneTimePrekeys.map((k) => k.keyId));
    this.state.keys = this.state.keys.withNewOneTimePrekeys(PREKEY_BATCH);
    await this.save();
    const added = this.state.keys.oneTimePrekeys.filter((k) => !before.has(k.keyId));
    const spk = this.state.keys.signedPrekey;
    const result = await this.api.putPrekeys(this.token(), {
      signed_prekey: { id: spk.keyId, key: spk.keyPair.publicKey, signature: spk.signature },
      one_time_prekeys: added.map((k) => ({ id: k.keyId, key: k.keyPair.publicKey })),
    });
    return result.prekeys_left;
  }

  /** A person's devices (cached); `refresh` asks the server again. */
  async devicesOf(personId: string, refresh = false): Promise<RemoteDevice[]> {
    const cached = this.contacts.get(personId);
    if (cached !== undefined && !refresh) return cached;
    const devices = await this.api.personDevices(this.token(), personId);
    this.contacts.set(personId, devices);
    return devices;
  }

  private async reachable(personIds: string[]): Promise<{ devices: string[]; bridge: boolean }> {
    const devices: string[] = [];
    let bridge = false;
    for (const personId of new Set(personIds)) {
      let list = await this.devicesOf(personId);
      if (list.some((d) => !this.state.sessions.has(d.device_id) && d.bundle === null)) list = await this.devicesOf(personId, true);
      for (const device of list) {
        if (device.device_id === this.state.deviceId || devices.includes(device.device_id)) continue;
        if (!this.state.sessions.has(device.device_id)) {
          if (device.bundle === null) continue;
          try {
            const bundle = bundleFromJson(device.bundle);
            const pinned = b64urlDecode(device.identity_key, 32);
            if (!constantTimeEqual(bundle.identityKey, pinned)) continue;
            this.state.sessions.set(device.device_id, initiateSession(this.state.keys.identity, bundle));
            this.state.pins.set(device.device_id, pinned);
          } catch {
            continue; // a bad bundle is skipped, like the SDK does
          }
        }
        devices.push(device.device_id);
        bridge = bridge || device.kind === BRIDGE_KIND;
      }
    }
    return { devices, bridge };
  }

  private encryptFor(deviceId: string, payload: Uint8Array): { deviceId: string; ciphertext: Uint8Array } {
    const session = this.state.sessions.get(deviceId);
    if (session === undefined) throw new NoDevices(deviceId);
    return { deviceId, ciphertext: session.encrypt(payload) };
  }

  /**
   * Send a text to a conversation: pairwise to every device of a direct conversation
   * (the other person's and our other ones), with a sender key otherwise.
   */
  async sendText(conversation: ConversationInfo, text: string, attachment?: AttachmentRef): Promise<{ sent: SentFrame; bridge: boolean }> {
    if (conversation.kind !== 'direct') {
      const { bridge } = await this.reachable(conversation.members);
      return { sent: await this.sendGroup(conversation.id, conversation.members, text, attachment), bridge };
    }
    const personId = conversation.members.find((m) => m !== this.state.personId) ?? this.state.personId;
    const theirs = await this.reachable([personId]);
    if (theirs.devices.length === 0) throw new NoDevices(personId);
    const mine = await this.reachable([this.state.personId]);
    const targets = [...theirs.devices, ...mine.devices.filter((d) => !theirs.devices.includes(d))];
    const franked = frank(encodeBody({ t: 'text', text, to: personId, attachment }));
    const envelopes = targets.map((d) => this.encryptFor(d, franked.payload));
    await this.save();
    const id = newId();
    const frame = sendFrame({ clientMsgId: id, conversation: conversation.id, envelopes, commitment: franked.commitment });
    return { sent: await this.transport.request(id, frame), bridge: theirs.bridge };
  }

  /** Process and acknowledge a membership event: our sender key there is rotated. */
  async acknowledgeEvent(frame: EventFrame): Promise<void> {
    this.contacts.clear(); // members and their devices may have changed
    if (this.state.senders.delete(frame.conversation)) await this.save();
    this.transport.sendRaw(ackFrame([frame.envelope_id]));
  }

  /** Send one sender-key ciphertext to every device of the members (ourselves included). */
  async sendGroup(conversation: string, memberPersonIds: string[], text: string, attachment?: AttachmentRef): Promise<SentFrame> {
    const persons = [...memberPersonIds.filter((p) => p !== this.state.personId), this.state.personId];
    const { devices } = await this.reachable(persons);
    if (devices.length === 0) throw new NoDevices(conversation);
    const members = [...devices].sort();
    let ours = this.state.senders.get(conversation);
    const baseId = newId();
    if (ours === undefined || ours.members.join(' ') !== members.join(' ')) {
      ours = { sender: GroupSender.generate(), members };
      this.state.senders.set(conversation, ours);
      const franked = frank(encodeBody({ t: 'sender_key', conversation, distribution: ours.sender.distribution() }));
      const envelopes = members.map((d) => this.encryptFor(d, franked.payload));
      await this.save();
      await this.transport.request(`${baseId}.k`, sendFrame({ clientMsgId: `${baseId}.k`, conversation, envelopes, commitment: franked.commitment }));
    }
    const franked = frank(encodeBody({ t: 'text', text, to: null, attachment }));
    const ciphertext = ours.sender.encrypt(franked.payload);
    await this.save();
    return this.transport.request(
      baseId,
      sendFrame({ clientMsgId: baseId, conversation, group: { ciphertext, deviceIds: members }, commitment: franked.commitment }),
    );
  }

  /**
   * Process one delivered envelope: returns the messages it made readable (a sender
   * key may release waiting group messages). Acknowledges what was processed; an
   * undecryptable envelope is acknowledged and reported through `onFailure`.
   */
  async receive(frame: DeliverFrame, onFailure: (frame: DeliverFrame) => void = () => undefined): Promise<Message[]> {
    if (this.state.seen.includes(frame.envelope_id)) {
      this.transport.sendRaw(ackFrame([frame.envelope_id]));
      return [];
    }
    const out: Message[] = [];
    try {
      const result = this.open(frame);
      if (result === 'wait') return [];
      if (result.kind === 'message') out.push(result.message);
      else out.push(...(await this.releaseWaiting(result.key, onFailure)));
    } catch (error) {
      if (!(error instanceof InvalidMessage)) throw error;
      onFailure(frame);
    }
    this.state.markSeen(frame.envelope_id);
    await this.save();
    this.transport.sendRaw(ackFrame([frame.envelope_id]));
    return out;
  }

  private async releaseWaiting(key: string, onFailure: (frame: DeliverFrame) => void): Promise<Message[]> {
    const frames = this.waiting.get(key) ?? [];
    this.waiting.delete(key);
    const out: Message[] = [];
    for (const waiting of frames) out.push(...(await this.receive(waiting, onFailure)));
    return out;
  }

  private open(frame: DeliverFrame): 'wait' | { kind: 'message'; message: Message } | { kind: 'key'; key: string } {
    let payload: Uint8Array;
    if (frame.group) {
      const receiver = this.state.receiver(frame.conversation, frame.sender_device);
      if (!receiver.knows(frame.ciphertext)) {
        const key = `${frame.conversation} ${frame.sender_device}`;
        const list = this.waiting.get(key) ?? [];
        if (list.length >= MAX_WAITING_GROUP) throw new InvalidMessage();
        if (!list.some((f) => f.envelope_id === frame.envelope_id)) list.push(frame);
        this.waiting.set(key, list);
        return 'wait'; // its sender key distribution may still be on its way
      }
      payload = receiver.decrypt(frame.ciphertext);
    } else {
      payload = this.openPairwise(frame);
    }
    if (frame.commitment === null) throw new InvalidMessage();
    const { body, frankingKey } = openFranked(payload, frame.commitment);
    const content: Content = decodeBody(body);
    if (content.t === 'sender_key') {
      if (frame.group) throw new InvalidMessage();
      this.state.receiver(content.conversation, frame.sender_device).addDistribution(content.distribution);
      return { kind: 'key', key: `${content.conversation} ${frame.sender_device}` };
    }
    return {
      kind: 'message',
      message: {
        envelopeId: frame.envelope_id,
        messageId: frame.message_id,
        senderPerson: frame.sender_person,
        senderDevice: frame.sender_device,
        fromMe: frame.sender_person === this.state.personId,
        conversation: frame.conversation,
        seq: frame.seq,
        toPerson: content.to,
        text: content.text,
        attachment: content.attachment ?? null,
        ts: frame.ts,
        group: frame.group,
        silent: frame.silent,
        evidence: { body, frankingKey, commitment: frame.commitment, stamp: frame.stamp },
      },
    };
  }

  private openPairwise(frame: DeliverFrame): Uint8Array {
    const session = this.state.sessions.get(frame.sender_device);
    if (session !== undefined) {
      try {
        return session.decrypt(frame.ciphertext);
      } catch (error) {
        if (!(error instanceof InvalidMessage)) throw error;
        // The peer may have started a new session (reinstalled); fall through.
      }
    }
    const accepted = acceptSession(this.state.keys, frame.ciphertext);
    const pinned = this.state.pins.get(frame.sender_device);
    const peer = accepted.session.peerIdentityKey;
    if (pinned !== undefined && !constantTimeEqual(pinned, peer)) throw new InvalidMessage();
    this.state.pins.set(frame.sender_device, peer);
    this.state.sessions.set(frame.sender_device, accepted.session);
    if (accepted.usedOneTimePrekeyId !== null) this.state.keys = this.state.keys.withoutOneTimePrekey(accepted.usedOneTimePrekeyId);
    return accepted.plaintext;
  }
}
