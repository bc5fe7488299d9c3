/**
 * The web client's protocol and state additions for issue 10: attachment content and
 * encryption, signed acknowledgements (the exact bytes of protocol/frames.py),
 * server frames of the moderation era (silent, reason, notice), reconnect backoff,
 * the conversation book (receipts, read frames, sync after reconnect), report
 * evidence, and the refusal texts of docs/moderation.md.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import type { ConversationInfo } from '../src/client/api.ts';
import { Backoff, mayReconnect } from '../src/client/backoff.ts';
import { ConversationBook } from '../src/client/book.ts';
import type { Message } from '../src/client/messenger.ts';
import { reportRequest } from '../src/client/report.ts';
import { reasonCatalogue } from '../src/app/i18n.ts';
import { acknowledgementBody, acknowledgementMessage } from '../src/protocol/acknowledgement.ts';
import { AttachmentTooLarge, MAX_ATTACHMENT_SIZE, openAttachment, sealAttachment } from '../src/protocol/attachment.ts';
import { b64urlDecode } from '../src/protocol/base64url.ts';
import { decodeBody, encodeBody } from '../src/protocol/content.ts';
import { CryptoUsageError, InvalidMessage } from '../src/protocol/errors.ts';
import { frank, openFranked } from '../src/protocol/franking.ts';
import { parseServerFrame } from '../src/protocol/frames.ts';
import { DeviceKeys } from '../src/protocol/keys.ts';
import { ed25519Verify } from '../src/protocol/primitives.ts';
import { sodiumReady } from '../src/protocol/sodium.ts';
import { REPO, deterministicRng, toHex } from './helpers.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  await sodiumReady();
});

describe('attachments', () => {
  it('round-trips and carries the key only inside the message content', () => {
    const file = utf8('Autorisation de sortie signée');
    const { blob, ref } = sealAttachment(file, 'sortie.pdf', 'application/pdf', deterministicRng(utf8('att')));
    expect(blob.length).toBe(file.length + 24 + 16);
    const attachment = ref('a_1');
    expect(toHex(openAttachment(blob, attachment))).toBe(toHex(file));
    const body = encodeBody({ t: 'text', text: 'Voici le document', to: 'p_2', attachment });
    const decoded = decodeBody(body);
    expect(decoded.t === 'text' && decoded.attachment?.name).toBe('sortie.pdf');
    expect(decoded.t === 'text' && toHex(decoded.attachment!.key)).toBe(toHex(attachment.key));
    // Readers that ignore `attachment` (the Python SDK) still see text and to.
    const plain = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
    expect([plain.t, plain.text, plain.to]).toEqual(['text', 'Voici le document', 'p_2']);
    expect(Object.keys(plain)).toEqual(['attachment', 't', 'text', 'to']);
  });

  it('refuses a tampered blob, a wrong key, a wrong size and a malformed reference', () => {
    const { blob, ref } = sealAttachment(utf8('x'.repeat(100)), 'a.txt', 'text/plain');
    const good = ref('a_1');
    const flipped = blob.slice();
    flipped[40]! ^= 1;
    expect(() => openAttachment(flipped, good)).toThrow(InvalidMessage);
    expect(() => openAttachment(blob, { ...good, key: new Uint8Array(32) })).toThrow(InvalidMessage);
    expect(() => openAttachment(blob, { ...good, size: 99 })).toThrow(InvalidMessage);
    expect(() => openAttachment(blob.slice(0, 10), good)).toThrow(InvalidMessage);
    const bad = utf8('{"attachment":{"id":"a","key":"AA","name":"n","type":"t","size":1,"digest":"AA"},"t":"text","text":"","to":null}');
    expect(() => decodeBody(bad)).toThrow(InvalidMessage);
  });

  it('refuses files over the server limit before encrypting', () => {
    expect(() => sealAttachment(new Uint8Array(MAX_ATTACHMENT_SIZE + 1), 'big', 'x')).toThrow(AttachmentTooLarge);
  });
});

describe('signed acknowledgements', () => {
  it('signs the exact bytes of protocol.acknowledgement_message', () => {
    // Python: protocol.acknowledgement_message("c_abc", 12, "m_x", "p_y").hex()
    expect(toHex(acknowledgementMessage('c_abc', 12, 'm_x', 'p_y'))).toBe('6361726e65742d61636b2d763100635f616263003132006d5f7800705f79');
    const keys = DeviceKeys.generate(0, 0);
    const body = acknowledgementBody(keys.identity, 'c_abc', 12, 'm_x', 'p_y');
    expect(body.seq).toBe(12);
    expect(() => ed25519Verify(keys.identity.publicKey, acknowledgementMessage('c_abc', 12, 'm_x', 'p_y'), b64urlDecode(body.signature))).not.toThrow();
    expect(() => ed25519Verify(keys.identity.publicKey, acknowledgementMessage('c_abc', 13, 'm_x', 'p_y'), b64urlDecode(body.signature))).toThrow();
    expect(() => acknowledgementMessage('c', 0, 'm', 'p')).toThrow(CryptoUsageError);
  });
});

describe('server frames', () => {
  it('parses quiet hours, refusal reasons and notices', () => {
    const sent = parseServerFrame('{"type":"sent","v":1,"client_msg_id":"x","message_id":"m_1","conversation":"c_1","seq":3,"ts":5,"silent_to":["p_2"],"quiet_until":99}');
    expect(sent.type === 'sent' && [sent.silent_to, sent.quiet_until]).toEqual([['p_2'], 99]);
    const old = parseServerFrame('{"type":"sent","v":1,"client_msg_id":"x","message_id":"m_1","conversation":"c_1","seq":3,"ts":5}');
    expect(old.type === 'sent' && [old.silent_to, old.quiet_until]).toEqual([[], null]);
    const deliver = parseServerFrame(
      '{"type":"deliver","v":1,"envelope_id":"c_1:3","message_id":"m_1","conversation":"c_1","seq":3,"sender_device":"d_1","sender_person":"p_1","ciphertext":"AA","ts":1,"silent":true}',
    );
    expect(deliver.type === 'deliver' && deliver.silent).toBe(true);
    const error = parseServerFrame('{"type":"error","v":1,"code":"not_allowed","message":"no","ref":"x","reason":"announcement_one_way"}');
    expect(error.type === 'error' && error.reason).toBe('announcement_one_way');
    const notice = parseServerFrame('{"type":"notice","v":1,"kind":"report_outcome","ts":1,"report_id":"r_1","state":"warned"}');
    expect(notice).toMatchObject({ type: 'notice', kind: 'report_outcome', state: 'warned', device_id: null });
    expect(() => parseServerFrame('{"type":"notice","v":1,"kind":"other","ts":1}')).toThrow();
  });
});

describe('reconnect backoff', () => {
  it('doubles up to the cap with bounded jitter, gives up after the attempts, and resets', () => {
    const backoff = new Backoff(500, 4000, 5, () => 0.5);
    expect([backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next(), backoff.next()]).toEqual([500, 1000, 2000, 4000, 4000, null]);
    backoff.reset();
    expect(backoff.next()).toBe(500);
    const low = new Backoff(1000, 30_000, 3, () => 0);
    const high = new Backoff(1000, 30_000, 3, () => 1);
    expect([low.next(), high.next()]).toEqual([800, 1200]);
  });

  it('does not reconnect after a policy close, a newer connection or a school logout', () => {
    expect([1008, 4001, 4003].map(mayReconnect)).toEqual([false, false, false]);
    expect([1001, 1006, 4002].map(mayReconnect)).toEqual([true, true, true]);
  });
});

function conversation(id: string, members: string[], seq = 0, acked = 0): ConversationInfo {
  return { id, kind: 'group', title: '', members, owners: [members[0]!], seq, class_id: null, acknowledge: false, created_by: members[0]!, acked_seq: acked };
}

describe('conversation book', () => {
  it('counts delivered and read receipts per other member', () => {
    const book = new ConversationBook();
    const c = conversation('c_1', ['p_me', 'p_a', 'p_b']);
    expect(book.delivery(c, 'p_me', 4)).toEqual({ state: 'sent', delivered: 0, read: 0, of: 2 });
    book.onReceipt({ type: 'receipt', conversation: 'c_1', seq: 4, person_id: 'p_a', kind: 'delivered', ts: 1 });
    expect(book.delivery(c, 'p_me', 4).state).toBe('delivered');
    expect(book.delivery(c, 'p_me', 5).state).toBe('sent');
    book.onReceipt({ type: 'receipt', conversation: 'c_1', seq: 6, person_id: 'p_a', kind: 'read', ts: 2 });
    book.loadReceipts('c_1', { p_b: { read: 9 } });
    expect(book.delivery(c, 'p_me', 4)).toEqual({ state: 'read', delivered: 2, read: 2, of: 2 });
    expect(book.delivery(c, 'p_me', 8)).toEqual({ state: 'delivered', delivered: 1, read: 1, of: 2 });
    // Positions only grow.
    book.loadReceipts('c_1', { p_b: { read: 1, delivered: 1 } });
    expect(book.delivery(c, 'p_me', 9).read).toBe(1);
  });

  it('sends one read frame per new position', () => {
    const book = new ConversationBook();
    expect(book.readUpTo('c_1', 0)).toBeNull();
    expect(book.readUpTo('c_1', 3)).toBe(3);
    expect(book.readUpTo('c_1', 3)).toBeNull();
    expect(book.readUpTo('c_1', 2)).toBeNull();
    expect(book.readUpTo('c_1', 5)).toBe(5);
  });

  it('asks to sync the conversations that moved past what was processed, and survives saving', () => {
    const book = new ConversationBook();
    book.processed('c_1', 7);
    book.onEvent({ type: 'event', envelope_id: 'c_2:2', conversation: 'c_2', seq: 2, ts: 0, event: { action: 'added', persons: ['p'], by: null, members: [] } });
    book.onExpired({ type: 'expired', conversation: 'c_3', from_seq: 1, to_seq: 4 });
    const server = [conversation('c_1', ['a', 'b'], 9), conversation('c_2', ['a', 'b'], 2), conversation('c_3', ['a', 'b'], 4), conversation('c_4', ['a', 'b'], 3, 1)];
    expect(book.syncRequests(server)).toEqual([
      { conversation: 'c_1', since: 7 },
      { conversation: 'c_4', since: 1 },
    ]);
    book.onSynced({ type: 'synced', conversation: 'c_1', head: 9 });
    book.readUpTo('c_1', 9);
    const again = ConversationBook.fromJSON(JSON.parse(JSON.stringify(book)));
    expect(again.syncRequests(server)).toEqual([{ conversation: 'c_4', since: 1 }]);
    expect(again.readUpTo('c_1', 9)).toBeNull();
    expect(book.expired).toEqual([{ conversation: 'c_3', from: 1, to: 4 }]);
  });
});

describe('reports', () => {
  it('carry the body that opens the commitment, the key, the stamp and the sender', () => {
    const body = encodeBody({ t: 'text', text: 'message abusif', to: null });
    const franked = frank(body);
    const { frankingKey } = openFranked(franked.payload, franked.commitment);
    const stamp = new Uint8Array(36).fill(7);
    const message: Message = {
      envelopeId: 'c_1:4', messageId: 'm_1', senderPerson: 'p_1', senderDevice: 'd_1', fromMe: false, conversation: 'c_1', seq: 4,
      toPerson: null, text: 'message abusif', attachment: null, ts: 1234, group: true, silent: false,
      evidence: { body, frankingKey, commitment: franked.commitment, stamp },
    };
    const report = reportRequest(message);
    expect(report).toMatchObject({ conversation: 'c_1', seq: 4, sender_device: 'd_1', ts: 1234 });
    expect(openFranked(new Uint8Array([...b64urlDecode(report.franking_key), ...b64urlDecode(report.plaintext)]), b64urlDecode(report.commitment)).body).toEqual(body);
    expect(b64urlDecode(report.stamp)).toEqual(stamp);
  });
});

describe('refusal texts', () => {
  it('cover every reason code of docs/moderation.md, in English word for word and in French', () => {
    const doc = readFileSync(resolve(REPO, 'docs/moderation.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Reason codes'), doc.indexOf('## Sending'));
    const rows = [...section.matchAll(/^\| `(\w+)` \| [^|]+ \| (.+) \|$/gm)].map((m) => [m[1]!, m[2]!.trim()] as const);
    expect(rows.length).toBeGreaterThan(15);
    const en = reasonCatalogue('en');
    const fr = reasonCatalogue('fr');
    for (const [code, shown] of rows) {
      expect(fr[code], code).toBeTruthy();
      expect(en[code], code).toBeTruthy();
      if (!shown.startsWith('"')) continue; // "—": a client bug, no text prescribed
      const expected = shown.slice(1, -1).replace(/’/g, "'").replace('wait N seconds', 'wait {n} seconds');
      expect(en[code]!.replace(/’/g, "'"), code).toBe(expected);
    }
  });
});
