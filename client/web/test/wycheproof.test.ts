/**
 * Wycheproof vectors (tests/vectors/wycheproof/, the files the Python side uses, read
 * in place) against the primitives of src/protocol/primitives.ts, with the same
 * decisions as tests/crypto/test_wycheproof.py: an all-zero X25519 output must be
 * rejected; twist points and non-canonical encodings give the expected output.
 */

import { beforeAll, describe, expect, it } from 'vitest';

import { CarnetCryptoError, InvalidMessage } from '../src/protocol/errors.ts';
import {
  aeadDecrypt,
  aeadEncrypt,
  constantTimeEqual,
  ed25519KeyPairFromSeed,
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  hmacSha256,
  x25519,
} from '../src/protocol/primitives.ts';
import { sodiumReady } from '../src/protocol/sodium.ts';
import { hex, loadJson, toHex } from './helpers.ts';

type Case = [any, any];

function cases(name: string): Case[] {
  const data = loadJson(`wycheproof/${name}`);
  return data.testGroups.flatMap((group: any) => group.tests.map((test: any) => [group, test] as Case));
}

const X25519 = cases('x25519_test.json');
const ED25519 = cases('ed25519_test.json');
const XCHACHA = cases('xchacha20_poly1305_test.json');
const HKDF = cases('hkdf_sha256_test.json');
const HMAC = cases('hmac_sha256_test.json');

beforeAll(async () => {
  await sodiumReady();
});

it('reads the same vector files as the Python suite', () => {
  expect([X25519.length, ED25519.length, XCHACHA.length, HKDF.length, HMAC.length]).toEqual([518, 151, 315, 86, 174]);
});

describe('x25519', () => {
  it.each(X25519.map(([, t]) => [t.tcId, t]))('tc%i', (_id, test: any) => {
    const shared = hex(test.shared);
    if (shared.every((b) => b === 0)) {
      expect(test.result).toBe('acceptable');
      expect(() => x25519(hex(test.private), hex(test.public))).toThrow(InvalidMessage);
    } else {
      expect(['valid', 'acceptable']).toContain(test.result);
      expect(toHex(x25519(hex(test.private), hex(test.public)))).toBe(test.shared);
    }
  });
});

describe('ed25519', () => {
  it.each(ED25519.map(([g, t]) => [t.tcId, g, t]))('tc%i', (_id, group: any, test: any) => {
    const verify = () => ed25519Verify(hex(group.publicKey.pk), hex(test.msg), hex(test.sig));
    if (test.result === 'valid') verify();
    else expect(verify).toThrow(InvalidMessage);
  });

  it('signs RFC 8032 test 1', () => {
    const pair = ed25519KeyPairFromSeed(hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
    expect(toHex(pair.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(toHex(ed25519Sign(pair.secretKey, new Uint8Array(0)))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });
});

describe('xchacha20-poly1305', () => {
  it.each(XCHACHA.map(([, t]) => [t.tcId, t]))('tc%i', (_id, test: any) => {
    const key = hex(test.key);
    const nonce = hex(test.iv);
    const aad = hex(test.aad);
    const sealed = hex(test.ct + test.tag);
    if (test.result === 'valid') {
      expect(toHex(aeadEncrypt(key, nonce, hex(test.msg), aad))).toBe(test.ct + test.tag);
      expect(toHex(aeadDecrypt(key, nonce, sealed, aad))).toBe(test.msg);
    } else {
      expect(() => aeadDecrypt(key, nonce, sealed, aad)).toThrow(CarnetCryptoError);
    }
  });
});

describe('hkdf-sha256', () => {
  it.each(HKDF.map(([, t]) => [t.tcId, t]))('tc%i', (_id, test: any) => {
    const run = () => hkdfSha256(hex(test.ikm), hex(test.salt), hex(test.info), test.size);
    if (test.result === 'valid') expect(toHex(run())).toBe(test.okm);
    else expect(run).toThrow(CarnetCryptoError);
  });
});

describe('hmac-sha256', () => {
  it.each(HMAC.map(([g, t]) => [t.tcId, g, t]))('tc%i', (_id, group: any, test: any) => {
    // Truncated-tag groups: compare our full tag's prefix, as a verifier of that size would.
    const ours = hmacSha256(hex(test.key), hex(test.msg)).slice(0, group.tagSize / 8);
    expect(constantTimeEqual(ours, hex(test.tag))).toBe(test.result === 'valid');
  });
});
