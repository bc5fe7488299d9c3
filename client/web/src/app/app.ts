/**
 * The application controller: unlocks or enrols the device, keeps the connection
 * (reconnecting with backoff, then `sync`), the directory, the conversations, the
 * receipts and the (vault-encrypted) message history, and tells views to re-render.
 * Views are in src/app/views/; routes are hashes: `#/` conversations, `#/new`,
 * `#/people`, `#/write/PERSON`, `#/c/ID`, `#/devices/PERSON`, `#/safety/PERSON`,
 * `#/settings`, `#/lost`.
 */

import { ApiError, HttpApi, type ConversationInfo, type Person, type ReportFiled } from '../client/api.ts';
import { ConversationBook } from '../client/book.ts';
import { ConnectionError } from '../client/connection.ts';
import { Device } from '../client/device.ts';
import type { Message } from '../client/messenger.ts';
import { DeviceState } from '../client/state.ts';
import { b64urlDecode, b64urlEncode } from '../protocol/base64url.ts';
import type { AttachmentRef } from '../protocol/content.ts';
import type { SentFrame } from '../protocol/frames.ts';
import { reasonText, t } from './i18n.ts';
import { Vault } from './vault.ts';

/** A message as kept in the vault (binary fields base64url). */
export interface HistoryEntry {
  seq: number;
  from: string;
  text: string;
  ts: number;
  mine: boolean;
  messageId?: string;
  senderDevice?: string;
  silent?: boolean;
  /** Quiet-hours information the server gave the sender (`sent.silent_to/quiet_until`). */
  quietUntil?: number | null;
  attachment?: Record<string, string | number> | null;
  /** Franking evidence for a report (docs/protocol-e2e.md §8): body, fk, commitment, stamp. */
  evidence?: { body: string; fk: string; commitment: string; stamp: string | null };
  acknowledged?: boolean;
  reported?: string;
}

const MAX_HISTORY = 200;
const NOTIFY_KEY = 'carnet.notify';

export function attachmentToJson(a: AttachmentRef): Record<string, string | number> {
  return { id: a.id, key: b64urlEncode(a.key), name: a.name, type: a.type, size: a.size, digest: b64urlEncode(a.digest) };
}

export function attachmentFromJson(a: Record<string, string | number>): AttachmentRef {
  return { id: String(a.id), key: b64urlDecode(a.key, 32), name: String(a.name), type: String(a.type), size: Number(a.size), digest: b64urlDecode(a.digest, 32) };
}

/** The text to show for an API or send error: the moderation reason when there is one. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof ConnectionError) {
    const reason = reasonText(error.reason, error.retryAfter);
    if (reason !== null) return `${t('refused')} ${reason}`;
  }
  return `${t('errorGeneric')} ${error instanceof Error ? error.message : String(error)}`;
}

export class App {
  device: Device | null = null;
  vault: Vault | null = null;
  people = new Map<string, Person>();
  conversations = new Map<string, ConversationInfo>();
  history = new Map<string, HistoryEntry[]>();
  /** Whether this person may create class channels and announcements (school adults). */
  hosts = false;
  offline = false;
  readonly api = new HttpApi(location.origin);
  private listeners = new Set<() => void>();

  constructor(private readonly status: HTMLElement) {}

  get me(): DeviceState | null {
    return this.device?.state ?? null;
  }

  get book(): ConversationBook {
    return this.device?.book ?? new ConversationBook();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  name(personId: string): string {
    if (personId === this.me?.personId) return t('you');
    return this.people.get(personId)?.name ?? personId;
  }

  title(conversation: ConversationInfo): string {
    if (conversation.kind === 'direct') {
      const other = conversation.members.find((m) => m !== this.me?.personId);
      return other ? this.name(other) : conversation.title;
    }
    return conversation.title || conversation.members.filter((m) => m !== this.me?.personId).map((m) => this.name(m)).join(', ');
  }

  private async persist(): Promise<void> {
    if (this.vault === null || this.device === null) return;
    await this.vault.save({ device: this.device.state.toJSON(), history: Object.fromEntries(this.history), book: this.device.book.toJSON() });
  }

  async enrol(code: string, passphrase: string): Promise<void> {
    const state = await Device.enrol(this.api, code, Math.floor(Date.now() / 1000));
    this.vault = Vault.create(passphrase);
    this.device = new Device(this.api, state, () => this.persist());
    await this.persist();
    await this.start();
  }

  async unlock(passphrase: string): Promise<void> {
    const { vault, data } = await Vault.unlock(passphrase);
    const saved = data as { device: unknown; history?: Record<string, HistoryEntry[]>; book?: unknown };
    this.vault = vault;
    this.history = new Map(Object.entries(saved.history ?? {}));
    this.device = new Device(this.api, DeviceState.fromJSON(saved.device), () => this.persist());
    this.device.book = ConversationBook.fromJSON(saved.book);
    await this.start();
  }

  lock(): void {
    this.device?.close();
    this.device = null;
    this.vault = null;
    this.history.clear();
    this.conversations.clear();
  }

  private async start(): Promise<void> {
    const device = this.device!;
    await device.connect({
      onMessage: (message) => this.received(message),
      onEvent: () => void this.refresh(),
      onReceipt: () => this.changed(),
      onExpired: () => this.say(t('expiredGap')),
      onNotice: (notice) => this.say(notice.kind === 'new_device' ? t('newDevice') : `${t('reportOutcome')} ${notice.state ?? ''}`),
      onFailure: () => this.say(t('undecryptable')),
      onClose: () => {
        this.offline = true;
        this.say(t('disconnected'));
        this.changed();
      },
      onReconnect: () => void this.resumed(),
      onGiveUp: (code) => {
        this.say(code === 4003 ? t('loggedOut') : t('gaveUp'));
        this.changed();
      },
    });
    this.offline = false;
    this.say(t('connected'));
    await Promise.all([this.refresh(), this.probeHosting()]);
  }

  /** After a reconnect: reload, then ask for what moved while we were away. */
  private async resumed(): Promise<void> {
    this.offline = false;
    this.say(t('connected'));
    await this.refresh();
    this.device?.sync(this.conversations.values());
  }

  async reconnect(): Promise<void> {
    await this.device?.reconnect();
    await this.resumed();
  }

  /**
   * Whether we may create class channels and announcements. The protocol has no
   * "who am I" endpoint yet (docs/web-client.md, "Server gaps"): the creation rule is
   * checked before anything is stored, so an announcement with no member answers
   * `not_allowed` for non-staff and `invalid_request` (nothing created) for staff.
   */
  private async probeHosting(): Promise<void> {
    try {
      await this.api.createConversation(this.device!.token, { kind: 'announcement', members: [] });
      this.hosts = true;
    } catch (error) {
      this.hosts = error instanceof ApiError && error.code === 'invalid_request';
    }
    this.changed();
  }

  /** Reload the directory and the conversations (after events, on navigation). */
  async refresh(): Promise<void> {
    const device = this.device;
    if (device === null) return;
    const [people, conversations] = await Promise.all([this.api.directory(device.token), this.api.conversations(device.token)]);
    this.people = new Map(people.map((p) => [p.person_id, p]));
    this.conversations = new Map(conversations.map((c) => [c.id, c]));
    this.changed();
  }

  /** Load the receipts of a conversation (the school decides which kinds exist). */
  async loadReceipts(conversation: string): Promise<void> {
    const device = this.device;
    if (device === null) return;
    device.book.loadReceipts(conversation, await this.api.receipts(device.token, conversation));
    this.changed();
  }

  private append(conversation: string, entry: HistoryEntry): void {
    const list = this.history.get(conversation) ?? [];
    if (list.some((e) => e.seq === entry.seq && e.seq > 0)) return;
    list.push(entry);
    list.sort((a, b) => a.seq - b.seq);
    this.history.set(conversation, list.slice(-MAX_HISTORY));
  }

  private received(message: Message): void {
    const e = message.evidence;
    this.append(message.conversation, {
      seq: message.seq,
      from: message.senderPerson,
      text: message.text,
      ts: message.ts,
      mine: message.fromMe,
      messageId: message.messageId,
      senderDevice: message.senderDevice,
      silent: message.silent,
      attachment: message.attachment ? attachmentToJson(message.attachment) : null,
      evidence: { body: b64urlEncode(e.body), fk: b64urlEncode(e.frankingKey), commitment: b64urlEncode(e.commitment), stamp: e.stamp ? b64urlEncode(e.stamp) : null },
    });
    void this.persist();
    if (!message.fromMe && !message.silent) this.notify(message.senderPerson);
    if (!this.conversations.has(message.conversation)) void this.refresh();
    else this.changed();
  }

  get notificationsOn(): boolean {
    return globalThis.localStorage?.getItem(NOTIFY_KEY) === '1';
  }

  async setNotifications(on: boolean): Promise<boolean> {
    if (on && typeof Notification !== 'undefined' && Notification.permission !== 'granted') {
      if ((await Notification.requestPermission()) !== 'granted') on = false;
    }
    globalThis.localStorage?.setItem(NOTIFY_KEY, on ? '1' : '0');
    return on;
  }

  /** A notification without the message's content (quiet hours: none at all). */
  private notify(from: string): void {
    if (!this.notificationsOn || typeof Notification === 'undefined' || Notification.permission !== 'granted' || !document.hidden) return;
    new Notification('Carnet', { body: `${t('notificationNew')} ${this.name(from)}`, tag: 'carnet' });
  }

  private sentEntry(sent: SentFrame, text: string, attachment: AttachmentRef | null): HistoryEntry {
    return {
      seq: sent.seq,
      from: this.me!.personId,
      text,
      ts: sent.ts,
      mine: true,
      messageId: sent.message_id,
      quietUntil: sent.silent_to.length > 0 ? sent.quiet_until : null,
      attachment: attachment ? attachmentToJson(attachment) : null,
    };
  }

  async send(conversation: ConversationInfo, text: string, file?: File | null): Promise<{ bridge: boolean }> {
    const device = this.device!;
    let sent: SentFrame;
    let bridge: boolean;
    let attachment: AttachmentRef | null = null;
    if (file) {
      const result = await device.sendFile(conversation, text, new Uint8Array(await file.arrayBuffer()), file.name, file.type || 'application/octet-stream');
      ({ sent, bridge, attachment } = result);
    } else {
      ({ sent, bridge } = await device.sendText(conversation, text));
    }
    this.append(conversation.id, this.sentEntry(sent, text, attachment));
    await this.persist();
    this.changed();
    return { bridge };
  }

  async direct(personId: string): Promise<ConversationInfo> {
    const conversation = await this.device!.direct(personId);
    this.conversations.set(conversation.id, conversation);
    return conversation;
  }

  async create(request: Parameters<Device['createConversation']>[0]): Promise<ConversationInfo> {
    const conversation = await this.device!.createConversation(request);
    this.conversations.set(conversation.id, conversation);
    return conversation;
  }

  async acknowledge(conversation: string, entry: HistoryEntry): Promise<void> {
    await this.device!.acknowledge({ conversation, seq: entry.seq, messageId: entry.messageId ?? '' });
    entry.acknowledged = true;
    await this.persist();
    this.changed();
  }

  async report(conversation: string, entry: HistoryEntry): Promise<ReportFiled> {
    const e = entry.evidence!;
    const filed = await this.device!.report({
      envelopeId: '',
      messageId: entry.messageId ?? '',
      senderPerson: entry.from,
      senderDevice: entry.senderDevice ?? '',
      fromMe: false,
      conversation,
      seq: entry.seq,
      toPerson: null,
      text: entry.text,
      attachment: null,
      ts: entry.ts,
      group: false,
      silent: false,
      evidence: { body: b64urlDecode(e.body), frankingKey: b64urlDecode(e.fk), commitment: b64urlDecode(e.commitment), stamp: e.stamp ? b64urlDecode(e.stamp) : null },
    });
    entry.reported = filed.proof;
    await this.persist();
    this.changed();
    return filed;
  }

  say(text: string): void {
    this.status.textContent = text;
  }
}
