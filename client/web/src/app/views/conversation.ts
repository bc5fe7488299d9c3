/**
 * One conversation: its messages (a live region, so screen readers hear new ones),
 * the compose form, the email-bridge warning, links to devices and safety numbers.
 */

import { BRIDGE_KIND, NoDevices } from '../../client/messenger.ts';
import type { App } from '../app.ts';
import { field, h, show } from '../dom.ts';
import { t } from '../i18n.ts';

export function conversationView(app: App, main: HTMLElement, id: string): () => void {
  const conversation = app.conversations.get(id);
  if (conversation === undefined) {
    show(main, h('h1', {}, t('conversationsTitle')), h('p', {}, h('a', { href: '#/' }, t('back'))));
    return () => undefined;
  }
  const me = app.me!.personId;
  const others = conversation.members.filter((m) => m !== me);
  const list = h('ol', { class: 'messages', 'aria-label': t('messagesLabel'), 'aria-live': 'polite' });
  const warning = h('p', { class: 'warning', hidden: true }, t('bridgeWarning'));
  const render = () => {
    const entries = app.history.get(id) ?? [];
    list.replaceChildren(
      ...entries.map((e) =>
        h(
          'li',
          { class: e.mine ? 'mine' : '' },
          h('span', { class: 'meta' }, `${e.mine ? t('you') : app.name(e.from)} · ${new Date(e.ts).toLocaleTimeString()}`),
          e.text,
        ),
      ),
    );
  };
  const text = h('textarea', { name: 'message', rows: 2, required: true, maxlength: 4000 });
  const button = h('button', { class: 'primary', type: 'submit' }, t('send'));
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'compose' }, h('div', { style: 'flex:1' }, field(t('messageField'), text)), button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    button.disabled = true;
    error.textContent = '';
    app.send(conversation, value).then(
      ({ bridge }) => {
        warning.hidden = !bridge;
        text.value = '';
        button.disabled = false;
        text.focus();
      },
      (e: unknown) => {
        button.disabled = false;
        error.textContent = e instanceof NoDevices ? t('noDevices') : `${t('sendFailed')} ${e instanceof Error ? e.message : String(e)}`;
      },
    );
  });
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  const links =
    conversation.kind === 'direct' && others[0]
      ? h(
          'p',
          {},
          h('a', { href: `#/safety/${encodeURIComponent(others[0])}` }, t('safetyLink')),
          ' · ',
          h('a', { href: `#/devices/${encodeURIComponent(others[0])}` }, t('devicesLink')),
        )
      : null;
  render();
  show(main, h('h1', {}, `${t('conversationWith')} ${app.title(conversation)}`), links, warning, list, form, error);
  void Promise.all(others.map((p) => app.device!.messenger!.devicesOf(p))).then(
    (lists) => (warning.hidden = !lists.flat().some((d) => d.kind === BRIDGE_KIND)),
    () => undefined,
  );
  const last = (app.history.get(id) ?? []).at(-1);
  if (last && last.seq > 0) app.device?.markRead(id, last.seq);
  return app.onChange(render);
}
