/**
 * What a device knows about its conversations beyond the ciphertexts (docs/protocol.md
 * §3.3 and §4), as a sans-I/O record fed with frames: the highest seq processed per
 * conversation (to `sync` from after a reconnect), the receipts of the other members
 * (only the kinds the school allows ever arrive), the read position already told to
 * the server (one `read` frame per new position), and the ranges that expired
 * before this device collected them. It decides; the caller sends the frames.
 */

import type { ConversationInfo, Receipts } from './api.ts';
import type { EventFrame, ExpiredFrame, ReceiptFrame, SyncedFrame } from '../protocol/frames.ts';

export type Delivery = 'sent' | 'delivered' | 'read';

export interface DeliveryState {
  state: Delivery;
  /** Other members who received / read up to this seq, and how many others there are. */
  delivered: number;
  read: number;
  of: number;
}

export interface ExpiredRange {
  conversation: string;
  from: number;
  to: number;
}

const MAX_EXPIRED = 50;

export class ConversationBook {
  readonly heads = new Map<string, number>();
  readonly receipts = new Map<string, Map<string, { delivered: number; read: number }>>();
  readonly readSent = new Map<string, number>();
  readonly expired: ExpiredRange[] = [];

  /** A message or event of `conversation` was processed up to `seq`. */
  processed(conversation: string, seq: number): void {
    if (seq > (this.heads.get(conversation) ?? 0)) this.heads.set(conversation, seq);
  }

  onEvent(frame: EventFrame): void {
    this.processed(frame.conversation, frame.seq);
  }

  onSynced(frame: SyncedFrame): void {
    this.processed(frame.conversation, frame.head);
  }

  onExpired(frame: ExpiredFrame): void {
    this.processed(frame.conversation, frame.to_seq);
    this.expired.push({ conversation: frame.conversation, from: frame.from_seq, to: frame.to_seq });
    if (this.expired.length > MAX_EXPIRED) this.expired.splice(0, this.expired.length - MAX_EXPIRED);
  }

  private receiptsOf(conversation: string): Map<string, { delivered: number; read: number }> {
    let map = this.receipts.get(conversation);
    if (map === undefined) {
      map = new Map();
      this.receipts.set(conversation, map);
    }
    return map;
  }

  onReceipt(frame: ReceiptFrame): void {
    const entry = this.receiptsOf(frame.conversation).get(frame.person_id) ?? { delivered: 0, read: 0 };
    if (frame.kind === 'read') entry.read = Math.max(entry.read, frame.seq);
    // Having read up to seq implies having received it.
    entry.delivered = Math.max(entry.delivered, frame.seq);
    this.receiptsOf(frame.conversation).set(frame.person_id, entry);
  }

  /** Merge the `GET /v1/conversations/{id}/receipts` answer (positions only grow). */
  loadReceipts(conversation: string, receipts: Receipts): void {
    const map = this.receiptsOf(conversation);
    for (const [person, r] of Object.entries(receipts)) {
      const entry = map.get(person) ?? { delivered: 0, read: 0 };
      entry.read = Math.max(entry.read, r.read ?? 0);
      entry.delivered = Math.max(entry.delivered, r.delivered ?? 0, entry.read);
      map.set(person, entry);
    }
  }

  /** How far my message `seq` got among the other members. */
  delivery(conversation: ConversationInfo, me: string, seq: number): DeliveryState {
    const others = conversation.members.filter((m) => m !== me);
    const map = this.receipts.get(conversation.id);
    let delivered = 0;
    let read = 0;
    for (const person of others) {
      const entry = map?.get(person);
      if (entry === undefined) continue;
      if (entry.delivered >= seq) delivered += 1;
      if (entry.read >= seq) read += 1;
    }
    const state: Delivery = others.length > 0 && read === others.length ? 'read' : delivered > 0 ? 'delivered' : 'sent';
    return { state, delivered, read, of: others.length };
  }

  /** The seq to put in a `read` frame when the person views the conversation, or null. */
  readUpTo(conversation: string, lastSeq: number): number | null {
    if (lastSeq < 1 || lastSeq <= (this.readSent.get(conversation) ?? 0)) return null;
    this.readSent.set(conversation, lastSeq);
    return lastSeq;
  }

  /**
   * After a reconnect: the conversations the server has moved past what we processed,
   * with the seq to `sync` from (docs/protocol.md §3.2 `sync`).
   */
  syncRequests(conversations: Iterable<ConversationInfo>): { conversation: string; since: number }[] {
    const out: { conversation: string; since: number }[] = [];
    for (const c of conversations) {
      const head = this.heads.get(c.id) ?? c.acked_seq ?? 0;
      if (c.seq > head) out.push({ conversation: c.id, since: head });
    }
    return out;
  }

  toJSON(): Record<string, unknown> {
    return { heads: Object.fromEntries(this.heads), read: Object.fromEntries(this.readSent) };
  }

  static fromJSON(data: unknown): ConversationBook {
    const book = new ConversationBook();
    const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
    const d = record(data);
    for (const [c, s] of Object.entries(record(d.heads))) if (typeof s === 'number') book.heads.set(c, s);
    for (const [c, s] of Object.entries(record(d.read))) if (typeof s === 'number') book.readSent.set(c, s);
    return book;
  }
}
