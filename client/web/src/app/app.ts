/**
 * The application controller: unlocks or enrols the device, keeps the connection,
 * the directory, the conversations and the (vault-encrypted) message history, and
 * renders the current route. Views are in src/app/views/; routes are hashes:
 * `#/` conversations, `#/people`, `#/c/ID`, `#/devices/PERSON`, `#/safety/PERSON`,
 * `#/lost`. Extension point: class channels, announcements with acknowledgements and
 * reports (issue 10) add routes and views here.
 */

import { HttpApi, type ConversationInfo, type Person } from '../client/api.ts';
import { Device } from '../client/device.ts';
import type { Message } from '../client/messenger.ts';
import { DeviceState } from '../client/state.ts';
import { t } from './i18n.ts';
import { Vault } from './vault.ts';

export interface HistoryEntry {
  seq: number;
  from: string;
  text: string;
  ts: number;
  mine: boolean;
}

const MAX_HISTORY = 200;

export class App {
  device: Device | null = null;
  vault: Vault | null = null;
  people = new Map<string, Person>();
  conversations = new Map<string, ConversationInfo>();
  history = new Map<string, HistoryEntry[]>();
  readonly api = new HttpApi(location.origin);
  private listeners = new Set<() => void>();

  constructor(private readonly status: HTMLElement) {}

  get me(): DeviceState | null {
    return this.device?.state ?? null;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  name(personId: string): string {
    return this.people.get(personId)?.name ?? personId;
  }

  title(conversation: ConversationInfo): string {
    if (conversation.kind === 'direct') {
      const other = conversation.members.find((m) => m !== this.me?.personId);
      return other ? this.name(other) : conversation.title;
    }
    return conversation.title || conversation.members.map((m) => this.name(m)).join(', ');
  }

  private async persist(): Promise<void> {
    if (this.vault === null || this.device === null) return;
    await this.vault.save({ device: this.device.state.toJSON(), history: Object.fromEntries(this.history) });
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
    const saved = data as { device: unknown; history?: Record<string, HistoryEntry[]> };
    this.vault = vault;
    this.history = new Map(Object.entries(saved.history ?? {}));
    this.device = new Device(this.api, DeviceState.fromJSON(saved.device), () => this.persist());
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
      onFailure: () => this.say(t('undecryptable')),
      onClose: () => this.say(t('disconnected')),
    });
    this.say(t('connected'));
    await this.refresh();
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

  private append(conversation: string, entry: HistoryEntry): void {
    const list = this.history.get(conversation) ?? [];
    if (list.some((e) => e.seq === entry.seq && e.seq > 0)) return;
    list.push(entry);
    list.sort((a, b) => a.seq - b.seq);
    this.history.set(conversation, list.slice(-MAX_HISTORY));
  }

  private received(message: Message): void {
    this.append(message.conversation, {
      seq: message.seq,
      from: message.senderPerson,
      text: message.text,
      ts: message.ts,
      mine: message.fromMe,
    });
    void this.persist();
    if (!this.conversations.has(message.conversation)) void this.refresh();
    else this.changed();
  }

  async send(conversation: ConversationInfo, text: string): Promise<{ bridge: boolean }> {
    const { sent, bridge } = await this.device!.sendText(conversation, text);
    this.append(conversation.id, { seq: sent.seq, from: this.me!.personId, text, ts: sent.ts, mine: true });
    await this.persist();
    this.changed();
    return { bridge };
  }

  async direct(personId: string): Promise<ConversationInfo> {
    const conversation = await this.device!.direct(personId);
    this.conversations.set(conversation.id, conversation);
    return conversation;
  }

  say(text: string): void {
    this.status.textContent = text;
  }
}
