/**
 * Carnet's REST API as the web client uses it (server/enrol.py, server/devices_api.py):
 * enrolment with a one-time code, prekey publication, people's devices with key
 * bundles, the school directory. Errors are the documented `{"error": {code, message}}`
 * bodies (protocol/errors.py), surfaced as {@link ApiError} with the code kept.
 */

import { b64urlEncode } from '../protocol/base64url.ts';
import type { BundleJson } from '../protocol/keys.ts';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Enrolment {
  device_id: string;
  person_id: string;
  kind: string;
}

export interface Person {
  person_id: string;
  name: string;
  role: string;
}

export interface RemoteDevice {
  device_id: string;
  /** `app`, or `email-bridge`: not end to end beyond the school's server. */
  kind: string;
  identity_key: string;
  bundle: BundleJson | null;
}

export type ConversationKind = 'direct' | 'group' | 'class' | 'announcement';

/** server/conversations_api.py `conversation_json`. */
export interface ConversationInfo {
  id: string;
  kind: ConversationKind;
  title: string;
  members: string[];
  owners: string[];
  seq: number;
  class_id: string | null;
  acknowledge: boolean;
  created_by: string;
  acked_seq?: number;
  unread?: number;
}

export interface NewConversation {
  kind: ConversationKind;
  members?: string[];
  title?: string;
  class_id?: string;
  acknowledge?: boolean;
}

export interface PrekeyUpload {
  signed_prekey?: { id: number; key: Uint8Array; signature: Uint8Array };
  one_time_prekeys: { id: number; key: Uint8Array }[];
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class HttpApi {
  constructor(
    readonly baseUrl: string,
    private readonly fetchFn: FetchLike = (input, init) => fetch(input, init),
  ) {}

  get wsUrl(): string {
    return `${this.baseUrl.replace(/^http/, 'ws')}/v1/ws`;
  }

  private async call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await this.fetchFn(`${this.baseUrl}${path}`, init);
    const data: unknown = await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(error?.code ?? 'internal', error?.message ?? `HTTP ${response.status}`, response.status);
    }
    return data as T;
  }

  enrol(code: string, identityKey: Uint8Array): Promise<Enrolment> {
    return this.call('POST', '/v1/enrol', null, { code, identity_key: b64urlEncode(identityKey) });
  }

  putPrekeys(token: string, upload: PrekeyUpload): Promise<{ prekeys_left: number }> {
    const body: Record<string, unknown> = {
      one_time_prekeys: upload.one_time_prekeys.map((k) => ({ id: k.id, key: b64urlEncode(k.key) })),
    };
    if (upload.signed_prekey) {
      const s = upload.signed_prekey;
      body.signed_prekey = { id: s.id, key: b64urlEncode(s.key), signature: b64urlEncode(s.signature) };
    }
    return this.call('PUT', '/v1/devices/me/prekeys', token, body);
  }

  /** A person's devices; `bundles` = 'all', 'none' (consumes no prekey) or device ids. */
  async personDevices(token: string, personId: string, bundles: 'all' | 'none' | string[] = 'all'): Promise<RemoteDevice[]> {
    const query = bundles === 'all' ? '' : `?bundles=${encodeURIComponent(bundles === 'none' ? 'none' : bundles.join(','))}`;
    const data = await this.call<{ devices: RemoteDevice[] }>('GET', `/v1/people/${encodeURIComponent(personId)}/devices${query}`, token);
    return data.devices;
  }

  /** Create a conversation; a direct one is found again if it exists. */
  createConversation(token: string, conversation: NewConversation): Promise<ConversationInfo> {
    return this.call('POST', '/v1/conversations', token, conversation);
  }

  async conversations(token: string): Promise<ConversationInfo[]> {
    const data = await this.call<{ conversations: ConversationInfo[] }>('GET', '/v1/conversations', token);
    return data.conversations;
  }

  conversation(token: string, id: string): Promise<ConversationInfo> {
    return this.call('GET', `/v1/conversations/${encodeURIComponent(id)}`, token);
  }

  async directory(token: string): Promise<Person[]> {
    const data = await this.call<{ people: Person[] }>('GET', '/v1/directory', token);
    return data.people;
  }
}
