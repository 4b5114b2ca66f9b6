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
    'login.notice': 'Ce que vous voyez des écrans des élèves est confidentiel, et chaque consultation est enregistrée dans le journal de la salle.',

    'room.title': '{room} — Lanterne',
    'room.loading': 'Chargement de la salle…',
    'room.logout': 'Déconnexion',
    'room.back': 'Retour à la classe',
    'room.empty': 'Aucun poste n’est inscrit dans cette salle.',
    'room.confidential': 'Ce que vous voyez des écrans des élèves est confidentiel ; chaque consultation est enregistrée.',
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
    'reason.outside-monitoring-hours': 'La plage horaire de surveillance est terminée.',
    'reason.monitoring-not-configured': 'La surveillance n’est pas configurée sur ce boîtier : aucun écran ne peut être observé.',
    'reason.no-indicator': 'Ce poste ne peut pas afficher « Écran observé » : il ne peut pas être visionné.',

    // Monitoring hours and what the students are shown (the box decides; the tablet says it).
    'mon.off': 'Surveillance non configurée : aucun écran ne peut être observé (pas de plages horaires dans la configuration du boîtier). Verrouillage, messages et démonstration du PC enseignant restent disponibles.',
    'mon.allowed': 'Surveillance autorisée jusqu’à {until}.',
    'mon.allowedOpen': 'Surveillance autorisée.',
    'mon.closed': 'Surveillance interdite maintenant. Prochaine plage : {next}.',
    'mon.closedNever': 'Surveillance interdite : aucune plage de surveillance n’est prévue.',
    'room.noIndicator': 'Non visionnable : pas d’indicateur',
    'room.noIndicatorHelp': 'Ce poste ne peut pas afficher « Écran observé » : il n’envoie aucune image.',
    'room.badgeShown': 'Le poste affiche « Écran observé »',

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
    'demo.showHdmi': 'Écran enseignant',
    'demo.titleHdmi': 'Montrer l’écran de l’ordinateur de l’enseignant (HDMI)',
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
    'demo.region.custom': 'Une zone (en % de l’écran)',
    'demo.custom.x': 'Gauche %',
    'demo.custom.y': 'Haut %',
    'demo.custom.w': 'Largeur %',
    'demo.custom.h': 'Hauteur %',
    'demo.customInvalid': 'La zone doit tenir dans l’écran : gauche + largeur et haut + hauteur au plus 100 %, largeur et hauteur non nulles.',
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
    'login.notice': 'What you see of the students’ screens is confidential, and every view is recorded in the room’s log.',

    'room.title': '{room} — Lanterne',
    'room.loading': 'Loading the room…',
    'room.logout': 'Log out',
    'room.back': 'Back to the class',
    'room.empty': 'No station is enrolled in this room.',
    'room.confidential': 'What you see of the students’ screens is confidential; every view is recorded.',
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
    'reason.outside-monitoring-hours': 'The monitoring window has closed.',
    'reason.monitoring-not-configured': 'Monitoring is not configured on this box: no screen can be watched.',
    'reason.no-indicator': 'This station cannot show “Screen watched”, so it cannot be watched.',

    'mon.off': 'Monitoring not configured: no screen can be watched (the box’s configuration has no monitoring hours). Locking, messages and showing the teacher’s PC still work.',
    'mon.allowed': 'Monitoring allowed until {until}.',
    'mon.allowedOpen': 'Monitoring allowed.',
    'mon.closed': 'Monitoring not allowed now. Next window: {next}.',
    'mon.closedNever': 'Monitoring not allowed: no monitoring window is scheduled.',
    'room.noIndicator': 'Cannot be watched: no indicator',
    'room.noIndicatorHelp': 'This station cannot show “Screen watched”: it sends no picture.',
    'room.badgeShown': 'The station shows “Screen watched”',

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
    'demo.showHdmi': 'Teacher’s screen',
    'demo.titleHdmi': 'Show the teacher’s computer (HDMI)',
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
    'demo.region.custom': 'An area (in % of the screen)',
    'demo.custom.x': 'Left %',
    'demo.custom.y': 'Top %',
    'demo.custom.w': 'Width %',
    'demo.custom.h': 'Height %',
    'demo.customInvalid': 'The area must fit in the screen: left + width and top + height at most 100 %, width and height not zero.',
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

// ---- access & privacy strings (login second factor, my account, admin pages) ----
// Kept in one block of their own so the room page's strings can change beside them freely.
const ACCESS_STRINGS = {
  fr: {
    'login.code': 'Code de l’application d’authentification',
    'login.codeHint': 'Saisissez le code à 6 chiffres affiché par votre application.',
    'login.recovery': 'Code de secours',
    'login.useRecovery': 'Utiliser un code de secours',
    'login.useCode': 'Utiliser le code de l’application',
    'login.error.bad_credentials': 'Identifiant ou mot de passe incorrect.',
    'login.error.totp_required': 'Saisissez le code de votre application d’authentification.',
    'login.error.bad_code': 'Code incorrect ou déjà utilisé. Attendez le code suivant et réessayez.',
    'login.error.bad_recovery_code': 'Code de secours inconnu ou déjà utilisé.',
    'login.error.locked_out': 'Trop d’essais infructueux. Réessayez dans {min} min ({s} s).',
    'login.enrolHeading': 'Activez la double authentification',
    'login.enrolIntro': 'Votre compte doit utiliser un second facteur avant de continuer.',
    'login.newPasswordHeading': 'Choisissez votre mot de passe',
    'login.newPasswordIntro': 'Le mot de passe créé au premier démarrage doit être remplacé avant de continuer.',
    'login.currentPassword': 'Mot de passe actuel',
    'login.newPassword': 'Nouveau mot de passe',
    'login.newPasswordAgain': 'Nouveau mot de passe (encore)',
    'login.passwordRule': 'Au moins 8 caractères, dont une majuscule, une minuscule, un chiffre et un caractère spécial.',
    'login.newPasswordSubmit': 'Enregistrer',
    'login.passwordsDiffer': 'Les deux mots de passe ne sont pas identiques.',
    'account.changePassword': 'Changer mon mot de passe',
    'account.passwordChanged': 'Mot de passe changé.',
    'account.confirmPassword': 'Confirmez avec votre mot de passe',

    'totp.scan': 'Scannez ce QR code avec votre application d’authentification (FreeOTP, Aegis, Google Authenticator…), ou saisissez la clé ci-dessous.',
    'totp.secret': 'Clé secrète',
    'totp.confirmLabel': 'Code affiché par l’application',
    'totp.confirm': 'Valider',
    'totp.badCode': 'Ce code ne correspond pas. Vérifiez l’heure du téléphone et réessayez.',
    'totp.codesHeading': 'Vos codes de secours',
    'totp.codesIntro': 'Chaque code permet une seule connexion si vous perdez votre téléphone. Notez-les ou imprimez-les maintenant : ils ne seront plus affichés.',
    'totp.codesDone': 'J’ai noté mes codes',
    'totp.start': 'Activer la double authentification',

    'account.title': 'Mon compte — Lanterne',
    'account.heading': 'Mon compte',
    'account.user': 'Compte : {name} ({role})',
    'account.totpOn': 'Double authentification : activée.',
    'account.totpOff': 'Double authentification : désactivée.',
    'account.totpRequired': 'Votre rôle exige la double authentification : activez-la pour continuer.',
    'account.codesLeft': 'Codes de secours restants : {n}',
    'account.regenerate': 'Générer de nouveaux codes de secours',
    'account.regenerateConfirm': 'Les anciens codes de secours ne fonctionneront plus. Continuer ?',
    'account.back': 'Retour à la salle',
    'account.admin': 'Administration',

    'role.admin': 'administrateur',
    'role.teacher': 'enseignant',
    'role.technician': 'technicien',

    'admin.title': 'Administration — Lanterne',
    'admin.heading': 'Administration',
    'admin.accounts': 'Comptes',
    'admin.username': 'Identifiant',
    'admin.role': 'Rôle',
    'admin.password': 'Mot de passe',
    'admin.create': 'Créer le compte',
    'admin.created': 'Compte {name} créé.',
    'admin.state': 'État',
    'admin.totp': 'Double authentification',
    'admin.actions': 'Actions',
    'admin.enabled': 'actif',
    'admin.disabled': 'désactivé',
    'admin.yes': 'oui',
    'admin.no': 'non',
    'admin.disable': 'Désactiver',
    'admin.enable': 'Réactiver',
    'admin.resetPassword': 'Nouveau mot de passe',
    'admin.resetPrompt': 'Nouveau mot de passe pour {name} (8 caractères minimum, avec majuscule, minuscule, chiffre et caractère spécial) :',
    'admin.resetDone': 'Mot de passe de {name} changé ; ses sessions sont fermées.',
    'admin.resetTotp': 'Réinitialiser la double authentification',
    'admin.resetTotpConfirm': 'Désactiver la double authentification de {name} (téléphone et codes de secours perdus) ? Ses sessions seront fermées ; il devra la réactiver.',
    'admin.resetTotpDone': 'Double authentification de {name} désactivée ; ses sessions sont fermées.',
    'admin.audit': 'Journal d’audit',
    'admin.actor': 'Qui',
    'admin.action': 'Action',
    'admin.target': 'Poste / cible',
    'admin.since': 'Du',
    'admin.until': 'Au (inclus)',
    'admin.filter': 'Filtrer',
    'admin.exportCsv': 'Exporter en CSV',
    'admin.exportJson': 'Exporter en JSON',
    'admin.when': 'Quand',
    'admin.result': 'Résultat',
    'admin.detail': 'Détail',
    'admin.auditEmpty': 'Aucune entrée ne correspond.',
    'admin.roomLink': 'Lien de la salle',
    'admin.roomLinkIntro': 'Le lien (ou QR code) ouvre la connexion de la salle sur la tablette. En générer un nouveau invalide immédiatement l’ancien : faites-le après tout incident.',
    'admin.regenerate': 'Générer un nouveau lien',
    'admin.regenerateConfirm': 'L’ancien lien cessera de fonctionner immédiatement. Continuer ?',
    'admin.documents': 'Documents',
    'admin.posterHtml': 'Affiche de la salle (page imprimable)',
    'admin.posterPdf': 'Affiche de la salle (PDF)',
    'admin.gdprMd': 'Fiche de registre RGPD (Markdown)',
    'admin.gdprJson': 'Fiche de registre RGPD (JSON)',
    'admin.screenshots': 'Captures d’écran',
    'admin.screenshotsOff': 'Les captures d’écran sont désactivées sur ce boîtier.',
    'admin.screenshotsEmpty': 'Aucune capture conservée.',
    'admin.screenshotOf': '{station}, par {by}, le {when}',
    'admin.myAccount': 'Mon compte',
    'admin.error': 'Erreur : {message}',
    'admin.deleteAccount': 'Supprimer',
    'admin.deleteAccountConfirm': 'Supprimer définitivement le compte {name} ? Ses sessions, son mot de passe et sa double authentification sont effacés ; le journal d’audit le désignera par un pseudonyme (account#…). Cette action est irréversible.',
    'admin.deleteAccountDone': 'Compte {name} supprimé.',
    'admin.stations': 'Postes',
    'admin.stationsIntro': 'Révoquer un poste coupe aussitôt sa liaison et refuse son certificat (poste volé, réformé ou compromis) ; il reste dans la liste. Supprimer un poste efface tout ce que le boîtier sait de lui ; le journal d’audit le désigne ensuite par un pseudonyme (station#…).',
    'admin.stationName': 'Poste',
    'admin.hostname': 'Nom d’hôte',
    'admin.mac': 'Adresse MAC',
    'admin.enrolled': 'inscrit',
    'admin.revoked': 'révoqué',
    'admin.stationsEmpty': 'Aucun poste inscrit.',
    'admin.revoke': 'Révoquer',
    'admin.revokeConfirm': 'Révoquer le poste {name} ? Sa liaison est coupée immédiatement et il ne pourra plus se connecter sans être inscrit de nouveau.',
    'admin.revokeDone': 'Poste {name} révoqué ; sa liaison est coupée.',
    'admin.deleteStation': 'Supprimer',
    'admin.deleteStationConfirm': 'Supprimer définitivement le poste {name} ? Son nom, son nom d’hôte, son adresse MAC, ses accusés de lecture, les sorties de commandes et ses captures d’écran sont effacés. Cette action est irréversible.',
    'admin.deleteStationDone': 'Poste {name} supprimé.',

    'forbidden.title': 'Accès refusé — Lanterne',
    'forbidden.heading': 'Accès réservé aux administrateurs',
    'forbidden.body': 'Votre compte ne permet pas d’ouvrir les pages d’administration. Cette tentative est enregistrée dans le journal.',
    'forbidden.room': 'Retour à la salle',
    'forbidden.account': 'Mon compte',

    'shot.take': 'Capture d’écran',
    'shot.done': 'Capture enregistrée sur le boîtier.',
    'shot.failed': 'Capture impossible : {message}',

    'pwrule.password_too_short': 'le mot de passe doit compter au moins 8 caractères',
    'pwrule.password_too_long': 'le mot de passe doit compter au plus 256 caractères',
    'pwrule.password_needs_upper': 'le mot de passe doit contenir une majuscule',
    'pwrule.password_needs_lower': 'le mot de passe doit contenir une minuscule',
    'pwrule.password_needs_digit': 'le mot de passe doit contenir un chiffre',
    'pwrule.password_needs_special': 'le mot de passe doit contenir un caractère spécial',
  },
  en: {
    'login.code': 'Authenticator app code',
    'login.codeHint': 'Enter the 6-digit code shown by your app.',
    'login.recovery': 'Recovery code',
    'login.useRecovery': 'Use a recovery code',
    'login.useCode': 'Use the app code',
    'login.error.bad_credentials': 'Wrong username or password.',
    'login.error.totp_required': 'Enter the code from your authenticator app.',
    'login.error.bad_code': 'Wrong or already used code. Wait for the next code and try again.',
    'login.error.bad_recovery_code': 'Unknown or already used recovery code.',
    'login.error.locked_out': 'Too many failed attempts. Try again in {min} min ({s} s).',
    'login.enrolHeading': 'Turn on two-factor login',
    'login.enrolIntro': 'Your account must use a second factor before going on.',
    'login.newPasswordHeading': 'Choose your password',
    'login.newPasswordIntro': 'The password made at the first start must be replaced before going on.',
    'login.currentPassword': 'Current password',
    'login.newPassword': 'New password',
    'login.newPasswordAgain': 'New password (again)',
    'login.passwordRule': 'At least 8 characters, with an upper-case letter, a lower-case letter, a digit and a special character.',
    'login.newPasswordSubmit': 'Save',
    'login.passwordsDiffer': 'The two passwords differ.',
    'account.changePassword': 'Change my password',
    'account.passwordChanged': 'Password changed.',
    'account.confirmPassword': 'Confirm with your password',

    'totp.scan': 'Scan this QR code with your authenticator app (FreeOTP, Aegis, Google Authenticator…), or type the key below.',
    'totp.secret': 'Secret key',
    'totp.confirmLabel': 'Code shown by the app',
    'totp.confirm': 'Confirm',
    'totp.badCode': 'This code does not match. Check the phone’s clock and try again.',
    'totp.codesHeading': 'Your recovery codes',
    'totp.codesIntro': 'Each code signs you in once if you lose your phone. Write them down or print them now: they will not be shown again.',
    'totp.codesDone': 'I have saved my codes',
    'totp.start': 'Turn on two-factor login',

    'account.title': 'My account — Lanterne',
    'account.heading': 'My account',
    'account.user': 'Account: {name} ({role})',
    'account.totpOn': 'Two-factor login: on.',
    'account.totpOff': 'Two-factor login: off.',
    'account.totpRequired': 'Your role requires two-factor login: turn it on to go on.',
    'account.codesLeft': 'Recovery codes left: {n}',
    'account.regenerate': 'Make new recovery codes',
    'account.regenerateConfirm': 'The old recovery codes will stop working. Go on?',
    'account.back': 'Back to the room',
    'account.admin': 'Administration',

    'role.admin': 'admin',
    'role.teacher': 'teacher',
    'role.technician': 'technician',

    'admin.title': 'Administration — Lanterne',
    'admin.heading': 'Administration',
    'admin.accounts': 'Accounts',
    'admin.username': 'Username',
    'admin.role': 'Role',
    'admin.password': 'Password',
    'admin.create': 'Create the account',
    'admin.created': 'Account {name} created.',
    'admin.state': 'State',
    'admin.totp': 'Two-factor',
    'admin.actions': 'Actions',
    'admin.enabled': 'active',
    'admin.disabled': 'disabled',
    'admin.yes': 'yes',
    'admin.no': 'no',
    'admin.disable': 'Disable',
    'admin.enable': 'Enable',
    'admin.resetPassword': 'New password',
    'admin.resetPrompt': 'New password for {name} (at least 8 characters, with upper case, lower case, a digit and a special character):',
    'admin.resetDone': 'Password of {name} changed; their sessions are closed.',
    'admin.resetTotp': 'Reset two-factor login',
    'admin.resetTotpConfirm': 'Turn off two-factor login for {name} (phone and recovery codes lost)? Their sessions end; they will have to set it up again.',
    'admin.resetTotpDone': 'Two-factor login of {name} turned off; their sessions are closed.',
    'admin.audit': 'Audit log',
    'admin.actor': 'Who',
    'admin.action': 'Action',
    'admin.target': 'Station / target',
    'admin.since': 'From',
    'admin.until': 'To (inclusive)',
    'admin.filter': 'Filter',
    'admin.exportCsv': 'Export as CSV',
    'admin.exportJson': 'Export as JSON',
    'admin.when': 'When',
    'admin.result': 'Result',
    'admin.detail': 'Detail',
    'admin.auditEmpty': 'No entry matches.',
    'admin.roomLink': 'Room link',
    'admin.roomLinkIntro': 'The link (or QR code) opens the room’s sign-in on the tablet. Making a new one invalidates the old one at once: do it after any incident.',
    'admin.regenerate': 'Make a new link',
    'admin.regenerateConfirm': 'The old link will stop working at once. Go on?',
    'admin.documents': 'Documents',
    'admin.posterHtml': 'Room notice (printable page)',
    'admin.posterPdf': 'Room notice (PDF)',
    'admin.gdprMd': 'GDPR processing record (Markdown)',
    'admin.gdprJson': 'GDPR processing record (JSON)',
    'admin.screenshots': 'Screenshots',
    'admin.screenshotsOff': 'Screenshots are turned off on this box.',
    'admin.screenshotsEmpty': 'No screenshot kept.',
    'admin.screenshotOf': '{station}, by {by}, on {when}',
    'admin.myAccount': 'My account',
    'admin.error': 'Error: {message}',
    'admin.deleteAccount': 'Delete',
    'admin.deleteAccountConfirm': 'Delete the account {name} for good? Its sessions, password and two-factor login are erased; the audit log will name it by a pseudonym (account#…). This cannot be undone.',
    'admin.deleteAccountDone': 'Account {name} deleted.',
    'admin.stations': 'Stations',
    'admin.stationsIntro': 'Revoking a station cuts its link at once and refuses its certificate (a stolen, retired or compromised PC); it stays listed. Deleting a station erases everything the box knows about it; the audit log then names it by a pseudonym (station#…).',
    'admin.stationName': 'Station',
    'admin.hostname': 'Host name',
    'admin.mac': 'MAC address',
    'admin.enrolled': 'enrolled',
    'admin.revoked': 'revoked',
    'admin.stationsEmpty': 'No station enrolled.',
    'admin.revoke': 'Revoke',
    'admin.revokeConfirm': 'Revoke the station {name}? Its link is cut at once and it cannot connect again unless enrolled anew.',
    'admin.revokeDone': 'Station {name} revoked; its link is cut.',
    'admin.deleteStation': 'Delete',
    'admin.deleteStationConfirm': 'Delete the station {name} for good? Its name, host name, MAC address, read receipts, command output and screenshots are erased. This cannot be undone.',
    'admin.deleteStationDone': 'Station {name} deleted.',

    'forbidden.title': 'Access refused — Lanterne',
    'forbidden.heading': 'For admins only',
    'forbidden.body': 'Your account cannot open the administration pages. This attempt is recorded in the log.',
    'forbidden.room': 'Back to the room',
    'forbidden.account': 'My account',

    'shot.take': 'Screenshot',
    'shot.done': 'Screenshot kept on the box.',
    'shot.failed': 'Screenshot failed: {message}',

    'pwrule.password_too_short': 'the password must have at least 8 characters',
    'pwrule.password_too_long': 'the password must have at most 256 characters',
    'pwrule.password_needs_upper': 'the password needs an upper-case letter',
    'pwrule.password_needs_lower': 'the password needs a lower-case letter',
    'pwrule.password_needs_digit': 'the password needs a digit',
    'pwrule.password_needs_special': 'the password needs a special character',
  },
};
for (const lang of Object.keys(ACCESS_STRINGS)) Object.assign(STRINGS[lang], ACCESS_STRINGS[lang]);
// ---- end of access & privacy strings ----

// ---- tablet console: header menu, lock bar of the other pages, connection ----
const TABLET_STRINGS = {
  fr: {
    'menu.open': 'Menu',
    'quick.bar': 'Verrouillage de la classe',
    'quick.lock': 'Verrouiller la classe',
    'quick.unlock': 'Déverrouiller la classe',
    'quick.result': '{title} : {text}',
    'hand.title': 'Mains levées ({n})',
    'hand.tile': '{n} (main levée)',
    'hand.clear': 'Vu',
    'hand.clearOf': 'Vu : effacer la main levée de {name}',
    'find.label': 'Trouver un élève ou un poste',
    'find.placeholder': 'Nom de l’élève ou du poste',
    'find.count': '{n} poste(s) trouvé(s)',
  },
  en: {
    'menu.open': 'Menu',
    'quick.bar': 'Class lock',
    'quick.lock': 'Lock the class',
    'quick.unlock': 'Unlock the class',
    'quick.result': '{title}: {text}',
    'hand.title': 'Raised hands ({n})',
    'hand.tile': '{n} (hand raised)',
    'hand.clear': 'Seen',
    'hand.clearOf': 'Seen: clear the raised hand of {name}',
    'find.label': 'Find a student or a station',
    'find.placeholder': 'Student or station name',
    'find.count': '{n} station(s) found',
  },
};
for (const lang of Object.keys(TABLET_STRINGS)) Object.assign(STRINGS[lang], TABLET_STRINGS[lang]);
// ---- end of tablet console strings ----

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
