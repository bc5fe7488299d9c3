/**
 * Known answers: tests/vectors/carnet_e2e_v1.json must be reproduced exactly from the
 * same deterministic rng, in the same order of draws, as
 * tests/crypto/crypto_testkit.py:build_known_answer_vectors; the stored envelopes must
 * decrypt with the stored keys; the hex examples of docs/protocol-e2e.md §11 must match.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { parseEnvelope } from '../src/protocol/envelope.ts';
import { frank, openFranked, serverStamp } from '../src/protocol/franking.ts';
import { expandMessageKey, kdfCk, kdfRk, x3dhKdf } from '../src/protocol/kdf.ts';
import { DeviceKeys, bundleFromJson, bundleToJson } from '../src/protocol/keys.ts';
import { randomBytes } from '../src/protocol/primitives.ts';
import { safetyNumber } from '../src/protocol/safety.ts';
import { GroupReceiver, GroupSender } from '../src/protocol/senderKeys.ts';
import { acceptSession, initiateSession } from '../src/protocol/session.ts';
import { sodiumReady } from '../src/protocol/sodium.ts';
import { REPO, deterministicRng, hex, loadJson, toHex } from './helpers.ts';

const VECTORS = loadJson('carnet_e2e_v1.json');
const utf8 = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  await sodiumReady();
});

function build(): Record<string, any> {
  const rng = deterministicRng(utf8('carnet-kat-v1'));
  const [rk, dh, ck, mk, km] = [32, 32, 32, 32, 128].map((n) => randomBytes(rng, n)) as Uint8Array[];
  const alice = DeviceKeys.generate(1_760_000_000, 1, rng);
  const bob = DeviceKeys.generate(1_760_000_000, 1, rng);
  const session = initiateSession(alice.identity, bob.bundle(1), rng);
  const prekeyMessage = session.encrypt(utf8('Bonjour Madame Martin'));
  const accepted = acceptSession(bob, prekeyMessage, rng);
  const ratchetMessage = accepted.session.encrypt(utf8('Bonjour !'));
  const sender = GroupSender.generate(rng);
  const distribution = sender.distribution();
  const groupMessage = sender.encrypt(utf8('Reunion parents-professeurs jeudi 18h'));
  const franked = frank(utf8('Bonjour Madame Martin'), rng);
  const serverKey = randomBytes(rng, 32);
  const stamp = serverStamp(serverKey, 1, franked.commitment, 'device-alice', 'conv-42', 1_760_000_000_123);
  const number = safetyNumber(alice.identity.publicKey, 'alice', bob.identity.publicKey, 'bob');
  const [newRk, chain] = kdfRk(rk!, dh!);
  const [nextCk, messageKey] = kdfCk(ck!);
  const [aeadKey, nonce] = expandMessageKey(mk!);
  return {
    description: 'Carnet E2E v1 known answers; see docs/protocol-e2e.md §9',
    kdf: {
      kdf_rk: { rk: toHex(rk!), dh: toHex(dh!), new_rk: toHex(newRk), ck: toHex(chain) },
      kdf_ck: { ck: toHex(ck!), next_ck: toHex(nextCk), mk: toHex(messageKey) },
      message_key: { mk: toHex(mk!), key: toHex(aeadKey), nonce: toHex(nonce) },
      x3dh_kdf: { km: toHex(km!), sk: toHex(x3dhKdf(km!)) },
    },
    alice_keys: alice.toDict(),
    bob_keys: bob.toDict(),
    bob_bundle: bundleToJson(bob.bundle(1)),
    prekey_message: toHex(prekeyMessage),
    ratchet_message: toHex(ratchetMessage),
    sender_key_distribution: toHex(distribution),
    group_message: toHex(groupMessage),
    franking: {
      payload: toHex(franked.payload),
      commitment: toHex(franked.commitment),
      server_key_id: 1,
      server_key: toHex(serverKey),
      sender_device_id: 'device-alice',
      conversation_id: 'conv-42',
      timestamp_ms: 1_760_000_000_123,
      stamp: toHex(stamp),
    },
    safety_number: { alice_id: 'alice', bob_id: 'bob', digits: number.digits, qr_alice: toHex(number.qrPayload()) },
  };
}

it('reproduces the vector file exactly', () => {
  expect(build()).toEqual(VECTORS);
});

it('reproduces the KDF vectors', () => {
  const v = VECTORS.kdf;
  expect(kdfRk(hex(v.kdf_rk.rk), hex(v.kdf_rk.dh)).map(toHex)).toEqual([v.kdf_rk.new_rk, v.kdf_rk.ck]);
  expect(kdfCk(hex(v.kdf_ck.ck)).map(toHex)).toEqual([v.kdf_ck.next_ck, v.kdf_ck.mk]);
  expect(expandMessageKey(hex(v.message_key.mk)).map(toHex)).toEqual([v.message_key.key, v.message_key.nonce]);
  expect(toHex(x3dhKdf(hex(v.x3dh_kdf.km)))).toBe(v.x3dh_kdf.sk);
});

it('decrypts the stored envelopes with the stored keys', () => {
  const bob = DeviceKeys.fromDict(VECTORS.bob_keys);
  const alice = DeviceKeys.fromDict(VECTORS.alice_keys);
  expect(bundleToJson(bundleFromJson(VECTORS.bob_bundle))).toEqual(bundleToJson(bob.bundle(1)));
  const accepted = acceptSession(bob, hex(VECTORS.prekey_message));
  expect(new TextDecoder().decode(accepted.plaintext)).toBe('Bonjour Madame Martin');
  expect(accepted.usedOneTimePrekeyId).toBe(1);
  expect(toHex(accepted.session.peerIdentityKey)).toBe(toHex(alice.identity.publicKey));
  const receiver = new GroupReceiver();
  receiver.addDistribution(hex(VECTORS.sender_key_distribution));
  expect(new TextDecoder().decode(receiver.decrypt(hex(VECTORS.group_message)))).toBe('Reunion parents-professeurs jeudi 18h');
  const f = VECTORS.franking;
  const opened = openFranked(hex(f.payload), hex(f.commitment));
  expect(new TextDecoder().decode(opened.body)).toBe('Bonjour Madame Martin');
  expect(toHex(serverStamp(hex(f.server_key), f.server_key_id, hex(f.commitment), f.sender_device_id, f.conversation_id, f.timestamp_ms))).toBe(f.stamp);
  const number = safetyNumber(alice.identity.publicKey, 'alice', bob.identity.publicKey, 'bob');
  expect(number.formatted()).toBe('16352 60454 32114 18490 16531 80507 47439 02050 11873 60537 68340 44425');
  expect(number.matchesQr(safetyNumber(bob.identity.publicKey, 'bob', alice.identity.publicKey, 'alice').qrPayload())).toBe(true);
});

describe('docs/protocol-e2e.md §11', () => {
  const doc = readFileSync(resolve(REPO, 'docs/protocol-e2e.md'), 'utf8');
  const docVector = (name: string) => {
    const match = new RegExp(`<!-- vector:${name} -->\\n\`\`\`hex\\n([0-9a-f\\n]+)\`\`\``).exec(doc);
    expect(match, name).not.toBeNull();
    return match![1]!.replace(/\n/g, '');
  };

  it.each(['prekey_message', 'ratchet_message', 'group_message', 'sender_key_distribution'])('%s matches', (name) => {
    expect(docVector(name)).toBe(VECTORS[name]);
  });

  it('field table matches our parser', () => {
    const parsed = parseEnvelope(hex(docVector('prekey_message')));
    if (parsed.type !== 'prekey') throw new Error('not a prekey message');
    for (const value of [parsed.identityKey, parsed.ephemeralKey, parsed.message.header.ratchetKey, parsed.message.ciphertext]) {
      expect(doc).toContain(`\`${toHex(value)}\``);
    }
    expect([parsed.signedPrekeyId, parsed.oneTimePrekeyId]).toEqual([0, 1]);
  });
});
