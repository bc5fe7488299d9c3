/**
 * One WebSocket connection to Carnet (docs/protocol.md; protocol/session.py): answer
 * the challenge with an Ed25519 signature over `authMessage(origin, nonce)`, wait for
 * `ready`, then hand every frame to the listener and match `sent`/`error` frames to
 * pending sends by client message id. Every wait is bounded by a timeout.
 */

import type { IdentityKeyPair } from '../protocol/keys.ts';
import {
  type DeliverFrame,
  type EventFrame,
  type ExpiredFrame,
  type NoticeFrame,
  type ReceiptFrame,
  type SyncedFrame,
  type ReadyFrame,
  type SentFrame,
  type ServerFrame,
  authFrame,
  authMessage,
  parseServerFrame,
} from '../protocol/frames.ts';

export class ConnectionError extends Error {
  constructor(
    readonly code: string,
    message: string,
    /** docs/moderation.md reason of a refused send (`not_allowed`, `rate_limited`). */
    readonly reason: string | null = null,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/** The part of the WHATWG WebSocket the connection needs (browser, or Node's global). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export const defaultSocketFactory: SocketFactory = (url) => new WebSocket(url) as unknown as SocketLike;

export interface ConnectionHandlers {
  onDeliver: (frame: DeliverFrame) => void;
  onEvent?: (frame: EventFrame) => void;
  onReceipt?: (frame: ReceiptFrame) => void;
  onSynced?: (frame: SyncedFrame) => void;
  onExpired?: (frame: ExpiredFrame) => void;
  onNotice?: (frame: NoticeFrame) => void;
  onPrekeysLow?: (remaining: number) => void;
  onClose?: (code: number, reason: string) => void;
  onServerError?: (code: string, message: string) => void;
}

interface Waiter {
  resolve: (frame: SentFrame) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class Connection {
  private readonly waiters = new Map<string, Waiter>();
  ready: ReadyFrame | null = null;

  private constructor(
    private readonly socket: SocketLike,
    private readonly handlers: ConnectionHandlers,
  ) {}

  /** Open, authenticate and return once `ready` arrived. @throws ConnectionError */
  static open(
    url: string,
    deviceId: string,
    identity: IdentityKeyPair,
    handlers: ConnectionHandlers,
    factory: SocketFactory = defaultSocketFactory,
    timeoutMs = 15_000,
  ): Promise<Connection> {
    const socket = factory(url);
    const connection = new Connection(socket, handlers);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new ConnectionError('timeout', 'no answer from the server in time'));
      }, timeoutMs);
      socket.onerror = () => undefined;
      socket.onclose = (event) => {
        clearTimeout(timer);
        if (connection.ready === null) reject(new ConnectionError('closed', `connection closed (${event.code})`));
        connection.failWaiters(new ConnectionError('closed', 'connection closed'));
        handlers.onClose?.(event.code, event.reason);
      };
      socket.onmessage = (event) => {
        let frame: ServerFrame;
        try {
          frame = parseServerFrame(String(event.data));
        } catch {
          return; // an invalid frame from the server is ignored, never acted on
        }
        if (frame.type === 'challenge') {
          socket.send(authFrame(deviceId, identity.sign(authMessage(frame.origin, frame.nonce))));
        } else if (frame.type === 'ready') {
          connection.ready = frame;
          clearTimeout(timer);
          resolve(connection);
        } else if (connection.ready === null && frame.type === 'error') {
          clearTimeout(timer);
          reject(new ConnectionError(frame.code, frame.message));
        } else {
          if (frame.type === 'error') handlers.onServerError?.(frame.code, frame.message);
          connection.dispatch(frame);
        }
      };
    });
  }

  private dispatch(frame: ServerFrame): void {
    if (frame.type === 'deliver') this.handlers.onDeliver(frame);
    else if (frame.type === 'event') this.handlers.onEvent?.(frame);
    else if (frame.type === 'receipt') this.handlers.onReceipt?.(frame);
    else if (frame.type === 'synced') this.handlers.onSynced?.(frame);
    else if (frame.type === 'expired') this.handlers.onExpired?.(frame);
    else if (frame.type === 'notice') this.handlers.onNotice?.(frame);
    else if (frame.type === 'prekeys_low') this.handlers.onPrekeysLow?.(frame.remaining);
    else if (frame.type === 'sent') this.settle(frame.client_msg_id, (w) => w.resolve(frame));
    else if (frame.type === 'error' && frame.ref !== null) {
      this.settle(frame.ref, (w) => w.reject(new ConnectionError(frame.code, frame.message, frame.reason, frame.retry_after)));
    }
  }

  private settle(id: string, action: (waiter: Waiter) => void): void {
    const waiter = this.waiters.get(id);
    if (waiter === undefined) return;
    this.waiters.delete(id);
    clearTimeout(waiter.timer);
    action(waiter);
  }

  private failWaiters(error: Error): void {
    for (const id of [...this.waiters.keys()]) this.settle(id, (w) => w.reject(error));
  }

  /** Send a `send` frame and wait for its `sent` (durably stored) or its error. */
  request(clientMsgId: string, frameText: string, timeoutMs = 15_000): Promise<SentFrame> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(clientMsgId, (w) => w.reject(new ConnectionError('timeout', 'not acknowledged in time'))), timeoutMs);
      this.waiters.set(clientMsgId, { resolve, reject, timer });
      this.socket.send(frameText);
    });
  }

  sendRaw(frameText: string): void {
    this.socket.send(frameText);
  }

  close(): void {
    this.socket.close(1000, 'bye');
  }
}
