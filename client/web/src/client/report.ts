/**
 * A report of a received message with its franking evidence (docs/protocol-e2e.md §8;
 * docs/moderation.md "Reports"; server/moderation_reports.py `ReportIn`): the body
 * the recipient decrypted, the franking key, the commitment and the server's stamp
 * from the `deliver` frame, the sender device and the server time. The server
 * verifies it without anyone's keys; without a stamp it is filed as unverified.
 */

import type { ReportRequest } from './api.ts';
import type { Message } from './messenger.ts';
import { b64urlEncode } from '../protocol/base64url.ts';

export function reportRequest(message: Message): ReportRequest {
  const e = message.evidence;
  return {
    conversation: message.conversation,
    seq: message.seq,
    plaintext: b64urlEncode(e.body),
    franking_key: b64urlEncode(e.frankingKey),
    commitment: b64urlEncode(e.commitment),
    stamp: e.stamp === null ? '' : b64urlEncode(e.stamp),
    sender_device: message.senderDevice,
    ts: message.ts,
  };
}
