// Every string the teacher sees, in French (default) and English, plus the language choice.
//
// Pages mark translatable elements with data-i18n="key" (text content) or
// data-i18n-attr="attr:key,attr:key" (attributes such as aria-label); scripts call t().

const STRINGS = {
  fr: {
    'app.name': 'Lanterne',
    'lang.label': 'Langue',
    'lang.fr': 'Français',
    'lang.en': 'English',

    'login.title': 'Connexion — Lanterne',
    'login.heading': 'Connexion',
    'login.intro': 'Connectez-vous pour voir les écrans de la salle.',
    'login.username': 'Identifiant',
    'login.password': 'Mot de passe',
    'login.submit': 'Se connecter',
    'login.busy': 'Connexion…',
    'login.failed': 'La connexion a échoué (erreur {status}).',
    'login.network': 'Le boîtier ne répond pas. Vérifiez le réseau puis réessayez.',
    'login.notice': 'Chaque consultation d’écran est enregistrée dans le journal de la salle.',

    'room.title': '{room} — Lanterne',
    'room.loading': 'Chargement de la salle…',
    'room.logout': 'Déconnexion',
    'room.back': 'Retour à la classe',
    'room.empty': 'Aucun poste n’est inscrit dans cette salle.',
    'room.stations': '{online} / {total} postes en ligne',
    'room.open': 'Ouvrir l’écran de {name}',
    'room.offline': 'Hors ligne',
    'room.online': 'En ligne',
    'room.locked': 'Verrouillé',
    'room.focusOf': 'Écran de {name}',
    'room.station': 'Poste {id}',
    'room.ended': 'Ce poste n’est plus disponible.',
    'room.loadFailed': 'Impossible de charger la salle. Nouvel essai dans quelques secondes…',
    // Reasons the box gives in an "ended" message, by code; unknown codes are shown as sent.
    'reason.station-offline': 'Le poste s’est déconnecté ou a été éteint.',
    'reason.station-unknown': 'Ce poste n’existe plus dans cette salle.',

    // ---- classroom controls (assets/controls.js) ----
    'room.locking': 'Verrouillage…',
    'room.unread': '{n} message(s) pas encore lu(s)',
    'room.running': '{n} commande(s) en cours',
    'room.choose': 'Choisir {name}',
    'room.devPanel': 'Panneau simulé',
    'act.bar': 'Actions sur les postes',
    'act.select': 'Choisir',
    'act.selectAll': 'Tout',
    'act.selectNone': 'Aucun',
    'act.selected': '{n} poste(s) choisi(s)',
    'act.lock': 'Verrouiller',
    'act.unlock': 'Déverrouiller',
    'act.message': 'Message',
    'act.power': 'Alimentation',
    'act.command': 'Commande',
    'act.url': 'Lien',
    'act.cancel': 'Annuler',
    'act.confirm': 'Confirmer',
    'act.close': 'Fermer',
    'act.targetRoom': 'Toute la classe',
    'act.targetRoomLower': 'toute la classe',
    'act.targetOne': '{name}',
    'act.targetSome': '{n} postes choisis',
    'act.network': 'Le boîtier ne répond pas. Vérifiez le réseau puis réessayez.',
    'act.sessionEnded': 'Votre session a expiré : reconnectez-vous.',
    'act.refused': 'Refusé : {reason}',
    'act.sentTo': 'Envoyé à {n} poste(s).',
    'act.offlineCount': '{n} hors ligne.',
    'act.sent': 'Envoyé',
    'act.offline': 'Hors ligne : non reçu',
    'lock.doneTitle': 'Verrouillage',
    'unlock.doneTitle': 'Déverrouillage',
    'lock.sent': 'Verrouillé',
    'lock.offline': 'Hors ligne : sera verrouillé à son retour',
    'unlock.sent': 'Déverrouillé',
    'unlock.offline': 'Hors ligne : sera déverrouillé à son retour',
    'msg.title': 'Envoyer un message',
    'msg.label': 'Message',
    'msg.count': '{n} / {max} caractères',
    'msg.send': 'Envoyer',
    'msg.doneTitle': 'Message',
    'msg.readCount': 'Lu par {read} poste(s) sur {n}.',
    'msg.read': 'Lu',
    'msg.unread': 'Pas encore lu',
    'power.title': 'Alimentation et sessions',
    'power.wake': 'Allumer',
    'power.restart': 'Redémarrer',
    'power.shutdown': 'Éteindre',
    'power.logout': 'Fermer la session',
    'power.openSession': 'Ouvrir la session',
    'power.countdown': 'Délai affiché aux élèves',
    'power.now': 'Immédiatement',
    'power.s30': '30 secondes',
    'power.m1': '1 minute',
    'power.m5': '5 minutes',
    'power.confirm.restart': 'Redémarrer {target} ? Le travail non enregistré sera perdu.',
    'power.confirm.shutdown': 'Éteindre {target} ? Le travail non enregistré sera perdu.',
    'power.confirm.logout': 'Fermer la session de {target} ? Le travail non enregistré sera perdu.',
    'power.doneTitle.wake': 'Allumage',
    'power.doneTitle.restart': 'Redémarrage',
    'power.doneTitle.shutdown': 'Extinction',
    'power.doneTitle.logout': 'Fermeture de session',
    'power.doneTitle.open-session': 'Ouverture de session',
    'power.wakeSummary': 'Signal de réveil envoyé à {n} poste(s).',
    'power.wakeSent': 'Signal de réveil envoyé',
    'power.noMac': 'Adresse MAC inconnue : impossible de l’allumer à distance',
    'cmd.title': 'Lancer une commande',
    'cmd.name': 'Commande approuvée',
    'cmd.arg': 'Argument',
    'cmd.noArg': 'Aucun',
    'cmd.none': 'Aucune commande n’est approuvée sur ce boîtier. L’administrateur les définit dans la configuration.',
    'cmd.run': 'Lancer',
    'cmd.doneTitle': 'Commande « {name} »',
    'cmd.doneCount': 'Terminée sur {done} poste(s) sur {n}.',
    'cmd.running': 'En cours…',
    'cmd.exit': 'Code de sortie {code}',
    'url.title': 'Ouvrir un lien chez les élèves',
    'url.label': 'Adresse (http ou https)',
    'url.open': 'Ouvrir',
    'url.doneTitle': 'Lien ouvert',
    'order.doneCount': 'Fait sur {done} poste(s) sur {n}.',
    'order.pending': 'En attente…',
    'order.done': 'Fait',
    'order.failed': 'Impossible sur ce poste',
    'dev.title': 'Panneau simulé — Lanterne',
    'dev.heading': 'Panneau du boîtier (simulé)',
    'dev.intro': 'Le boîtier de développement n’a pas de panneau physique : ce bouton et ces voyants le remplacent.',
    'dev.press': 'Appuyer sur le bouton de verrouillage',
    'dev.lockLed': 'Voyant du bouton (verrouillage)',
    'dev.statusLed': 'Voyant d’état (écrans regardés)',
    'dev.on': 'allumé',
    'dev.off': 'éteint',
    'dev.led.off': 'éteint : aucun écran n’est regardé',
    'dev.led.watching': 'allumé : des écrans sont regardés',
    'dev.led.remote-control': 'clignotant : prise en main à distance',
    'dev.led.fault': 'défaut : le boîtier ne répond plus',
    'dev.back': 'Retour à la classe',
    'dev.unavailable': 'Panneau simulé indisponible : {reason}',
    // ---- end of classroom controls ----

    'conn.connecting': 'Connexion…',
    'conn.live': 'En direct',
    'conn.reconnecting': 'Reconnexion…',
    'conn.ended': 'Terminé',

    'unsupported.title': 'Navigateur trop ancien',
    'unsupported.body': 'Ce navigateur ne sait pas afficher la vidéo en direct (WebCodecs). Utilisez Safari sur iPadOS 16.4 ou plus récent, ou une version récente de Chrome.',
    'unsupported.insecure': 'La page doit être ouverte en HTTPS pour afficher la vidéo. Utilisez l’adresse https:// du boîtier.',

    // ---- demo (fan-out), used by demo.js ------------------------------------------------
    'demo.show': 'Montrer à la classe',
    'demo.title': 'Montrer l’écran de {name}',
    'demo.targets': 'À qui ?',
    'demo.targets.all': 'Tous les autres postes',
    'demo.targets.some': 'Postes choisis',
    'demo.mode': 'Comment ?',
    'demo.mode.fullscreen': 'plein écran (clavier et souris bloqués)',
    'demo.mode.windowed': 'dans une fenêtre',
    'demo.region': 'Quelle partie de l’écran ?',
    'demo.region.whole': 'Tout l’écran',
    'demo.region.top': 'Moitié haute',
    'demo.region.bottom': 'Moitié basse',
    'demo.region.left': 'Moitié gauche',
    'demo.region.right': 'Moitié droite',
    'demo.start': 'Lancer la démonstration',
    'demo.cancel': 'Annuler',
    'demo.stop': 'Arrêter la démonstration',
    'demo.failed': 'La démonstration n’a pas démarré : {error}',
    'demo.running': 'Démonstration : écran de {name} sur {count} poste(s), {mode}',
    'demo.starting': 'démarrage…',
    'demo.offline': 'hors ligne',
    'demo.health': '{fps} img/s, {drops} perdues',
    'demo.ended.source-gone': 'Démonstration terminée : l’écran de {name} n’est plus disponible.',
    'demo.ended.outside-monitoring-hours': 'Démonstration terminée : la plage de surveillance est close.',
    'demo.ended.replaced': 'Démonstration remplacée par une autre.',
    // ---- end of demo ----------------------------------------------------------------------
  },
  en: {
    'app.name': 'Lanterne',
    'lang.label': 'Language',
    'lang.fr': 'Français',
    'lang.en': 'English',

    'login.title': 'Sign in — Lanterne',
    'login.heading': 'Sign in',
    'login.intro': 'Sign in to see the screens of the room.',
    'login.username': 'Username',
    'login.password': 'Password',
    'login.submit': 'Sign in',
    'login.busy': 'Signing in…',
    'login.failed': 'Sign-in failed (error {status}).',
    'login.network': 'The box is not answering. Check the network and try again.',
    'login.notice': 'Every time a screen is viewed, it is recorded in the room’s log.',

    'room.title': '{room} — Lanterne',
    'room.loading': 'Loading the room…',
    'room.logout': 'Log out',
    'room.back': 'Back to the class',
    'room.empty': 'No station is enrolled in this room.',
    'room.stations': '{online} / {total} stations online',
    'room.open': 'Open the screen of {name}',
    'room.offline': 'Offline',
    'room.online': 'Online',
    'room.locked': 'Locked',
    'room.focusOf': 'Screen of {name}',
    'room.station': 'Station {id}',
    'room.ended': 'This station is no longer available.',
    'room.loadFailed': 'Could not load the room. Trying again in a few seconds…',
    'reason.station-offline': 'The station disconnected or was switched off.',
    'reason.station-unknown': 'This station is no longer part of this room.',

    // ---- classroom controls (assets/controls.js) ----
    'room.locking': 'Locking…',
    'room.unread': '{n} message(s) not read yet',
    'room.running': '{n} command(s) running',
    'room.choose': 'Choose {name}',
    'room.devPanel': 'Simulated panel',
    'act.bar': 'Station actions',
    'act.select': 'Choose',
    'act.selectAll': 'All',
    'act.selectNone': 'None',
    'act.selected': '{n} station(s) chosen',
    'act.lock': 'Lock',
    'act.unlock': 'Unlock',
    'act.message': 'Message',
    'act.power': 'Power',
    'act.command': 'Command',
    'act.url': 'Link',
    'act.cancel': 'Cancel',
    'act.confirm': 'Confirm',
    'act.close': 'Close',
    'act.targetRoom': 'Whole class',
    'act.targetRoomLower': 'the whole class',
    'act.targetOne': '{name}',
    'act.targetSome': '{n} stations chosen',
    'act.network': 'The box does not answer. Check the network and try again.',
    'act.sessionEnded': 'Your session has expired: sign in again.',
    'act.refused': 'Refused: {reason}',
    'act.sentTo': 'Sent to {n} station(s).',
    'act.offlineCount': '{n} offline.',
    'act.sent': 'Sent',
    'act.offline': 'Offline: not received',
    'lock.doneTitle': 'Lock',
    'unlock.doneTitle': 'Unlock',
    'lock.sent': 'Locked',
    'lock.offline': 'Offline: will lock when it comes back',
    'unlock.sent': 'Unlocked',
    'unlock.offline': 'Offline: will unlock when it comes back',
    'msg.title': 'Send a message',
    'msg.label': 'Message',
    'msg.count': '{n} / {max} characters',
    'msg.send': 'Send',
    'msg.doneTitle': 'Message',
    'msg.readCount': 'Read on {read} of {n} station(s).',
    'msg.read': 'Read',
    'msg.unread': 'Not read yet',
    'power.title': 'Power and sessions',
    'power.wake': 'Power on',
    'power.restart': 'Restart',
    'power.shutdown': 'Shut down',
    'power.logout': 'Log out',
    'power.openSession': 'Open session',
    'power.countdown': 'Countdown shown to students',
    'power.now': 'Immediately',
    'power.s30': '30 seconds',
    'power.m1': '1 minute',
    'power.m5': '5 minutes',
    'power.confirm.restart': 'Restart {target}? Unsaved work will be lost.',
    'power.confirm.shutdown': 'Shut down {target}? Unsaved work will be lost.',
    'power.confirm.logout': 'Log out {target}? Unsaved work will be lost.',
    'power.doneTitle.wake': 'Power on',
    'power.doneTitle.restart': 'Restart',
    'power.doneTitle.shutdown': 'Shut down',
    'power.doneTitle.logout': 'Log out',
    'power.doneTitle.open-session': 'Open session',
    'power.wakeSummary': 'Wake-up signal sent to {n} station(s).',
    'power.wakeSent': 'Wake-up signal sent',
    'power.noMac': 'MAC address unknown: cannot be powered on remotely',
    'cmd.title': 'Run a command',
    'cmd.name': 'Approved command',
    'cmd.arg': 'Argument',
    'cmd.noArg': 'None',
    'cmd.none': 'No command is approved on this box. The admin defines them in the configuration.',
    'cmd.run': 'Run',
    'cmd.doneTitle': 'Command “{name}”',
    'cmd.doneCount': 'Finished on {done} of {n} station(s).',
    'cmd.running': 'Running…',
    'cmd.exit': 'Exit code {code}',
    'url.title': 'Open a link for the students',
    'url.label': 'Address (http or https)',
    'url.open': 'Open',
    'url.doneTitle': 'Link opened',
    'order.doneCount': 'Done on {done} of {n} station(s).',
    'order.pending': 'Waiting…',
    'order.done': 'Done',
    'order.failed': 'Not possible on this station',
    'dev.title': 'Simulated panel — Lanterne',
    'dev.heading': 'Box panel (simulated)',
    'dev.intro': 'The development box has no physical panel: this button and these lights stand in for it.',
    'dev.press': 'Press the lock button',
    'dev.lockLed': 'Button light (lock)',
    'dev.statusLed': 'Status light (screens watched)',
    'dev.on': 'on',
    'dev.off': 'off',
    'dev.led.off': 'off: no screen is watched',
    'dev.led.watching': 'on: screens are being watched',
    'dev.led.remote-control': 'blinking: remote help in progress',
    'dev.led.fault': 'fault: the box stopped answering',
    'dev.back': 'Back to the class',
    'dev.unavailable': 'Simulated panel unavailable: {reason}',
    // ---- end of classroom controls ----

    'conn.connecting': 'Connecting…',
    'conn.live': 'Live',
    'conn.reconnecting': 'Reconnecting…',
    'conn.ended': 'Ended',

    'unsupported.title': 'Browser too old',
    'unsupported.body': 'This browser cannot show live video (WebCodecs). Use Safari on iPadOS 16.4 or later, or a recent version of Chrome.',
    'unsupported.insecure': 'The page must be opened over HTTPS to show video. Use the box’s https:// address.',

    // ---- demo (fan-out), used by demo.js ------------------------------------------------
    'demo.show': 'Show to class',
    'demo.title': 'Show the screen of {name}',
    'demo.targets': 'To whom?',
    'demo.targets.all': 'Every other station',
    'demo.targets.some': 'Chosen stations',
    'demo.mode': 'How?',
    'demo.mode.fullscreen': 'full screen (keyboard and mouse blocked)',
    'demo.mode.windowed': 'in a window',
    'demo.region': 'Which part of the screen?',
    'demo.region.whole': 'The whole screen',
    'demo.region.top': 'Top half',
    'demo.region.bottom': 'Bottom half',
    'demo.region.left': 'Left half',
    'demo.region.right': 'Right half',
    'demo.start': 'Start the demo',
    'demo.cancel': 'Cancel',
    'demo.stop': 'Stop the demo',
    'demo.failed': 'The demo did not start: {error}',
    'demo.running': 'Demo: screen of {name} on {count} station(s), {mode}',
    'demo.starting': 'starting…',
    'demo.offline': 'offline',
    'demo.health': '{fps} fps, {drops} lost',
    'demo.ended.source-gone': 'Demo ended: the screen of {name} is no longer available.',
    'demo.ended.outside-monitoring-hours': 'Demo ended: the monitoring window has closed.',
    'demo.ended.replaced': 'Demo replaced by another one.',
    // ---- end of demo ----------------------------------------------------------------------
  },
};

export const LANGUAGES = Object.keys(STRINGS);
const DEFAULT_LANG = 'fr';
const STORAGE_KEY = 'lanterne.lang';

function storedLang() {
  // Private browsing on older Safari throws on localStorage access; French is still right.
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function pickInitialLang() {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  if (fromUrl && STRINGS[fromUrl]) {
    // A shared link with ?lang=en should stick for the rest of the visit (login → room).
    saveLang(fromUrl);
    return fromUrl;
  }
  const stored = storedLang();
  return stored && STRINGS[stored] ? stored : DEFAULT_LANG;
}

function saveLang(lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Not persisted; the choice still applies to this page.
  }
}

let current = pickInitialLang();
const listeners = new Set();

export function getLang() {
  return current;
}

/** Looks a key up in the current language; {name} placeholders are filled from vars. */
export function t(key, vars = {}) {
  const table = STRINGS[current];
  let s = table[key] ?? STRINGS[DEFAULT_LANG][key];
  if (s === undefined) {
    console.warn(`i18n: missing string ${key}`);
    return key;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** True when key exists, for strings chosen by data from the box (reason codes). */
export function has(key) {
  return key in STRINGS[current] || key in STRINGS[DEFAULT_LANG];
}

/** Fills every data-i18n / data-i18n-attr element under root with the current language. */
export function applyTranslations(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(',')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      el.setAttribute(attr, t(key));
    }
  }
}

export function setLang(lang) {
  if (!STRINGS[lang] || lang === current) return;
  current = lang;
  saveLang(lang);
  // Drop ?lang= from the address so a reload honours the new choice, not the old link.
  const url = new URL(location.href);
  if (url.searchParams.has('lang')) {
    url.searchParams.delete('lang');
    history.replaceState(history.state, '', url);
  }
  applyTranslations();
  for (const fn of listeners) fn(lang);
}

/** Calls fn(lang) after every language change, for strings built by scripts. */
export function onLangChange(fn) {
  listeners.add(fn);
}

/**
 * Wires a language switcher: every button with data-lang inside container selects that
 * language, and the pressed state follows the current choice.
 */
export function bindSwitcher(container) {
  const sync = () => {
    for (const b of container.querySelectorAll('button[data-lang]')) {
      b.setAttribute('aria-pressed', String(b.dataset.lang === current));
    }
  };
  container.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-lang]');
    if (b) setLang(b.dataset.lang);
  });
  onLangChange(sync);
  sync();
}
