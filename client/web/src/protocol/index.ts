/**
 * Carnet's end-to-end protocol in TypeScript (docs/protocol-e2e.md, version 1):
 * pure, no I/O, randomness injectable through `rng` parameters. A second
 * implementation of crypto/ (Python) that interoperates byte for byte.
 *
 * Call `await sodiumReady()` once before anything else.
 */

export { b64urlDecode, b64urlEncode } from './base64url.ts';
export { concat, fromHex, fromUtf8, toHex, utf8 } from './bytes.ts';
export { type Content, type SenderKeyContent, type TextContent, canonicalJson, decodeBody, encodeBody } from './content.ts';
export { type Envelope, MAX_PLAINTEXT_SIZE, parseEnvelope } from './envelope.ts';
export { CarnetCryptoError, CryptoUsageError, InvalidMessage } from './errors.ts';
export { type FrankedMessage, frank, openFranked, serverStamp } from './franking.ts';
export * from './frames.ts';
export {
  type BundleJson,
  DeviceKeys,
  IdentityKeyPair,
  type PreKeyBundle,
  bundleFromJson,
  bundleToJson,
  verifyBundle,
  verifySignedPrekey,
} from './keys.ts';
export { type Rng, defaultRng } from './primitives.ts';
export { SafetyNumber, safetyNumber } from './safety.ts';
export { GroupReceiver, GroupSender } from './senderKeys.ts';
export { type AcceptedSession, Session, type SessionState, acceptSession, initiateSession } from './session.ts';
export { sodiumReady } from './sodium.ts';
