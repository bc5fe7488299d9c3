/**
 * Browser end-to-end run of the web client against a real Carnet (driven by
 * tests/web/test_browser.py): a teacher (desktop width), a parent and a pupil (360 px
 * phones) in three browser contexts of Debian's Chromium enrol with demo codes; the
 * teacher and the parent exchange messages (read receipt, encrypted attachment,
 * report with franking evidence), the teacher sends an announcement to acknowledge
 * that the parent signs and the teacher sees who signed, opens a class channel with
 * the director as second adult; the pupil is offered only whom the policy allows and
 * a forced direct conversation with another pupil is refused with the reason shown.
 * Safety numbers, devices, settings and lost-device pages; axe-core checks each
 * screen; screenshots go to --out. Prints one JSON line: {"ok":true,...}.
 *
 *   node --import tsx scripts/browser-e2e.ts --url URL --teacher CODE --parent CODE \
 *        --parent-name NAME --teacher-name NAME --pupil CODE --other-pupil PERSON_ID \
 *        --other-pupil-name NAME --other-parent-name NAME --class CLASS_ID --out DIR
 */

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { type Browser, type Page, chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
// Evaluated through the DevTools protocol: the app's CSP (rightly) refuses injected scripts.
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const TIMEOUT = 60_000; // generous: Argon2id in the browser is slow on a loaded 2-core machine

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    teacher: { type: 'string' },
    parent: { type: 'string' },
    'teacher-name': { type: 'string' },
    'parent-name': { type: 'string' },
    pupil: { type: 'string' },
    'other-pupil': { type: 'string' },
    'other-pupil-name': { type: 'string' },
    'other-parent-name': { type: 'string' },
    class: { type: 'string' },
    out: { type: 'string' },
  },
});
const url = values.url!;
const out = values.out!;
mkdirSync(out, { recursive: true });
const violations: { page: string; id: string; impact: string | null | undefined; nodes: number }[] = [];

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact?: string | null; nodes: unknown[] }[] }> } }).axe;
    return axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] });
  });
  for (const v of result.violations) violations.push({ page: name, id: v.id, impact: v.impact, nodes: v.nodes.length });
}

async function enrol(browser: Browser, code: string, width: number, height: number, who: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height }, locale: 'fr-FR' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (error) => process.stderr.write(`${who} page error: ${error.message}\n`));
  page.on('console', (message) => {
    if (message.type() === 'error') process.stderr.write(`${who} console: ${message.text()}\n`);
  });
  await page.goto(`${url}/app/`);
  await page.getByRole('heading', { name: 'Activer cet appareil' }).waitFor();
  await shot(page, `${who}-enrol-${width}`);
  await page.getByLabel("Code d'activation").fill(code);
  await page.getByLabel('Phrase secrète (au moins 8 caractères)').fill('correct horse battery');
  await page.getByLabel('Confirmez la phrase secrète').fill('correct horse battery');
  await page.getByRole('button', { name: 'Activer' }).click();
  try {
    await page.getByRole('heading', { name: 'Conversations' }).waitFor();
  } catch (error) {
    // Say what the page shows (an error message, or still working) rather than only a timeout.
    const main = await page.locator('main').innerText({ timeout: 5_000 }).catch(String);
    const status = await page.locator('#status').innerText({ timeout: 5_000 }).catch(String);
    process.stderr.write(`${who} enrolment did not finish; page: ${JSON.stringify(main)}; status: ${JSON.stringify(status)}\n`);
    await page.screenshot({ path: join(out, `${who}-enrol-failed.png`), fullPage: true }).catch(() => undefined);
    throw error;
  }
  return page;
}

async function main(): Promise<void> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const teacher = await enrol(browser, values.teacher!, 1280, 800, 'teacher');
    const parent = await enrol(browser, values.parent!, 360, 740, 'parent');

    // Teacher writes to the parent from the directory.
    await teacher.getByRole('link', { name: 'Annuaire' }).click();
    await teacher.getByRole('heading', { name: 'Annuaire de l’établissement' }).waitFor();
    await shot(teacher, 'teacher-directory-1280');
    await teacher.getByRole('button', { name: `Écrire — ${values['parent-name']}` }).click();
    await teacher.getByRole('heading', { name: `Conversation avec ${values['parent-name']}` }).waitFor();
    await teacher.getByLabel('Votre message').fill('Bonjour, Léa a oublié son cahier de liaison.');
    await teacher.getByRole('button', { name: 'Envoyer' }).click();
    await teacher.getByRole('list', { name: 'Messages' }).getByText('Léa a oublié son cahier').waitFor();

    // The parent sees the conversation, opens it, reads and answers.
    const link = parent.getByRole('link', { name: values['teacher-name'] });
    await link.waitFor();
    await shot(parent, 'parent-conversations-360');
    await link.click();
    await parent.bringToFront(); // on screen: viewing it sends the read receipt
    await parent.getByRole('list', { name: 'Messages' }).getByText('Léa a oublié son cahier').waitFor();
    await parent.getByLabel('Votre message').fill('Merci, je le lui donne demain.');
    await parent.getByRole('button', { name: 'Envoyer' }).click();
    await shot(parent, 'parent-conversation-360');
    await teacher.getByRole('list', { name: 'Messages' }).getByText('Merci, je le lui donne demain.').waitFor();
    // The parent viewed the conversation: a read receipt (the demo school allows them).
    await teacher.locator('.messages li.mine .state', { hasText: /^Lu$/ }).first().waitFor();
    await shot(teacher, 'teacher-conversation-1280');

    // An attachment, encrypted in the teacher's browser, decrypted in the parent's.
    const note = 'Mot pour les parents : la sortie a lieu jeudi.';
    await teacher.getByLabel('Votre message').fill('Le mot est en pièce jointe.');
    await teacher.getByLabel('Joindre un fichier').setInputFiles({ name: 'mot.txt', mimeType: 'text/plain', buffer: Buffer.from(note) });
    await teacher.getByRole('button', { name: 'Envoyer' }).click();
    await teacher.getByRole('button', { name: /Télécharger mot\.txt/ }).waitFor();
    const downloadButton = parent.getByRole('button', { name: /Télécharger mot\.txt/ });
    await downloadButton.waitFor();
    const [download] = await Promise.all([parent.waitForEvent('download'), downloadButton.click()]);
    const downloaded = readFileSync((await download.path())!, 'utf8');
    if (downloaded !== note) throw new Error(`attachment differs: ${downloaded}`);

    // The parent reports a message with its franking evidence; the server verifies it.
    parent.once('dialog', (dialog) => void dialog.accept());
    await parent.getByRole('button', { name: /^Signaler/ }).first().click();
    await parent.getByText('Signalement transmis aux modérateurs. Expéditeur prouvé.').waitFor();

    // An announcement to acknowledge: the parent signs, the teacher sees who did.
    await teacher.getByRole('link', { name: 'Nouvelle conversation' }).click();
    await teacher.getByRole('heading', { name: 'Nouvelle conversation' }).waitFor();
    await teacher.getByLabel('Annonce (sens unique)').check();
    await teacher.getByLabel('Titre').fill('Sortie au musée');
    await teacher.getByLabel(new RegExp(`^${values['parent-name']}`)).check();
    await teacher.getByLabel(new RegExp(`^${values['other-parent-name']}`)).check();
    await shot(teacher, 'teacher-new-announcement-1280');
    await teacher.getByRole('button', { name: 'Créer' }).click();
    await teacher.getByRole('heading', { name: 'Annonce : Sortie au musée' }).waitFor();
    await teacher.getByLabel('Votre message').fill("Merci de signer l'autorisation de sortie.");
    await teacher.getByRole('button', { name: 'Envoyer' }).click();
    await teacher.getByRole('list', { name: 'Messages' }).getByText("Merci de signer l'autorisation").waitFor();
    await parent.getByRole('navigation').getByRole('link', { name: 'Conversations' }).click();
    await parent.getByRole('link', { name: 'Sortie au musée' }).click();
    await parent.getByRole('list', { name: 'Messages' }).getByText("Merci de signer l'autorisation").waitFor();
    await parent.getByText('Ceci est une annonce : les réponses ne sont pas possibles.').waitFor();
    await parent.getByRole('button', { name: 'J’accuse réception' }).click();
    await parent.getByText('Accusé de réception signé').waitFor();
    await shot(parent, 'parent-announcement-360');
    await teacher.getByRole('button', { name: 'Voir qui a signé' }).click();
    await teacher.getByText(`Ont signé : ${values['parent-name']}`).waitFor();
    await teacher.getByText(`N’ont pas encore signé : ${values['other-parent-name']}`).waitFor();
    await shot(teacher, 'teacher-announcement-1280');

    // A class channel with the director as the second adult; the parent reads it.
    await teacher.getByRole('link', { name: 'Nouvelle conversation' }).click();
    await teacher.getByLabel('Canal de classe').check();
    await teacher.getByLabel('Titre').fill('5e B');
    await teacher.getByLabel(/^Classe/).fill(values.class!);
    await teacher.getByRole('button', { name: 'Créer' }).click();
    await teacher.getByRole('heading', { name: 'Canal de classe : 5e B' }).waitFor();
    await teacher.getByLabel('Votre message').fill('Bienvenue dans le canal de la 5e B.');
    await teacher.getByRole('button', { name: 'Envoyer' }).click();
    await teacher.getByRole('list', { name: 'Messages' }).getByText('Bienvenue dans le canal').waitFor();
    await shot(teacher, 'teacher-class-1280');
    await parent.getByRole('navigation').getByRole('link', { name: 'Conversations' }).click();
    await parent.getByRole('link', { name: '5e B' }).click();
    await parent.getByRole('list', { name: 'Messages' }).getByText('Bienvenue dans le canal').waitFor();

    // Settings: quiet hours of the school (teacher: read from the policy), notifications.
    await teacher.getByRole('link', { name: 'Réglages' }).click();
    await teacher.getByText('De 20:00 à 07:00 et tout le week-end.').waitFor();
    await shot(teacher, 'teacher-settings-1280');
    await parent.getByRole('link', { name: 'Réglages' }).click();
    await parent.getByRole('heading', { name: 'Heures calmes' }).waitFor();
    await shot(parent, 'parent-settings-360');

    // A pupil: only whom the policy allows is offered; a forced conversation is refused.
    const pupil = await enrol(browser, values.pupil!, 360, 740, 'pupil');
    await pupil.getByRole('link', { name: 'Nouvelle conversation' }).click();
    await pupil.getByRole('heading', { name: 'Nouvelle conversation' }).waitFor();
    await pupil.getByLabel(new RegExp(`^${values['teacher-name']}`)).waitFor();
    for (const forbidden of [values['other-pupil-name']!, values['parent-name']!]) {
      if ((await pupil.getByLabel(new RegExp(`^${forbidden}`)).count()) !== 0) throw new Error(`${forbidden} offered to a pupil`);
    }
    if ((await pupil.getByLabel('Annonce (sens unique)').count()) !== 0) throw new Error('announcements offered to a pupil');
    await shot(pupil, 'pupil-new-360');
    await pupil.goto(`${url}/app/#/write/${encodeURIComponent(values['other-pupil']!)}`);
    await pupil.getByText('Refusé : Les élèves ne s’écrivent que dans un canal animé par un enseignant.').waitFor();
    await shot(pupil, 'pupil-refused-360');

    // Safety number on both sides: the same 60 digits.
    await teacher.getByRole('navigation').getByRole('link', { name: 'Conversations' }).click();
    await teacher.getByRole('link', { name: values['parent-name'] }).click();
    await parent.getByRole('navigation').getByRole('link', { name: 'Conversations' }).click();
    await parent.getByRole('link', { name: values['teacher-name'] }).click();
    await teacher.getByRole('link', { name: 'Numéro de sécurité' }).click();
    const teacherDigits = await teacher.locator('.safety').textContent({ timeout: TIMEOUT });
    await shot(teacher, 'teacher-safety-1280');
    await parent.getByRole('link', { name: 'Numéro de sécurité' }).click();
    const parentDigits = await parent.locator('.safety').textContent({ timeout: TIMEOUT });
    await shot(parent, 'parent-safety-360');
    if (!teacherDigits || teacherDigits !== parentDigits) throw new Error(`safety numbers differ: ${teacherDigits} / ${parentDigits}`);

    // Devices of the teacher, the lost-device page, English.
    await parent.goto(`${url}/app/#/lost`);
    await parent.getByRole('heading', { name: 'Appareil perdu ou phrase secrète oubliée' }).waitFor();
    await shot(parent, 'parent-lost-360');
    await parent.getByRole('button', { name: 'English' }).click();
    await parent.getByRole('heading', { name: 'Lost device or forgotten passphrase' }).waitFor();

    // Reload: the vault is locked, the passphrase unlocks it and history is still there.
    await teacher.reload();
    await teacher.getByRole('heading', { name: 'Déverrouiller Carnet' }).waitFor();
    await shot(teacher, 'teacher-unlock-1280');
    await teacher.getByLabel('Phrase secrète (au moins 8 caractères)').fill('wrong passphrase');
    await teacher.getByRole('button', { name: 'Déverrouiller' }).click();
    await teacher.getByText('Phrase secrète incorrecte.').waitFor();
    await teacher.getByLabel('Phrase secrète (au moins 8 caractères)').fill('correct horse battery');
    await teacher.getByRole('button', { name: 'Déverrouiller' }).click();
    await teacher.getByRole('heading', { name: `Numéro de sécurité avec ${values['parent-name']}` }).waitFor();
    await teacher.getByRole('navigation').getByRole('link', { name: 'Conversations' }).click();
    await teacher.getByRole('link', { name: values['parent-name'] }).click();
    await teacher.getByRole('list', { name: 'Messages' }).getByText('Merci, je le lui donne demain.').waitFor();

    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    process.stdout.write(`${JSON.stringify({ ok: serious.length === 0, digits: teacherDigits, violations })}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(error), violations })}\n`);
  process.exit(1);
});
