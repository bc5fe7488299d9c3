/**
 * The device's secrets at rest in IndexedDB, wrapped with a key derived from the
 * user's passphrase: Argon2id (libsodium crypto_pwhash, "interactive" limits, random
 * 16-byte salt) → 32-byte key → XChaCha20-Poly1305 over the JSON state with a random
 * nonce and the associated data "carnet-vault-v1". Nothing secret is stored in clear;
 * a forgotten passphrase cannot be recovered (see the lost-device page).
 */

import { sodium } from '../protocol/sodium.ts';

const DB = 'carnet';
const STORE = 'vault';
const RECORD = 'device';
const AD = new TextEncoder().encode('carnet-vault-v1');

interface Sealed {
  v: 1;
  salt: Uint8Array;
  opslimit: number;
  memlimit: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run<T>(mode: IDBTransactionMode, action: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const request = action(db.transaction(STORE, mode).objectStore(STORE));
      request.onsuccess = () => resolve(request.result as T);
      request.onerror = () => reject(request.error);
    });
  } finally {
    db.close();
  }
}

export class VaultLocked extends Error {}

export class Vault {
  private constructor(
    private readonly key: Uint8Array,
    private readonly salt: Uint8Array,
    private readonly opslimit: number,
    private readonly memlimit: number,
  ) {}

  static async exists(): Promise<boolean> {
    return (await run<Sealed | undefined>('readonly', (s) => s.get(RECORD))) !== undefined;
  }

  static async erase(): Promise<void> {
    await run('readwrite', (s) => s.delete(RECORD));
  }

  /** A new vault for a new passphrase (nothing written until {@link save}). */
  static create(passphrase: string): Vault {
    const salt = sodium.randombytes_buf(sodium.crypto_pwhash_SALTBYTES);
    const opslimit = sodium.crypto_pwhash_OPSLIMIT_INTERACTIVE;
    const memlimit = sodium.crypto_pwhash_MEMLIMIT_INTERACTIVE;
    return new Vault(Vault.derive(passphrase, salt, opslimit, memlimit), salt, opslimit, memlimit);
  }

  private static derive(passphrase: string, salt: Uint8Array, opslimit: number, memlimit: number): Uint8Array {
    return sodium.crypto_pwhash(32, passphrase, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
  }

  /** Unlock the stored vault. @throws VaultLocked wrong passphrase or nothing stored */
  static async unlock(passphrase: string): Promise<{ vault: Vault; data: unknown }> {
    const sealed = await run<Sealed | undefined>('readonly', (s) => s.get(RECORD));
    if (sealed === undefined) throw new VaultLocked('no vault');
    const key = Vault.derive(passphrase, sealed.salt, sealed.opslimit, sealed.memlimit);
    let plaintext: Uint8Array;
    try {
      plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.ciphertext, AD, sealed.nonce, key);
    } catch {
      throw new VaultLocked('wrong passphrase');
    }
    return { vault: new Vault(key, sealed.salt, sealed.opslimit, sealed.memlimit), data: JSON.parse(new TextDecoder().decode(plaintext)) };
  }

  async save(data: unknown): Promise<void> {
    const nonce = sodium.randombytes_buf(24);
    const plaintext = new TextEncoder().encode(JSON.stringify(data));
    const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, AD, null, nonce, this.key);
    const sealed: Sealed = { v: 1, salt: this.salt, opslimit: this.opslimit, memlimit: this.memlimit, nonce, ciphertext };
    await run('readwrite', (s) => s.put(sealed, RECORD));
  }
}
