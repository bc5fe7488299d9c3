/**
 * WebSocket frames of protocol version 1 (protocol/frames.py; docs/protocol.md,
 * "Frames"): one JSON text message per frame, with `type` and `v`. Binary fields are
 * unpadded base64url. Server frames are validated before use: a frame that does not
 * match raises {@link FrameError}.
 *
 * Login: sign `"carnet-auth-v1" ‖ 0x00 ‖ origin (UTF-8) ‖ 0x00 ‖ nonce` with the
 * identity key — a different context from the signed prekey's (§2.1).
 */

import { b64urlDecode, b64urlEncode } from './base64url.ts';
import { concat, utf8 } from './bytes.ts';
import { isRecord } from './keys.ts';

export const PROTOCOL_VERSION = 1;
const AUTH_CONTEXT = utf8('carnet-auth-v1');

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export function authMessage(origin: string, nonce: Uint8Array): Uint8Array {
  return concat(AUTH_CONTEXT, Uint8Array.of(0), utf8(origin), Uint8Array.of(0), nonce);
}

export interface ChallengeFrame { type: 'challenge'; nonce: Uint8Array; origin: string }
export interface ReadyFrame {
  type: 'ready';
  device_id: string;
  person_id: string;
  session_token: string;
  session_expires: number;
  prekeys_left: number;
}
export interface SentFrame {
  type: 'sent';
  client_msg_id: string;
  message_id: string;
  conversation: string;
  seq: number;
  ts: number;
  stamp: Uint8Array | null;
  /** Recipients in their quiet hours: delivered without notification (docs/moderation.md). */
  silent_to: string[];
  quiet_until: number | null;
}
export interface DeliverFrame {
  type: 'deliver';
  envelope_id: string;
  message_id: string;
  sender_device: string;
  sender_person: string;
  conversation: string;
  seq: number;
  ciphertext: Uint8Array;
  group: boolean;
  ts: number;
  commitment: Uint8Array | null;
  stamp: Uint8Array | null;
  /** The recipient's quiet hours: show without a notification. */
  silent: boolean;
}
export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  ref: string | null;
  retry_after: number | null;
  /** For `not_allowed` and `rate_limited`: the moderation reason code (docs/moderation.md). */
  reason: string | null;
}
/** Live-only information (docs/moderation.md): a new device of ours, a report's outcome. */
export interface NoticeFrame {
  type: 'notice';
  kind: 'new_device' | 'report_outcome';
  ts: number;
  device_id: string | null;
  report_id: string | null;
  state: string | null;
}
export interface PrekeysLowFrame { type: 'prekeys_low'; remaining: number }
export interface MembershipEvent {
  action: 'created' | 'added' | 'removed' | 'left' | 'synced';
  persons: string[];
  by: string | null;
  members: string[];
}
/** A conversation event, sequenced and acknowledged like a message. */
export interface EventFrame { type: 'event'; envelope_id: string; conversation: string; seq: number; ts: number; event: MembershipEvent }
export interface SyncedFrame { type: 'synced'; conversation: string; head: number }
export interface ExpiredFrame { type: 'expired'; conversation: string; from_seq: number; to_seq: number }
export interface ReceiptFrame { type: 'receipt'; conversation: string; seq: number; person_id: string; kind: 'delivered' | 'read'; ts: number }

export type ServerFrame =
  | ChallengeFrame
  | ReadyFrame
  | SentFrame
  | DeliverFrame
  | EventFrame
  | SyncedFrame
  | ExpiredFrame
  | ReceiptFrame
  | ErrorFrame
  | PrekeysLowFrame
  | NoticeFrame;

function strList(data: Record<string, unknown>, name: string): string[] {
  const value = data[name];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new FrameError(`${name}: not a list of strings`);
  return value as string[];
}

function membership(value: unknown): MembershipEvent {
  if (!isRecord(value)) throw new FrameError('event: not an object');
  const action = value.action;
  if (action !== 'created' && action !== 'added' && action !== 'removed' && action !== 'left' && action !== 'synced') {
    throw new FrameError('event.action: unknown');
  }
  return { action, persons: strList(value, 'persons'), by: optStr(value, 'by'), members: strList(value, 'members') };
}

function str(data: Record<string, unknown>, name: string): string {
  const value = data[name];
  if (typeof value !== 'string') throw new FrameError(`${name}: not a string`);
  return value;
}

function optStr(data: Record<string, unknown>, name: string): string | null {
  const value = data[name] ?? null;
  if (value !== null && typeof value !== 'string') throw new FrameError(`${name}: not a string`);
  return value;
}

function int(data: Record<string, unknown>, name: string): number {
  const value = data[name];
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new FrameError(`${name}: not an integer`);
  return value;
}

function bytes(data: Record<string, unknown>, name: string): Uint8Array {
  try {
    return b64urlDecode(data[name]);
  } catch {
    throw new FrameError(`${name}: not base64url`);
  }
}

function optBytes(data: Record<string, unknown>, name: string): Uint8Array | null {
  return (data[name] ?? null) === null ? null : bytes(data, name);
}

/** Validate a server frame. @throws FrameError */
export function parseServerFrame(text: string): ServerFrame {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new FrameError('not JSON');
  }
  if (!isRecord(data)) throw new FrameError('not an object');
  if (data.v !== PROTOCOL_VERSION) throw new FrameError('unsupported protocol version');
  switch (data.type) {
    case 'challenge':
      return { type: 'challenge', nonce: bytes(data, 'nonce'), origin: str(data, 'origin') };
    case 'ready':
      return {
        type: 'ready',
        device_id: str(data, 'device_id'),
        person_id: str(data, 'person_id'),
        session_token: str(data, 'session_token'),
        session_expires: int(data, 'session_expires'),
        prekeys_left: int(data, 'prekeys_left'),
      };
    case 'sent':
      return {
        type: 'sent',
        client_msg_id: str(data, 'client_msg_id'),
        message_id: str(data, 'message_id'),
        conversation: str(data, 'conversation'),
        seq: int(data, 'seq'),
        ts: int(data, 'ts'),
        stamp: optBytes(data, 'stamp'),
        silent_to: data.silent_to === undefined ? [] : strList(data, 'silent_to'),
        quiet_until: data.quiet_until === undefined || data.quiet_until === null ? null : int(data, 'quiet_until'),
      };
    case 'deliver':
      return {
        type: 'deliver',
        envelope_id: str(data, 'envelope_id'),
        message_id: str(data, 'message_id'),
        sender_device: str(data, 'sender_device'),
        sender_person: str(data, 'sender_person'),
        conversation: str(data, 'conversation'),
        seq: int(data, 'seq'),
        ciphertext: bytes(data, 'ciphertext'),
        group: data.group === true,
        ts: int(data, 'ts'),
        commitment: optBytes(data, 'commitment'),
        stamp: optBytes(data, 'stamp'),
        silent: data.silent === true,
      };
    case 'error':
      return {
        type: 'error',
        code: str(data, 'code'),
        message: str(data, 'message'),
        ref: optStr(data, 'ref'),
        retry_after: typeof data.retry_after === 'number' ? data.retry_after : null,
        reason: optStr(data, 'reason'),
      };
    case 'notice': {
      const kind = data.kind;
      if (kind !== 'new_device' && kind !== 'report_outcome') throw new FrameError('kind: unknown');
      return {
        type: 'notice',
        kind,
        ts: int(data, 'ts'),
        device_id: optStr(data, 'device_id'),
        report_id: optStr(data, 'report_id'),
        state: optStr(data, 'state'),
      };
    }
    case 'prekeys_low':
      return { type: 'prekeys_low', remaining: int(data, 'remaining') };
    case 'event':
      return {
        type: 'event',
        envelope_id: str(data, 'envelope_id'),
        conversation: str(data, 'conversation'),
        seq: int(data, 'seq'),
        ts: int(data, 'ts'),
        event: membership(data.event),
      };
    case 'synced':
      return { type: 'synced', conversation: str(data, 'conversation'), head: int(data, 'head') };
    case 'expired':
      return { type: 'expired', conversation: str(data, 'conversation'), from_seq: int(data, 'from_seq'), to_seq: int(data, 'to_seq') };
    case 'receipt': {
      const kind = data.kind;
      if (kind !== 'delivered' && kind !== 'read') throw new FrameError('kind: unknown');
      return { type: 'receipt', conversation: str(data, 'conversation'), seq: int(data, 'seq'), person_id: str(data, 'person_id'), kind, ts: int(data, 'ts') };
    }
    default:
      throw new FrameError('unknown frame type');
  }
}

export function authFrame(deviceId: string, signature: Uint8Array): string {
  return JSON.stringify({ type: 'auth', v: PROTOCOL_VERSION, device_id: deviceId, signature: b64urlEncode(signature) });
}

export interface SendFrameInput {
  clientMsgId: string;
  conversation: string;
  envelopes?: { deviceId: string; ciphertext: Uint8Array }[];
  group?: { ciphertext: Uint8Array; deviceIds: string[] } | null;
  commitment?: Uint8Array | null;
}

export function sendFrame(input: SendFrameInput): string {
  const frame: Record<string, unknown> = {
    type: 'send',
    v: PROTOCOL_VERSION,
    client_msg_id: input.clientMsgId,
    conversation: input.conversation,
    envelopes: (input.envelopes ?? []).map((e) => ({ device_id: e.deviceId, ciphertext: b64urlEncode(e.ciphertext) })),
  };
  if (input.group) frame.group = { ciphertext: b64urlEncode(input.group.ciphertext), device_ids: input.group.deviceIds };
  if (input.commitment) frame.commitment = b64urlEncode(input.commitment);
  return JSON.stringify(frame);
}

/** Acknowledge processed envelopes (`<conversation>:<seq>`, cumulative per conversation). */
export function ackFrame(envelopeIds: string[]): string {
  return JSON.stringify({ type: 'ack', v: PROTOCOL_VERSION, envelope_ids: envelopeIds });
}

/** Ask again for what this device has not acknowledged after `since`. */
export function syncFrame(conversation: string, since = 0): string {
  return JSON.stringify({ type: 'sync', v: PROTOCOL_VERSION, conversation, since });
}

/** The person has read the conversation up to `seq` (read receipts, if the school allows). */
export function readFrame(conversation: string, seq: number): string {
  return JSON.stringify({ type: 'read', v: PROTOCOL_VERSION, conversation, seq });
}
