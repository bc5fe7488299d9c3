/**
 * Behaviour of the protocol module beyond the known answers: session life cycle,
 * out-of-order and replayed messages, wrong keys, skip limits, saved state, sender
 * keys, franking, envelope parsing and strict base64url (the misuse cases of
 * tests/crypto, for the TypeScript side).
 */

import { beforeAll, describe, expect, it } from 'vitest';

import { b64urlDecode, b64urlEncode } from '../src/protocol/base64url.ts';
import { decodeBody, encodeBody } from '../src/protocol/content.ts';
import { MAX_ENVELOPE_SIZE, parseEnvelope } from '../src/protocol/envelope.ts';
import { CryptoUsageError, InvalidMessage } from '../src/protocol/errors.ts';
import { frank, openFranked } from '../src/protocol/franking.ts';
import { authMessage, parseServerFrame, sendFrame } from '../src/protocol/frames.ts';
import { DeviceKeys, bundleFromJson, bundleToJson } from '../src/protocol/keys.ts';
import { GroupReceiver, GroupSender } from '../src/protocol/senderKeys.ts';
import { type Session, acceptSession, initiateSession } from '../src/protocol/session.ts';
import { sodiumReady } from '../src/protocol/sodium.ts';
import { loadJson, toHex } from './helpers.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

beforeAll(async () => {
  await sodiumReady();
});

function pair(): { alice: Session; bob: Session; bobKeys: DeviceKeys } {
  const aliceKeys = DeviceKeys.generate(0, 2);
  const bobKeys = DeviceKeys.generate(0, 2);
  const alice = initiateSession(aliceKeys.identity, bobKeys.bundle(1));
  const accepted = acceptSession(bobKeys, alice.encrypt(utf8('hello')));
  expect(text(accepted.plaintext)).toBe('hello');
  return { alice, bob: accepted.session, bobKeys: bobKeys.withoutOneTimePrekey(1) };
}

describe('pairwise sessions', () => {
  it('moves pending → established on the first reply and then sends ratchet messages', () => {
    const { alice, bob } = pair();
    expect(alice.state).toBe('pending');
    expect(parseEnvelope(alice.encrypt(utf8('again'))).type).toBe('prekey');
    expect(text(alice.decrypt(bob.encrypt(utf8('reply'))))).toBe('reply');
    expect(alice.state).toBe('established');
    expect(parseEnvelope(alice.encrypt(utf8('now ratchet'))).type).toBe('ratchet');
  });

  it('accepts out-of-order messages and rejects replays without changing state', () => {
    const { alice, bob } = pair();
    alice.decrypt(bob.encrypt(utf8('r')));
    const messages = [1, 2, 3].map((i) => alice.encrypt(utf8(`m${i}`)));
    expect(text(bob.decrypt(messages[2]!))).toBe('m3');
    expect(text(bob.decrypt(messages[0]!))).toBe('m1');
    expect(() => bob.decrypt(messages[0]!)).toThrow(InvalidMessage);
    expect(text(bob.decrypt(messages[1]!))).toBe('m2');
    expect(() => bob.decrypt(messages[2]!)).toThrow(InvalidMessage);
  });

  it('a tampered envelope fails and leaves the session usable', () => {
    const { alice, bob } = pair();
    const envelope = alice.encrypt(utf8('secret'));
    const tampered = envelope.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(() => bob.decrypt(tampered)).toThrow(InvalidMessage);
    expect(text(bob.decrypt(envelope))).toBe('secret');
  });

  it('rejects an X25519 key whose masked top bit was flipped (RFC 7748 §5)', () => {
    const aliceKeys = DeviceKeys.generate(0, 1);
    const bobKeys = DeviceKeys.generate(0, 1);
    const envelope = initiateSession(aliceKeys.identity, bobKeys.bundle(1)).encrypt(utf8('hi'));
    for (const lastKeyByte of [65, 106]) {  // EK_A, then DHs
      const flipped = envelope.slice();
      expect(flipped[lastKeyByte]! & 0x80).toBe(0);
      flipped[lastKeyByte]! |= 0x80;
      expect(() => parseEnvelope(flipped)).toThrow(InvalidMessage);
      expect(() => acceptSession(bobKeys, flipped)).toThrow(InvalidMessage);
    }
    expect(text(acceptSession(bobKeys, envelope).plaintext)).toBe('hi');
  });

  it('the wrong device cannot accept a prekey message', () => {
    const aliceKeys = DeviceKeys.generate(0, 1);
    const bobKeys = DeviceKeys.generate(0, 1);
    const eve = DeviceKeys.generate(0, 1);
    const envelope = initiateSession(aliceKeys.identity, bobKeys.bundle(1)).encrypt(utf8('x'));
    expect(() => acceptSession(eve, envelope)).toThrow(InvalidMessage);
  });

  it('refuses a bundle whose signed prekey signature is forged', () => {
    const bobKeys = DeviceKeys.generate(0, 1);
    const bundle = bobKeys.bundle(1);
    const forged = { ...bundle, signedPrekeySignature: bundle.signedPrekeySignature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    expect(() => initiateSession(DeviceKeys.generate(0, 0).identity, forged)).toThrow(InvalidMessage);
  });

  it('refuses a jump beyond MAX_SKIP', () => {
    const { alice, bob } = pair();
    for (let i = 0; i < 1001; i += 1) alice.encrypt(utf8('skipped'));
    expect(() => bob.decrypt(alice.encrypt(utf8('too far')))).toThrow(InvalidMessage);
  });

  it('survives a save and restore on both sides', () => {
    let { alice, bob } = pair();
    alice.decrypt(bob.encrypt(utf8('r')));
    alice = (alice.constructor as typeof Session).fromDict(JSON.parse(JSON.stringify(alice.toDict())));
    bob = (bob.constructor as typeof Session).fromDict(JSON.parse(JSON.stringify(bob.toDict())));
    expect(text(bob.decrypt(alice.encrypt(utf8('after restore'))))).toBe('after restore');
    expect(text(alice.decrypt(bob.encrypt(utf8('and back'))))).toBe('and back');
  });

  it('enforces the life-cycle table', () => {
    const { alice, bob } = pair();
    alice.close();
    expect(() => alice.encrypt(utf8('x'))).toThrow(CryptoUsageError);
    expect(() => alice.close()).toThrow(CryptoUsageError);
    const fresh = initiateSession(DeviceKeys.generate(0, 0).identity, DeviceKeys.generate(0, 0).bundle());
    expect(fresh.state).toBe('pending');
    expect(bob.state).toBe('established');
  });
});

describe('device keys and bundles', () => {
  it('round-trip through the saved form and the JSON bundle', () => {
    const keys = DeviceKeys.generate(1_700_000_000, 3).withRotatedSignedPrekey(1_700_100_000);
    const restored = DeviceKeys.fromDict(JSON.parse(JSON.stringify(keys.toDict())));
    expect(restored.toDict()).toEqual(keys.toDict());
    expect(bundleToJson(bundleFromJson(bundleToJson(keys.bundle(2))))).toEqual(bundleToJson(keys.bundle(2)));
    expect(restored.findSignedPrekey(0)).not.toBeNull();
  });

  it('bundle parsing is strict', () => {
    const good = loadJson('carnet_e2e_v1.json').bob_bundle;
    expect(() => bundleFromJson({ ...good, extra: 1 })).toThrow(InvalidMessage);
    const { one_time_prekey: _drop, ...half } = good;
    expect(() => bundleFromJson(half)).toThrow(InvalidMessage);
    expect(() => bundleFromJson({ ...good, signed_prekey_id: -1 })).toThrow(InvalidMessage);
  });
});

describe('sender keys', () => {
  it('one ciphertext for every member, in any order, no replay', () => {
    const sender = GroupSender.generate();
    const receivers = [new GroupReceiver(), new GroupReceiver()];
    for (const r of receivers) r.addDistribution(sender.distribution());
    const messages = ['a', 'b', 'c'].map((m) => sender.encrypt(utf8(m)));
    expect(text(receivers[0]!.decrypt(messages[2]!))).toBe('c');
    expect(text(receivers[0]!.decrypt(messages[0]!))).toBe('a');
    expect(text(receivers[1]!.decrypt(messages[1]!))).toBe('b');
    expect(() => receivers[0]!.decrypt(messages[0]!)).toThrow(InvalidMessage);
  });

  it('a rotated key is unknown to a removed member; a forged signature is refused', () => {
    const old = GroupSender.generate();
    const removed = new GroupReceiver();
    removed.addDistribution(old.distribution());
    const fresh = GroupSender.generate();
    expect(() => removed.decrypt(fresh.encrypt(utf8('after rotation')))).toThrow(InvalidMessage);
    const forged = old.encrypt(utf8('x'));
    forged[forged.length - 1]! ^= 1;
    expect(() => removed.decrypt(forged)).toThrow(InvalidMessage);
  });

  it('saved receivers and senders keep working', () => {
    const sender = GroupSender.generate();
    const receiver = new GroupReceiver();
    receiver.addDistribution(sender.distribution());
    const first = sender.encrypt(utf8('1'));
    const restoredSender = GroupSender.fromDict(JSON.parse(JSON.stringify(sender.toDict())));
    const second = restoredSender.encrypt(utf8('2'));
    const restored = GroupReceiver.fromDict(JSON.parse(JSON.stringify(receiver.toDict())));
    expect(text(restored.decrypt(second))).toBe('2');
    expect(text(restored.decrypt(first))).toBe('1');
  });
});

describe('franking and content', () => {
  it('a body that does not match its commitment is refused', () => {
    const franked = frank(encodeBody({ t: 'text', text: 'Bonjour', to: 'p1' }));
    const opened = openFranked(franked.payload, franked.commitment);
    expect(decodeBody(opened.body)).toEqual({ t: 'text', text: 'Bonjour', to: 'p1' });
    const other = frank(utf8('other'));
    expect(() => openFranked(franked.payload, other.commitment)).toThrow(InvalidMessage);
  });

  it('bodies are canonical JSON as the Python SDK writes them', () => {
    expect(text(encodeBody({ t: 'text', text: 'été', to: null }))).toBe('{"t":"text","text":"été","to":null}');
    expect(() => decodeBody(utf8('{"t":"unknown"}'))).toThrow(InvalidMessage);
  });
});

describe('parsers', () => {
  it('refuses truncated, padded, trailing and oversized envelopes', () => {
    const { alice } = pair();
    const envelope = alice.encrypt(utf8('x'));
    for (let cut = 0; cut < envelope.length; cut += 7) {
      expect(() => parseEnvelope(envelope.slice(0, cut))).toThrow(InvalidMessage);
    }
    const trailing = new Uint8Array(envelope.length + 1);
    trailing.set(envelope);
    expect(() => parseEnvelope(trailing)).toThrow(InvalidMessage);
    expect(() => parseEnvelope(new Uint8Array(MAX_ENVELOPE_SIZE + 1))).toThrow(InvalidMessage);
    const wrongVersion = envelope.slice();
    wrongVersion[0] = 2;
    expect(() => parseEnvelope(wrongVersion)).toThrow(InvalidMessage);
  });

  it('base64url is strict and canonical', () => {
    for (let n = 0; n < 70; n += 1) {
      const data = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff);
      expect(toHex(b64urlDecode(b64urlEncode(data)))).toBe(toHex(data));
    }
    expect(() => b64urlDecode('AA==')).toThrow(InvalidMessage);
    expect(() => b64urlDecode('AB')).toThrow(InvalidMessage); // non-zero trailing bits
    expect(() => b64urlDecode('A')).toThrow(InvalidMessage);
    expect(() => b64urlDecode('a+b/')).toThrow(InvalidMessage);
    expect(() => b64urlDecode('AAAA', 4)).toThrow(InvalidMessage);
  });

  it('frames: auth message layout, server frames validated', () => {
    expect(toHex(authMessage('http://x', Uint8Array.of(1, 2)))).toBe(toHex(utf8('carnet-auth-v1\x00http://x\x00\x01\x02')));
    expect(parseServerFrame('{"type":"prekeys_low","v":1,"remaining":3}')).toEqual({ type: 'prekeys_low', remaining: 3 });
    expect(() => parseServerFrame('{"type":"prekeys_low","v":2,"remaining":3}')).toThrow();
    expect(JSON.parse(sendFrame({ clientMsgId: 'c1', conversation: 'k', envelopes: [{ deviceId: 'd', ciphertext: Uint8Array.of(1) }] }))).toEqual({
      type: 'send',
      v: 1,
      client_msg_id: 'c1',
      conversation: 'k',
      envelopes: [{ device_id: 'd', ciphertext: 'AQ' }],
    });
  });
});
