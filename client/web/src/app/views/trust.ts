/** Devices of a person (with the email-bridge warning) and the safety number with its QR. */

import qrcode from 'qrcode-generator';

import { BRIDGE_KIND } from '../../client/messenger.ts';
import { b64urlDecode } from '../../protocol/base64url.ts';
import { safetyNumber } from '../../protocol/safety.ts';
import type { App } from '../app.ts';
import { h, show } from '../dom.ts';
import { t } from '../i18n.ts';

export async function devicesView(app: App, main: HTMLElement, personId: string | null): Promise<void> {
  const me = app.me!;
  const target = personId ?? me.personId;
  const devices = (await app.device!.messenger!.devicesOf(target, true)).filter((d) => d.device_id !== me.deviceId);
  const items = devices.map((d) =>
    h(
      'li',
      {},
      h('span', {}, d.device_id),
      h('span', { class: d.kind === BRIDGE_KIND ? 'warning' : 'role' }, d.kind === BRIDGE_KIND ? t('deviceBridge') : t('deviceApp')),
    ),
  );
  const title = personId === null ? t('myDevicesTitle') : `${t('devicesTitle')} ${app.name(target)}`;
  show(
    main,
    h('h1', {}, title),
    devices.some((d) => d.kind === BRIDGE_KIND) ? h('p', { class: 'warning' }, t('bridgeWarning')) : null,
    items.length ? h('ul', { class: 'list' }, ...items) : h('p', { class: 'hint' }, t('noOtherDevices')),
    h('p', {}, h('a', { href: '#/' }, t('back'))),
  );
}

export async function safetyView(app: App, main: HTMLElement, personId: string): Promise<void> {
  const me = app.me!;
  const devices = (await app.device!.messenger!.devicesOf(personId)).filter((d) => d.kind !== BRIDGE_KIND);
  const first = devices[0];
  const pinned = first ? (me.pins.get(first.device_id) ?? b64urlDecode(first.identity_key, 32)) : null;
  const heading = h('h1', {}, `${t('safetyTitle')} ${app.name(personId)}`);
  if (pinned === null) {
    show(main, heading, h('p', {}, t('safetyUnknown')), h('p', {}, h('a', { href: '#/' }, t('back'))));
    return;
  }
  // Stable ids are person ids (docs/web-client.md, "Safety numbers").
  const number = safetyNumber(me.keys.identity.publicKey, me.personId, pinned, personId);
  const qr = qrcode(0, 'M');
  qr.addData(String.fromCharCode(...number.qrPayload()), 'Byte');
  qr.make();
  const figure = h('figure', { class: 'qr' });
  figure.innerHTML = qr.createSvgTag({ cellSize: 4, margin: 2, scalable: true });
  figure.querySelector('svg')?.setAttribute('role', 'img');
  figure.querySelector('svg')?.setAttribute('aria-label', t('safetyQr'));
  show(
    main,
    heading,
    h('p', { class: 'hint' }, t('safetyIntro')),
    h('p', { class: 'safety', 'aria-label': number.digits.split('').join(' ') }, number.formatted()),
    figure,
    h('p', {}, h('a', { href: '#/' }, t('back'))),
  );
}
