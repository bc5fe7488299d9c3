/**
 * The one libsodium instance (libsodium-wrappers-sumo: the sumo build has the
 * incremental HMAC-SHA256 API, needed for keys that are not 32 bytes, and Argon2id).
 * Call {@link sodiumReady} once before using any other function of the module.
 */

import sodium from 'libsodium-wrappers-sumo';

export { sodium };

export async function sodiumReady(): Promise<void> {
  await sodium.ready;
}
