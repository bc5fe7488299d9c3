/**
 * Entry point of the web client (served by Carnet at /app/): loads libsodium, picks
 * the first screen (enrol, or unlock when a vault exists), routes hashes to views
 * and registers the service worker (application shell only).
 */

import './styles.css';

import { sodiumReady } from '../protocol/sodium.ts';
import { App } from './app.ts';
import { h } from './dom.ts';
import { currentLang, setLang, t } from './i18n.ts';
import { Vault } from './vault.ts';
import { enrolView, lostView, unlockView } from './views/access.ts';
import { newConversationView, writeView } from './views/compose.ts';
import { conversationView } from './views/conversation.ts';
import { settingsView } from './views/settings.ts';
import { conversationsView, peopleView } from './views/lists.ts';
import { devicesView, safetyView } from './views/trust.ts';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const app = new App(document.getElementById('status') as HTMLElement);
let cleanup: () => void = () => undefined;

function renderNav(): void {
  const lang = h('button', { type: 'button', lang: currentLang() === 'fr' ? 'en' : 'fr' }, t('navLanguage'));
  lang.addEventListener('click', () => {
    setLang(currentLang() === 'fr' ? 'en' : 'fr');
    void route();
  });
  const items: Node[] = [];
  if (app.device !== null) {
    const lock = h('button', { type: 'button' }, t('navLock'));
    lock.addEventListener('click', () => {
      app.lock();
      void route();
    });
    items.push(
      h('a', { href: '#/' }, t('navConversations')),
      h('a', { href: '#/new' }, t('navNew')),
      h('a', { href: '#/people' }, t('navPeople')),
      h('a', { href: '#/devices' }, t('navDevices')),
      h('a', { href: '#/settings' }, t('navSettings')),
      lock,
    );
  }
  nav.setAttribute('aria-label', t('nav'));
  nav.replaceChildren(...items, lang);
  document.querySelector('.skip')!.textContent = t('skip');
}

function open(conversation: string): void {
  location.hash = `#/c/${encodeURIComponent(conversation)}`;
}

async function route(): Promise<void> {
  cleanup();
  cleanup = () => undefined;
  renderNav();
  const [, page = '', param = ''] = location.hash.split('/');
  const arg = decodeURIComponent(param);
  if (page === 'lost') return lostView(app, main);
  if (app.device === null) {
    const done = () => void route();
    if (await Vault.exists()) unlockView(app, main, done);
    else enrolView(app, main, done);
    return;
  }
  if (page === 'c') {
    if (!app.conversations.has(arg)) await app.refresh();
    cleanup = conversationView(app, main, arg);
  } else if (page === 'new') {
    newConversationView(app, main, open);
  } else if (page === 'write') {
    await writeView(app, main, arg, open);
  } else if (page === 'settings') {
    await settingsView(app, main, () => void route());
  } else if (page === 'people') {
    peopleView(app, main);
  } else if (page === 'devices') {
    await devicesView(app, main, arg || null);
  } else if (page === 'safety') {
    await safetyView(app, main, arg);
  } else {
    conversationsView(app, main);
    cleanup = app.onChange(() => conversationsView(app, main));
  }
}

async function boot(): Promise<void> {
  setLang(currentLang());
  await sodiumReady();
  window.addEventListener('hashchange', () => void route());
  await route();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).catch(() => undefined);
  }
}

void boot();
