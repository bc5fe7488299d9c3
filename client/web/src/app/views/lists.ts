/** The conversation list (with unread counts) and the school directory. */

import { type App, describeError } from '../app.ts';
import { h, show } from '../dom.ts';
import { kindName, role, t } from '../i18n.ts';

export function conversationsView(app: App, main: HTMLElement): void {
  const items = [...app.conversations.values()].map((c) => {
    const unread = c.unread ?? 0;
    return h(
      'li',
      {},
      h('a', { href: `#/c/${encodeURIComponent(c.id)}` }, app.title(c)),
      c.kind !== 'direct' ? h('span', { class: 'role' }, kindName(c.kind)) : null,
      unread > 0 ? h('span', { class: 'badge' }, `${unread} ${t('unread')}`) : null,
    );
  });
  show(
    main,
    h('h1', {}, t('conversationsTitle')),
    items.length ? h('ul', { class: 'list', 'aria-label': t('conversationsTitle') }, ...items) : h('p', { class: 'hint' }, t('noConversations')),
  );
}

export function peopleView(app: App, main: HTMLElement): void {
  const me = app.me?.personId;
  const items = [...app.people.values()]
    .filter((p) => p.person_id !== me)
    .map((p) => {
      const write = h('button', { class: 'link', type: 'button', 'aria-label': `${t('write')} — ${p.name}` }, t('write'));
      write.addEventListener('click', () => {
        write.disabled = true;
        app.direct(p.person_id).then(
          (c) => (location.hash = `#/c/${encodeURIComponent(c.id)}`),
          (e: unknown) => {
            write.disabled = false;
            app.say(describeError(e));
          },
        );
      });
      return h('li', {}, h('span', {}, p.name, ' ', h('span', { class: 'role' }, `(${role(p.role)})`)), write);
    });
  show(main, h('h1', {}, t('peopleTitle')), h('ul', { class: 'list', 'aria-label': t('peopleTitle') }, ...items));
}
