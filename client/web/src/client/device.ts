/**
 * A whole device session: enrol (once), connect with the challenge login, publish
 * prekeys, serialise every operation on the {@link Messenger} (sends and deliveries
 * one at a time, so ratchet state is never used concurrently), keep the
 * {@link ConversationBook} up to date from frames, and reconnect with backoff
 * (src/client/backoff.ts) when the connection drops for a reason a retry can fix.
 * After a reconnect the caller asks the server to `sync` what moved meanwhile.
 */

import { acknowledgementBody } from '../protocol/acknowledgement.ts';
import { sealAttachment, openAttachment } from '../protocol/attachment.ts';
import type { AttachmentRef } from '../protocol/content.ts';
import { type EventFrame, type NoticeFrame, type ReceiptFrame, type SentFrame, type ExpiredFrame, readFrame, syncFrame } from '../protocol/frames.ts';
import { DeviceKeys } from '../protocol/keys.ts';
import { type ConversationInfo, HttpApi, type NewConversation, type ReportFiled } from './api.ts';
import { Backoff, mayReconnect } from './backoff.ts';
import { ConversationBook } from './book.ts';
import { Connection, type SocketFactory, defaultSocketFactory } from './connection.ts';
import { type Message, Messenger, type Transport } from './messenger.ts';
import { reportRequest } from './report.ts';
import { DeviceState } from './state.ts';

export interface DeviceEvents {
  onMessage: (message: Message) => void;
  onEvent?: (frame: EventFrame) => void;
  onReceipt?: (frame: ReceiptFrame) => void;
  onExpired?: (frame: ExpiredFrame) => void;
  onNotice?: (frame: NoticeFrame) => void;
  onFailure?: (envelopeId: string) => void;
  onClose?: (code: number) => void;
  /** Logged in again after a drop (the caller may `sync`). */
  onReconnect?: () => void;
  /** No more automatic attempts: a final close code, or the attempts are spent. */
  onGiveUp?: (code: number) => void;
  onServerError?: (code: string, message: string) => void;
}

export class Device {
  private queue: Promise<unknown> = Promise.resolve();
  messenger: Messenger | null = null;
  connection: Connection | null = null;
  book = new ConversationBook();
  private events: DeviceEvents | null = null;
  private closing = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly api: HttpApi,
    public state: DeviceState,
    private readonly save: (state: DeviceState) => Promise<void> | void = () => undefined,
    private readonly socketFactory: SocketFactory = defaultSocketFactory,
    readonly backoff: Backoff = new Backoff(),
  ) {}

  /** Enrol a new device with a one-time code (keys generated here, never sent). */
  static async enrol(api: HttpApi, code: string, nowSeconds: number): Promise<DeviceState> {
    const keys = DeviceKeys.generate(nowSeconds, 0);
    const enrolment = await api.enrol(code.trim(), keys.identity.publicKey);
    return new DeviceState(keys, enrolment.device_id, enrolment.person_id);
  }

  /** Run `task` after every operation queued before it. */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private readonly transport: Transport = {
    request: (id, frame) => {
      if (this.connection === null) return Promise.reject(new Error('not connected'));
      return this.connection.request(id, frame);
    },
    sendRaw: (frame) => this.connection?.sendRaw(frame),
  };

  async connect(events: DeviceEvents): Promise<void> {
    this.events = events;
    this.closing = false;
    await this.open();
  }

  private async open(): Promise<void> {
    const events = this.events!;
    let current: Connection | null = null; // set once logged in
    const connection = await Connection.open(
      this.api.wsUrl,
      this.state.deviceId,
      this.state.keys.identity,
      {
        onDeliver: (frame) => {
          void this.serial(async () => {
            const messages = await this.messenger!.receive(frame, (f) => events.onFailure?.(f.envelope_id));
            this.book.processed(frame.conversation, frame.seq);
            for (const message of messages) events.onMessage(message);
          });
        },
        onEvent: (frame) => {
          void this.serial(async () => {
            await this.messenger!.acknowledgeEvent(frame);
            this.book.onEvent(frame);
            events.onEvent?.(frame);
          });
        },
        onReceipt: (frame) => {
          this.book.onReceipt(frame);
          events.onReceipt?.(frame);
        },
        onSynced: (frame) => void this.serial(async () => this.book.onSynced(frame)),
        onExpired: (frame) => {
          void this.serial(async () => {
            this.book.onExpired(frame);
            events.onExpired?.(frame);
          });
        },
        onNotice: (frame) => events.onNotice?.(frame),
        onPrekeysLow: (remaining) => void this.serial(() => this.messenger!.publishPrekeys(remaining)),
        onClose: (code) => {
          if (current === null || this.connection !== current) return; // failed login (see catch) or an older socket
          events.onClose?.(code);
          this.closed(code);
        },
        onServerError: (code, message) => events.onServerError?.(code, message),
      },
      this.socketFactory,
    ).catch((error: unknown) => {
      this.closed(1006);
      throw error;
    });
    current = connection;
    this.connection = connection;
    const ready = connection.ready!;
    this.messenger ??= new Messenger(this.state, this.api, () => this.token, this.transport, () => this.save(this.state));
    const first = this.state.keys.oneTimePrekeys.length === 0;
    await this.serial(() => this.messenger!.publishPrekeys(ready.prekeys_left, first));
    this.backoff.reset();
  }

  private closed(code: number): void {
    if (this.closing || this.timer !== null) return;
    const delay = mayReconnect(code) ? this.backoff.next() : null;
    if (delay === null) {
      this.events?.onGiveUp?.(code);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closing) return;
      this.open().then(
        () => this.events?.onReconnect?.(),
        () => undefined, // `closed` scheduled the next attempt
      );
    }, delay);
  }

  /** Reconnect now (a user's "retry" after giving up). */
  async reconnect(): Promise<void> {
    this.backoff.reset();
    this.closing = false;
    await this.open();
  }

  get token(): string {
    return this.connection?.ready?.session_token ?? '';
  }

  sendText(conversation: ConversationInfo, text: string, attachment?: AttachmentRef): Promise<{ sent: SentFrame; bridge: boolean }> {
    return this.serial(() => this.messenger!.sendText(conversation, text, attachment));
  }

  /** Encrypt a file, upload the blob, then send the message that carries its key. */
  async sendFile(conversation: ConversationInfo, text: string, file: Uint8Array, name: string, type: string) {
    const { blob, ref } = sealAttachment(file, name, type);
    const uploaded = await this.api.uploadAttachment(this.token, conversation.id, blob);
    const attachment = ref(uploaded.attachment_id);
    return { ...(await this.sendText(conversation, text, attachment)), attachment };
  }

  /** Download and decrypt an attachment. @throws InvalidMessage, ApiError */
  async fetchFile(ref: AttachmentRef): Promise<Uint8Array> {
    return openAttachment(await this.api.downloadAttachment(this.token, ref.id), ref);
  }

  createConversation(conversation: NewConversation): Promise<ConversationInfo> {
    return this.api.createConversation(this.token, conversation);
  }

  /** Find or create the direct conversation with a person. */
  direct(personId: string): Promise<ConversationInfo> {
    return this.createConversation({ kind: 'direct', members: [personId] });
  }

  /** Tell the server the person read the conversation up to `seq` (once per position). */
  markRead(conversation: string, seq: number): void {
    const upTo = this.book.readUpTo(conversation, seq);
    if (upTo !== null) this.connection?.sendRaw(readFrame(conversation, upTo));
  }

  /** Ask for what moved while we were away (docs/protocol.md §3.2 `sync`). */
  sync(conversations: Iterable<ConversationInfo>): number {
    const requests = this.book.syncRequests(conversations);
    for (const r of requests) this.connection?.sendRaw(syncFrame(r.conversation, r.since));
    return requests.length;
  }

  /** Sign and send a guardian's acknowledgement of announcement message `message`. */
  acknowledge(message: Pick<Message, 'conversation' | 'seq' | 'messageId'>) {
    const body = acknowledgementBody(this.state.keys.identity, message.conversation, message.seq, message.messageId, this.state.personId);
    return this.api.acknowledge(this.token, message.conversation, body);
  }

  report(message: Message): Promise<ReportFiled> {
    return this.api.report(this.token, reportRequest(message));
  }

  close(): void {
    this.closing = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.connection?.close();
  }
}
