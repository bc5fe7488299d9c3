/** Enrol, unlock and the lost-device page (honest about what cannot be recovered). */

import type { App } from '../app.ts';
import { field, h, show } from '../dom.ts';
import { t } from '../i18n.ts';
import { Vault } from '../vault.ts';

function errorBox(): HTMLParagraphElement {
  return h('p', { class: 'error', role: 'alert' });
}

export function enrolView(app: App, main: HTMLElement, done: () => void): void {
  const code = h('input', { name: 'code', autocomplete: 'one-time-code', required: true, autocapitalize: 'characters' });
  const pass = h('input', { name: 'passphrase', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const confirm = h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const error = errorBox();
  const button = h('button', { class: 'primary', type: 'submit' }, t('enrolButton'));
  const form = h('form', {}, field(t('code'), code), field(t('passphrase'), pass), field(t('passphraseConfirm'), confirm), error, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (pass.value.length < 8) return void (error.textContent = t('passphraseShort'));
    if (pass.value !== confirm.value) return void (error.textContent = t('passphraseMismatch'));
    button.disabled = true;
    error.textContent = '';
    app.say(t('enrolWorking'));
    app.enrol(code.value, pass.value).then(done, (e: unknown) => {
      button.disabled = false;
      error.textContent = `${t('errorGeneric')} ${e instanceof Error ? e.message : String(e)}`;
    });
  });
  show(main, h('h1', {}, t('enrolTitle')), h('p', { class: 'hint' }, t('enrolIntro')), form, lostLink());
}

export function unlockView(app: App, main: HTMLElement, done: () => void): void {
  const pass = h('input', { name: 'passphrase', type: 'password', autocomplete: 'current-password', required: true });
  const error = errorBox();
  const button = h('button', { class: 'primary', type: 'submit' }, t('unlockButton'));
  const form = h('form', {}, field(t('passphrase'), pass), error, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    app.unlock(pass.value).then(done, () => {
      button.disabled = false;
      error.textContent = t('unlockFailed');
      pass.focus();
    });
  });
  show(main, h('h1', {}, t('unlockTitle')), h('p', { class: 'hint' }, t('unlockIntro')), form, lostLink());
}

function lostLink(): HTMLElement {
  return h('p', {}, h('a', { href: '#/lost' }, t('lostLink')));
}

export function lostView(app: App, main: HTMLElement): void {
  const reset = h('button', { class: 'link', type: 'button' }, t('lostReset'));
  reset.addEventListener('click', () => {
    if (!window.confirm(t('lostResetConfirm'))) return;
    app.lock();
    void Vault.erase().then(() => {
      location.hash = '#/';
      location.reload();
    });
  });
  show(
    main,
    h('h1', {}, t('lostTitle')),
    h('p', {}, t('lostBody1')),
    h('p', { class: 'warning' }, t('lostBody2')),
    h('p', {}, t('lostBody3')),
    reset,
    h('p', {}, h('a', { href: '#/' }, t('back'))),
  );
}
