/**
 * One conversation: kind and members, its messages (a live region, so screen readers
 * hear new ones) with delivery/read state as the school allows, attachments,
 * "acknowledge" on announcements to sign (guardians) and who signed (owners),
 * "report" on received messages, the compose form (none for non-owners of an
 * announcement), the email-bridge warning, links to devices and safety numbers.
 * Viewing it sends a `read` frame up to the last message shown.
 */

import type { ConversationInfo } from '../../client/api.ts';
import { BRIDGE_KIND, NoDevices } from '../../client/messenger.ts';
import { MAX_ATTACHMENT_SIZE } from '../../protocol/attachment.ts';
import { type App, type HistoryEntry, attachmentFromJson, describeError } from '../app.ts';
import { field, h, show } from '../dom.ts';
import { kindName, t } from '../i18n.ts';

function deliveryText(app: App, conversation: ConversationInfo, entry: HistoryEntry): string {
  const d = app.book.delivery(conversation, app.me!.personId, entry.seq);
  if (d.state === 'read') return t('stateRead');
  if (d.read > 0) return `${t('stateDelivered')} · ${t('readBy')} ${d.read}/${d.of}`;
  return d.state === 'delivered' ? t('stateDelivered') : t('stateSent');
}

function attachmentLink(app: App, entry: HistoryEntry): HTMLElement | null {
  if (!entry.attachment) return null;
  const ref = attachmentFromJson(entry.attachment);
  const button = h('button', { type: 'button', class: 'link', 'aria-label': `${t('download')} ${ref.name}` }, `📎 ${ref.name} (${Math.ceil(ref.size / 1024)} Ko)`);
  button.addEventListener('click', () => {
    button.disabled = true;
    app.device!.fetchFile(ref).then(
      (bytes) => {
        const url = URL.createObjectURL(new Blob([bytes as unknown as BlobPart], { type: ref.type }));
        const a = h('a', { href: url, download: ref.name });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
        button.disabled = false;
      },
      () => {
        button.disabled = false;
        app.say(t('attachmentBroken'));
      },
    );
  });
  return h('span', { class: 'attachment' }, button);
}

async function acknowledgementsPanel(app: App, conversation: string, seq: number, out: HTMLElement): Promise<void> {
  const result = await app.api.acknowledgements(app.device!.token, conversation, seq);
  const done = result.acknowledged.map((a) => app.name(a.person_id));
  const pending = result.pending.map((p) => app.name(p));
  out.replaceChildren(
    h('span', { class: 'acks-done' }, `${t('ackDone')} ${done.join(', ') || t('ackNobody')}`),
    h('br'),
    h('span', { class: 'acks-pending' }, `${t('ackPending')} ${pending.join(', ') || t('ackNobody')}`),
  );
}

export function conversationView(app: App, main: HTMLElement, id: string): () => void {
  const conversation = app.conversations.get(id);
  if (conversation === undefined) {
    show(main, h('h1', {}, t('conversationsTitle')), h('p', {}, h('a', { href: '#/' }, t('back'))));
    return () => undefined;
  }
  const me = app.me!.personId;
  const others = conversation.members.filter((m) => m !== me);
  const owner = conversation.owners.includes(me);
  const announcement = conversation.kind === 'announcement';
  const list = h('ol', { class: 'messages', 'aria-label': t('messagesLabel'), 'aria-live': 'polite' });
  const warning = h('p', { class: 'warning', hidden: true }, t('bridgeWarning'));
  const error = h('p', { class: 'error', role: 'alert' });

  const ackPanels = new Map<number, HTMLElement>(); // kept across re-renders
  const entryView = (e: HistoryEntry): HTMLElement => {
    const meta = `${e.mine ? t('you') : app.name(e.from)} · ${new Date(e.ts).toLocaleTimeString()}`;
    const extras: (HTMLElement | string | null)[] = [];
    if (e.mine) {
      extras.push(h('span', { class: 'state' }, deliveryText(app, conversation, e)));
      if (e.quietUntil) extras.push(h('span', { class: 'state' }, `${t('silentUntil')} ${new Date(e.quietUntil).toLocaleTimeString()}`));
      if (announcement && conversation.acknowledge && owner) {
        const panel = ackPanels.get(e.seq) ?? h('span', { class: 'acks', 'aria-live': 'polite' });
        ackPanels.set(e.seq, panel);
        const see = h('button', { type: 'button', class: 'link' }, t('ackStatus'));
        see.addEventListener('click', () => void acknowledgementsPanel(app, id, e.seq, panel).catch((x: unknown) => (error.textContent = describeError(x))));
        extras.push(h('span', { class: 'actions' }, see), panel);
      }
    } else {
      if (e.silent) extras.push(h('span', { class: 'state' }, t('silentReceived')));
      const actions = h('span', { class: 'actions' });
      if (announcement && conversation.acknowledge && !owner) {
        if (e.acknowledged) actions.append(h('span', { class: 'ok' }, `✔ ${t('acknowledged')}`));
        else {
          const ack = h('button', { type: 'button', class: 'primary small' }, t('acknowledgeButton'));
          ack.addEventListener('click', () => {
            ack.disabled = true;
            app.acknowledge(id, e).catch((x: unknown) => {
              ack.disabled = false;
              error.textContent = describeError(x);
            });
          });
          actions.append(h('span', { class: 'tag' }, t('toAcknowledge')), ' ', ack);
        }
      }
      if (e.evidence && !e.reported) {
        const report = h('button', { type: 'button', class: 'link', 'aria-label': `${t('report')} — ${meta}` }, t('report'));
        report.addEventListener('click', () => {
          if (!window.confirm(t('reportConfirm'))) return;
          report.disabled = true;
          app.report(id, e).then(
            (filed) => app.say(`${t('reportFiled')} ${filed.proof === 'verified' ? t('reportVerified') : t('reportUnverified')}`),
            (x: unknown) => {
              report.disabled = false;
              error.textContent = describeError(x);
            },
          );
        });
        actions.append(' ', report);
      } else if (e.reported) {
        actions.append(' ', h('span', { class: 'state' }, t('reportFiled')));
      }
      extras.push(actions);
    }
    return h('li', { class: e.mine ? 'mine' : '' }, h('span', { class: 'meta' }, meta), e.text, attachmentLink(app, e), ...extras);
  };

  const render = () => {
    list.replaceChildren(...(app.history.get(id) ?? []).map(entryView));
    const last = (app.history.get(id) ?? []).filter((e) => !e.mine).at(-1);
    if (last && last.seq > 0 && document.visibilityState !== 'hidden') app.device?.markRead(id, last.seq);
  };

  let form: HTMLElement;
  if (announcement && !owner) {
    form = h('p', { class: 'hint' }, t('oneWay'));
  } else {
    const text = h('textarea', { name: 'message', rows: 2, maxlength: 4000 });
    const file = h('input', { type: 'file', name: 'file' });
    const button = h('button', { class: 'primary', type: 'submit' }, t('send'));
    const compose = h('form', { class: 'compose' }, h('div', { class: 'grow' }, field(t('messageField'), text), field(t('attach'), file)), button);
    compose.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = text.value.trim();
      const chosen = file.files?.[0] ?? null;
      if (!value && !chosen) return;
      if (chosen && chosen.size > MAX_ATTACHMENT_SIZE) return void (error.textContent = t('attachmentTooLarge'));
      button.disabled = true;
      error.textContent = '';
      app.send(conversation, value, chosen).then(
        ({ bridge }) => {
          warning.hidden = !bridge;
          text.value = '';
          file.value = '';
          button.disabled = false;
          text.focus();
        },
        (e: unknown) => {
          button.disabled = false;
          error.textContent = e instanceof NoDevices ? t('noDevices') : `${t('sendFailed')} ${describeError(e)}`;
        },
      );
    });
    text.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        compose.requestSubmit();
      }
    });
    form = compose;
  }
  const links =
    conversation.kind === 'direct' && others[0]
      ? h(
          'p',
          {},
          h('a', { href: `#/safety/${encodeURIComponent(others[0])}` }, t('safetyLink')),
          ' · ',
          h('a', { href: `#/devices/${encodeURIComponent(others[0])}` }, t('devicesLink')),
        )
      : h('p', { class: 'hint members' }, `${kindName(conversation.kind)}${conversation.acknowledge ? ` · ${t('toAcknowledge')}` : ''} — ${t('membersLabel')} ${conversation.members.map((m) => app.name(m)).join(', ')}`);
  const heading = conversation.kind === 'direct' ? `${t('conversationWith')} ${app.title(conversation)}` : `${kindName(conversation.kind)} : ${app.title(conversation)}`;
  render();
  show(main, h('h1', {}, heading), links, warning, list, form, error);
  void Promise.all(others.map((p) => app.device!.messenger!.devicesOf(p))).then(
    (lists) => (warning.hidden = !lists.flat().some((d) => d.kind === BRIDGE_KIND)),
    () => undefined,
  );
  void app.loadReceipts(id).catch(() => undefined);
  // Read receipts only for what was on screen: a hidden tab marks read when shown again.
  const visible = () => document.visibilityState === 'visible' && render();
  document.addEventListener('visibilitychange', visible);
  const stop = app.onChange(render);
  return () => {
    stop();
    document.removeEventListener('visibilitychange', visible);
  };
}
