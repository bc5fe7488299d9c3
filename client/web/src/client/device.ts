/**
 * A whole device session: enrol (once), connect with the challenge login, publish
 * prekeys, and serialise every operation on the {@link Messenger} (sends and
 * deliveries one at a time, so ratchet state is never used concurrently).
 */

import { type EventFrame, type ReceiptFrame, readFrame } from '../protocol/frames.ts';
import { DeviceKeys } from '../protocol/keys.ts';
import { type ConversationInfo, HttpApi, type NewConversation } from './api.ts';
import { Connection, type SocketFactory, defaultSocketFactory } from './connection.ts';
import { type Message, Messenger } from './messenger.ts';
import { DeviceState } from './state.ts';

export interface DeviceEvents {
  onMessage: (message: Message) => void;
  onEvent?: (frame: EventFrame) => void;
  onReceipt?: (frame: ReceiptFrame) => void;
  onFailure?: (envelopeId: string) => void;
  onClose?: (code: number) => void;
  onServerError?: (code: string, message: string) => void;
}

export class Device {
  private queue: Promise<unknown> = Promise.resolve();
  messenger: Messenger | null = null;
  connection: Connection | null = null;

  constructor(
    readonly api: HttpApi,
    public state: DeviceState,
    private readonly save: (state: DeviceState) => Promise<void> | void = () => undefined,
    private readonly socketFactory: SocketFactory = defaultSocketFactory,
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

  async connect(events: DeviceEvents): Promise<void> {
    const connection = await Connection.open(
      this.api.wsUrl,
      this.state.deviceId,
      this.state.keys.identity,
      {
        onDeliver: (frame) => {
          void this.serial(async () => {
            const messages = await this.messenger!.receive(frame, (f) => events.onFailure?.(f.envelope_id));
            for (const message of messages) events.onMessage(message);
          });
        },
        onEvent: (frame) => {
          void this.serial(async () => {
            this.messenger!.acknowledgeEvent(frame);
            events.onEvent?.(frame);
          });
        },
        onReceipt: (frame) => events.onReceipt?.(frame),
        onPrekeysLow: (remaining) => void this.serial(() => this.messenger!.publishPrekeys(remaining)),
        onClose: (code) => events.onClose?.(code),
        onServerError: (code, message) => events.onServerError?.(code, message),
      },
      this.socketFactory,
    );
    this.connection = connection;
    const ready = connection.ready!;
    this.messenger = new Messenger(this.state, this.api, () => ready.session_token, connection, () => this.save(this.state));
    const first = this.state.keys.oneTimePrekeys.length === 0;
    await this.serial(() => this.messenger!.publishPrekeys(ready.prekeys_left, first));
  }

  get token(): string {
    return this.connection?.ready?.session_token ?? '';
  }

  sendText(conversation: ConversationInfo, text: string) {
    return this.serial(() => this.messenger!.sendText(conversation, text));
  }

  createConversation(conversation: NewConversation): Promise<ConversationInfo> {
    return this.api.createConversation(this.token, conversation);
  }

  /** Find or create the direct conversation with a person. */
  direct(personId: string): Promise<ConversationInfo> {
    return this.createConversation({ kind: 'direct', members: [personId] });
  }

  /** Tell the server the person read the conversation up to `seq` (read receipts). */
  markRead(conversation: string, seq: number): void {
    this.connection?.sendRaw(readFrame(conversation, seq));
  }

  close(): void {
    this.connection?.close();
  }
}
