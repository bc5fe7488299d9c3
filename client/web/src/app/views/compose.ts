/**
 * Starting conversations (docs/moderation.md, "Conversations and the second adult"):
 * the new-conversation form offers only the people of `GET /v1/directory` (the
 * contact policy already filtered it) and, to school adults, class channels (with
 * a second adult, the director by default) and announcements ("to acknowledge").
 * `#/write/PERSON` opens the direct conversation with someone (a deep link); any
 * refusal is shown with the reason text of docs/moderation.md.
 */

import type { ConversationKind, NewConversation, Person } from '../../client/api.ts';
import { type App, describeError } from '../app.ts';
import { field, h, show } from '../dom.ts';
import { role, t } from '../i18n.ts';

const ADULTS = new Set(['teacher', 'staff', 'director']);

function radio(name: string, value: string, label: string, checked = false): HTMLElement {
  const input = h('input', { type: 'radio', name, value, id: `${name}-${value}`, checked });
  return h('div', { class: 'choice' }, input, h('label', { for: `${name}-${value}` }, label));
}

function personBox(p: Person): HTMLElement {
  const id = `member-${p.person_id}`;
  return h('div', { class: 'choice' }, h('input', { type: 'checkbox', name: 'member', value: p.person_id, id }), h('label', { for: id }, `${p.name} (${role(p.role)})`));
}

export function newConversationView(app: App, main: HTMLElement, done: (id: string) => void): void {
  const people = [...app.people.values()].filter((p) => p.person_id !== app.me?.personId);
  const kinds: [ConversationKind, string][] = [
    ['direct', t('kindDirect')],
    ['group', t('kindGroup')],
  ];
  if (app.hosts) kinds.push(['class', t('kindClass')], ['announcement', t('kindAnnouncement')]);
  const kindSet = h('fieldset', {}, h('legend', {}, t('newKind')), ...kinds.map(([k, label], i) => radio('kind', k, label, i === 0)));
  const title = h('input', { name: 'title', maxlength: 120 });
  const knownClasses = [...app.conversations.values()].map((c) => c.class_id).filter((c): c is string => Boolean(c));
  const classId = h('input', { name: 'class_id', maxlength: 60, value: knownClasses[0] ?? '' });
  const adults = people.filter((p) => ADULTS.has(p.role));
  const secondAdult = h(
    'select',
    { name: 'second_adult', id: 'second-adult' },
    ...adults.map((p) => h('option', { value: p.person_id, selected: p.role === 'director' }, `${p.name} (${role(p.role)})`)),
  );
  const acknowledge = h('input', { type: 'checkbox', name: 'acknowledge', id: 'acknowledge', checked: true });
  const members = h(
    'fieldset',
    {},
    h('legend', {}, t('newMembers')),
    h('p', { class: 'hint' }, t('newMembersHint')),
    ...(people.length ? people.map(personBox) : [h('p', {}, t('newNoPeople'))]),
  );
  const titleRow = field(t('newTitleField'), title);
  const classRow = field(t('newClass'), classId);
  const adultRow = h('div', {}, h('label', { for: 'second-adult' }, t('newSecondAdult')), secondAdult);
  const ackRow = h('div', { class: 'choice' }, acknowledge, h('label', { for: 'acknowledge' }, t('newAcknowledge')));
  const error = h('p', { class: 'error', role: 'alert' });
  const button = h('button', { class: 'primary', type: 'submit' }, t('newCreate'));
  const form = h('form', { class: 'new' }, kindSet, titleRow, classRow, adultRow, ackRow, members, error, button);
  const kind = (): ConversationKind => ((form.querySelector('input[name=kind]:checked') as HTMLInputElement | null)?.value ?? 'direct') as ConversationKind;
  const update = () => {
    const k = kind();
    titleRow.hidden = k === 'direct';
    classRow.hidden = k !== 'class';
    adultRow.hidden = k !== 'class';
    ackRow.hidden = k !== 'announcement';
    members.hidden = k === 'class';
  };
  kindSet.addEventListener('change', update);
  update();
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    const k = kind();
    const chosen = [...form.querySelectorAll<HTMLInputElement>('input[name=member]:checked')].map((i) => i.value);
    const request: NewConversation = { kind: k, members: chosen };
    if (k !== 'direct') request.title = title.value.trim();
    if (k === 'class') {
      request.class_id = classId.value.trim();
      request.members = secondAdult.value ? [secondAdult.value] : [];
    } else if (chosen.length === 0 || (k === 'direct' && chosen.length !== 1)) {
      error.textContent = t('newPickOne');
      return;
    }
    if (k === 'announcement') request.acknowledge = acknowledge.checked;
    button.disabled = true;
    app.create(request).then(
      (c) => done(c.id),
      (e: unknown) => {
        button.disabled = false;
        error.textContent = describeError(e);
      },
    );
  });
  show(main, h('h1', {}, t('newTitle')), form);
}

/** `#/write/PERSON`: the direct conversation with someone, or the reason it is refused. */
export async function writeView(app: App, main: HTMLElement, personId: string, done: (id: string) => void): Promise<void> {
  try {
    done((await app.direct(personId)).id);
  } catch (e) {
    show(main, h('h1', {}, t('newTitle')), h('p', { class: 'error', role: 'alert' }, describeError(e)), h('p', {}, h('a', { href: '#/new' }, t('navNew'))));
  }
}
