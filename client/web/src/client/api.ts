/**
 * Carnet's REST API as the web client uses it (docs/protocol.md §5): enrolment with a
 * one-time code, prekey publication, people's devices with key bundles, the school
 * directory, conversations and members, receipts, signed acknowledgements (§5.3),
 * encrypted attachments, reports with franking evidence (docs/moderation.md
 * "Reports") and the school policy (adults only). Errors are the documented
 * `{"error": {code, message, reason?, retry_after?}}` bodies (protocol/errors.py),
 * surfaced as {@link ApiError} with the code and the moderation reason kept.
 */

import { b64urlEncode } from '../protocol/base64url.ts';
import type { BundleJson } from '../protocol/keys.ts';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** docs/moderation.md reason code of a `not_allowed` / `rate_limited` refusal. */
    readonly reason: string | null = null,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Receipts {
  [personId: string]: { delivered?: number; read?: number };
}

export interface Acknowledgements {
  seq: number;
  acknowledged: { person_id: string; device_id: string; signature: string; at: string }[];
  pending: string[];
}

/** `POST /v1/reports` body (server/moderation_reports.py `ReportIn`), binary fields base64url. */
export interface ReportRequest {
  conversation: string;
  seq: number;
  plaintext: string;
  franking_key: string;
  commitment: string;
  stamp: string;
  sender_device: string;
  ts: number;
}

export interface ReportFiled {
  id: string;
  proof: 'verified' | 'unverified';
  state: string;
}

export interface QuietHours {
  start: string;
  end: string;
  weekends: boolean;
  roles: string[];
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
  uai?: string;
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
    return HttpApi.answer<T>(response);
  }

  private static async answer<T>(response: Response): Promise<T> {
    const data: unknown = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const error = (data as { error?: { code?: string; message?: string; reason?: string; retry_after?: number } } | null)?.error;
      throw new ApiError(
        error?.code ?? 'internal',
        error?.message ?? `HTTP ${response.status}`,
        response.status,
        error?.reason ?? null,
        error?.retry_after ?? null,
      );
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

  addMember(token: string, conversation: string, personId: string): Promise<ConversationInfo> {
    return this.call('POST', `/v1/conversations/${encodeURIComponent(conversation)}/members`, token, { person_id: personId });
  }

  async removeMember(token: string, conversation: string, personId: string): Promise<void> {
    await this.call('DELETE', `/v1/conversations/${encodeURIComponent(conversation)}/members/${encodeURIComponent(personId)}`, token);
  }

  async receipts(token: string, conversation: string): Promise<Receipts> {
    const data = await this.call<{ receipts: Receipts }>('GET', `/v1/conversations/${encodeURIComponent(conversation)}/receipts`, token);
    return data.receipts;
  }

  /** A guardian's signed acknowledgement (docs/protocol.md §5.3). */
  acknowledge(token: string, conversation: string, body: { seq: number; signature: string }): Promise<{ acknowledged: boolean; new: boolean }> {
    return this.call('POST', `/v1/conversations/${encodeURIComponent(conversation)}/acknowledgements`, token, body);
  }

  /** Owners: who acknowledged message `seq` and who has not. */
  acknowledgements(token: string, conversation: string, seq: number): Promise<Acknowledgements> {
    return this.call('GET', `/v1/conversations/${encodeURIComponent(conversation)}/acknowledgements?seq=${seq}`, token);
  }

  /** Upload an already encrypted blob (src/protocol/attachment.ts). */
  async uploadAttachment(token: string, conversation: string, blob: Uint8Array): Promise<{ attachment_id: string; length: number }> {
    const response = await this.fetchFn(`${this.baseUrl}/v1/conversations/${encodeURIComponent(conversation)}/attachments`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream', Accept: 'application/json' },
      body: blob as unknown as BodyInit,
    });
    return HttpApi.answer(response);
  }

  async downloadAttachment(token: string, attachmentId: string): Promise<Uint8Array> {
    const response = await this.fetchFn(`${this.baseUrl}/v1/attachments/${encodeURIComponent(attachmentId)}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!response.ok) return HttpApi.answer(response);
    return new Uint8Array(await response.arrayBuffer());
  }

  report(token: string, report: ReportRequest): Promise<ReportFiled> {
    return this.call('POST', '/v1/reports', token, report);
  }

  /** The school's policy (`GET /v1/schools/{uai}/policy`; school adults only). */
  async quietHours(token: string, uai: string): Promise<QuietHours> {
    const data = await this.call<{ policy: { quiet_hours: QuietHours } }>('GET', `/v1/schools/${encodeURIComponent(uai)}/policy`, token);
    return data.policy.quiet_hours;
  }
}
