/**
 * The one strings catalogue: French first, English second. A missing English string
 * falls back to French. The chosen language is kept in localStorage (not secret).
 */

const fr = {
  skip: 'Aller au contenu',
  nav: 'Navigation',
  navConversations: 'Conversations',
  navPeople: 'Annuaire',
  navDevices: 'Mes appareils',
  navLanguage: 'English',
  navLock: 'Verrouiller',
  enrolTitle: 'Activer cet appareil',
  enrolIntro: "Saisissez le code d'activation remis par l'établissement, puis choisissez une phrase secrète : elle protège vos clés sur cet appareil.",
  code: "Code d'activation",
  passphrase: 'Phrase secrète (au moins 8 caractères)',
  passphraseConfirm: 'Confirmez la phrase secrète',
  enrolButton: 'Activer',
  enrolWorking: 'Activation en cours…',
  passphraseShort: 'La phrase secrète doit faire au moins 8 caractères.',
  passphraseMismatch: 'Les deux phrases secrètes diffèrent.',
  unlockTitle: 'Déverrouiller Carnet',
  unlockIntro: 'Vos clés sont chiffrées sur cet appareil avec votre phrase secrète.',
  unlockButton: 'Déverrouiller',
  unlockFailed: 'Phrase secrète incorrecte.',
  lostLink: "J'ai oublié ma phrase secrète ou perdu un appareil",
  lostTitle: 'Appareil perdu ou phrase secrète oubliée',
  lostBody1: "Vos messages sont chiffrés de bout en bout : seules les clés de vos appareils peuvent les lire. Ni l'établissement ni Carnet n'en ont de copie.",
  lostBody2: "Si vous avez oublié votre phrase secrète ou perdu cet appareil, les messages qu'il contenait sont perdus : personne ne peut les récupérer, pas même un administrateur.",
  lostBody3: "Demandez à l'établissement de révoquer l'appareil perdu et de vous remettre un nouveau code d'activation. Votre nouvel appareil recevra les nouveaux messages ; vos correspondants verront qu'un nouvel appareil a remplacé l'ancien et pourront vérifier son numéro de sécurité.",
  lostReset: 'Effacer les clés de cet navigateur et recommencer',
  lostResetConfirm: 'Effacer définitivement les clés et messages enregistrés dans ce navigateur ?',
  back: 'Retour',
  conversationsTitle: 'Conversations',
  noConversations: 'Aucune conversation pour le moment. Écrivez à quelqu’un depuis l’annuaire.',
  unread: 'non lus',
  peopleTitle: 'Annuaire de l’établissement',
  write: 'Écrire',
  roles: { teacher: 'Enseignant·e', staff: 'Personnel', director: 'Direction', pupil: 'Élève', parent: 'Parent', dpo: 'DPO', operator: 'Opérateur' } as Record<string, string>,
  conversationWith: 'Conversation avec',
  messagesLabel: 'Messages',
  messageField: 'Votre message',
  send: 'Envoyer',
  sending: 'Envoi…',
  sendFailed: "Le message n'a pas pu être envoyé :",
  noDevices: "Cette personne n'a pas encore activé d'appareil.",
  you: 'Vous',
  safetyLink: 'Numéro de sécurité',
  devicesLink: 'Appareils',
  bridgeWarning: "Attention : cette personne lit Carnet par courriel. Ses messages ne sont pas chiffrés de bout en bout au-delà du serveur de l'établissement.",
  devicesTitle: 'Appareils de',
  myDevicesTitle: 'Mes autres appareils',
  deviceApp: 'Application',
  deviceBridge: 'Passerelle courriel (non chiffré de bout en bout au-delà du serveur)',
  noOtherDevices: 'Aucun autre appareil.',
  safetyTitle: 'Numéro de sécurité avec',
  safetyIntro: 'Comparez ces chiffres avec votre correspondant (par exemple à la réunion parents-professeurs) ou scannez son code QR. S’ils sont identiques, personne ne s’interpose entre vous.',
  safetyQr: 'Code QR du numéro de sécurité',
  safetyUnknown: 'Échangez d’abord un message avec cette personne pour connaître sa clé.',
  connected: 'Connecté',
  disconnected: 'Déconnecté — reconnexion…',
  undecryptable: 'Un message reçu n’a pas pu être déchiffré.',
  errorGeneric: 'Une erreur est survenue :',
};

type Strings = typeof fr;

const en: Partial<Strings> = {
  skip: 'Skip to content',
  nav: 'Navigation',
  navConversations: 'Conversations',
  navPeople: 'Directory',
  navDevices: 'My devices',
  navLanguage: 'Français',
  navLock: 'Lock',
  enrolTitle: 'Activate this device',
  enrolIntro: 'Enter the activation code your school gave you, then choose a passphrase: it protects your keys on this device.',
  code: 'Activation code',
  passphrase: 'Passphrase (at least 8 characters)',
  passphraseConfirm: 'Confirm the passphrase',
  enrolButton: 'Activate',
  enrolWorking: 'Activating…',
  passphraseShort: 'The passphrase needs at least 8 characters.',
  passphraseMismatch: 'The two passphrases differ.',
  unlockTitle: 'Unlock Carnet',
  unlockIntro: 'Your keys are encrypted on this device with your passphrase.',
  unlockButton: 'Unlock',
  unlockFailed: 'Wrong passphrase.',
  lostLink: 'I forgot my passphrase or lost a device',
  lostTitle: 'Lost device or forgotten passphrase',
  lostBody1: 'Your messages are end-to-end encrypted: only your devices’ keys can read them. Neither the school nor Carnet has a copy.',
  lostBody2: 'If you forgot your passphrase or lost this device, the messages it held are lost: nobody can recover them, not even an administrator.',
  lostBody3: 'Ask the school to revoke the lost device and give you a new activation code. Your new device receives new messages; your contacts will see that a new device replaced the old one and can check its safety number.',
  lostReset: 'Erase the keys in this browser and start again',
  lostResetConfirm: 'Permanently erase the keys and messages stored in this browser?',
  back: 'Back',
  conversationsTitle: 'Conversations',
  noConversations: 'No conversation yet. Write to someone from the directory.',
  unread: 'unread',
  peopleTitle: 'School directory',
  write: 'Write',
  roles: { teacher: 'Teacher', staff: 'Staff', director: 'Head', pupil: 'Pupil', parent: 'Parent', dpo: 'DPO', operator: 'Operator' },
  conversationWith: 'Conversation with',
  messagesLabel: 'Messages',
  messageField: 'Your message',
  send: 'Send',
  sending: 'Sending…',
  sendFailed: 'The message could not be sent:',
  noDevices: 'This person has not activated a device yet.',
  you: 'You',
  safetyLink: 'Safety number',
  devicesLink: 'Devices',
  bridgeWarning: 'Warning: this person reads Carnet by email. Their messages are not end-to-end encrypted beyond the school’s server.',
  devicesTitle: 'Devices of',
  myDevicesTitle: 'My other devices',
  deviceApp: 'App',
  deviceBridge: 'Email bridge (not end-to-end encrypted beyond the server)',
  noOtherDevices: 'No other device.',
  safetyTitle: 'Safety number with',
  safetyIntro: 'Compare these digits with your contact (for instance at the parents’ meeting) or scan their QR code. If they match, nobody stands between you.',
  safetyQr: 'Safety number QR code',
  safetyUnknown: 'Exchange a message with this person first to learn their key.',
  connected: 'Connected',
  disconnected: 'Disconnected — reconnecting…',
  undecryptable: 'A received message could not be decrypted.',
  errorGeneric: 'Something went wrong:',
};

export type Lang = 'fr' | 'en';
export type Key = Exclude<keyof Strings, 'roles'>;

let lang: Lang = (globalThis.localStorage?.getItem('carnet.lang') as Lang | null) ?? 'fr';

export function currentLang(): Lang {
  return lang;
}

export function setLang(next: Lang): void {
  lang = next;
  globalThis.localStorage?.setItem('carnet.lang', next);
  document.documentElement.lang = next;
}

export function t(key: Key): string {
  return (lang === 'en' ? en[key] : undefined) ?? fr[key];
}

export function role(name: string): string {
  return ((lang === 'en' ? en.roles : undefined) ?? fr.roles)[name] ?? name;
}
