/**
 * Settings: the school's quiet hours (right to disconnect, Code du travail
 * art. L2242-17; docs/moderation.md "Quiet hours"), notifications (never with the
 * message's content), language, and the connection with a manual reconnect.
 */

import type { App } from '../app.ts';
import { describeError } from '../app.ts';
import { h, show } from '../dom.ts';
import { currentLang, fill, setLang, t } from '../i18n.ts';

export async function settingsView(app: App, main: HTMLElement, rerender: () => void): Promise<void> {
  const quiet = h('p', {}, t('quietDefault'));
  const uai = [...app.conversations.values()].find((c) => c.uai)?.uai;
  if (app.hosts && uai) {
    try {
      const q = await app.api.quietHours(app.device!.token, uai);
      quiet.textContent = `${fill(t('quietWindow'), { start: q.start.slice(0, 5), end: q.end.slice(0, 5) })}${q.weekends ? ` ${t('quietWeekends')}` : ''}.`;
    } catch {
      // Not readable for this role: the defaults are shown.
    }
  }
  const notify = h('input', { type: 'checkbox', id: 'notify', checked: app.notificationsOn });
  const notifyError = h('p', { class: 'error', role: 'alert' });
  notify.addEventListener('change', () => {
    void app.setNotifications(notify.checked).then((on) => {
      notify.checked = on;
      notifyError.textContent = on || !notify.checked ? '' : t('notificationsDenied');
    });
  });
  const lang = h('button', { type: 'button', class: 'link' }, t('navLanguage'));
  lang.addEventListener('click', () => {
    setLang(currentLang() === 'fr' ? 'en' : 'fr');
    rerender();
  });
  const status = h('p', { role: 'status' }, app.offline ? t('disconnected') : t('connected'));
  const reconnect = h('button', { type: 'button', class: 'primary' }, t('reconnect'));
  reconnect.addEventListener('click', () => {
    reconnect.disabled = true;
    app.reconnect().then(
      () => {
        status.textContent = t('connected');
        reconnect.disabled = false;
      },
      (e: unknown) => {
        status.textContent = describeError(e);
        reconnect.disabled = false;
      },
    );
  });
  show(
    main,
    h('h1', {}, t('settingsTitle')),
    h('h2', {}, t('quietTitle')),
    h('p', { class: 'hint' }, t('quietBody')),
    quiet,
    h('h2', {}, t('notificationsTitle')),
    h('div', { class: 'choice' }, notify, h('label', { for: 'notify' }, t('notificationsToggle'))),
    notifyError,
    h('h2', {}, t('languageTitle')),
    lang,
    h('h2', {}, t('connectionTitle')),
    status,
    app.offline ? reconnect : null,
  );
}
