//! The GDPR processing record (P4): the entry the school copies into its register of
//! processing activities, generated from the live config so that the contacts, retention
//! periods, screenshot setting and monitoring hours it states are the ones in force.
//!
//! Every line must be true of what the box does: a category of data the box does not hold,
//! a recipient who sees nothing or a feature that is off or not built is not written. When
//! the box changes what it keeps, this file changes with it (the test beside it lists every
//! field).

use std::fmt::Write as _;

use serde::Serialize;

use super::{DocumentConfig, DocumentError};
use crate::schedule::Lang;

/// One category of personal data and how long it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DataCategory {
    /// What the data is.
    pub category: String,
    /// What exactly is kept, or that nothing is.
    pub details: String,
    /// How long it is kept.
    pub retention: String,
    /// Retention in days when the config sets one; `None` when nothing is stored or the
    /// data lives as long as the account, the station or the session.
    pub retention_days: Option<u32>,
    /// The configuration key that sets the period, when one does.
    pub retention_setting: Option<String>,
}

/// The record, serialisable as JSON; [`GdprRecord::to_markdown`] gives the readable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GdprRecord {
    /// Language of the texts.
    pub language: Lang,
    /// Identifies what the record says: the first 12 hex digits of a SHA-256 of its content
    /// without the date, so it changes exactly when the processing it describes changes
    /// (another retention period, screenshots turned on…), and the school can tell whether
    /// the copy in its register is still current.
    pub version: String,
    /// The Lanterne version that generated it.
    pub software: String,
    /// When it was generated (ISO 8601 date, the box's local day).
    pub date: String,
    /// Name of the processing.
    pub processing: String,
    /// The controller: the school.
    pub controller: String,
    /// How to reach the controller.
    pub controller_contact: String,
    /// The data protection officer and how to reach them.
    pub dpo: String,
    /// The room whose box produced the record.
    pub room: String,
    /// Why the data is processed.
    pub purpose: String,
    /// Lawful basis (GDPR art. 6).
    pub legal_basis: String,
    /// Personal data processed, each with how long it is kept.
    pub data_categories: Vec<DataCategory>,
    /// People whose data is processed.
    pub data_subjects: Vec<String>,
    /// Who receives the data (all inside the school).
    pub recipients: Vec<String>,
    /// Recipients outside the school: always empty, stated explicitly.
    pub recipients_outside_school: Vec<String>,
    /// Whether anything is sent to a cloud service or as telemetry: never.
    pub cloud_or_telemetry: bool,
    /// Where the data is stored.
    pub location: String,
    /// How data is erased: retention purges and deletions.
    pub erasure: Vec<String>,
    /// Security measures.
    pub security_measures: Vec<String>,
    /// When screens may be watched (the P3 schedule).
    pub monitoring_hours: String,
    /// Monitoring-free hours within the access hours.
    pub monitoring_free_hours: String,
}

fn tr(lang: Lang, fr: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr.to_owned(),
        Lang::En => en.to_owned(),
    }
}

fn days(lang: Lang, n: u32) -> String {
    match lang {
        Lang::Fr if n <= 1 => format!("{n} jour"),
        Lang::Fr => format!("{n} jours"),
        Lang::En if n == 1 => "1 day".to_owned(),
        Lang::En => format!("{n} days"),
    }
}

/// A configured text, or what to fill in where it is missing.
fn configured(lang: Lang, value: &Option<String>, key: &str) -> String {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => match lang {
            Lang::Fr => {
                format!("À compléter : non renseigné dans la configuration du boîtier ({key})")
            }
            Lang::En => format!("To be completed: not set in the box's configuration ({key})"),
        },
    }
}

/// A category kept for a configured number of days.
fn kept_for(lang: Lang, category: String, details: String, n: u32, key: &str) -> DataCategory {
    DataCategory {
        category,
        details,
        retention: days(lang, n),
        retention_days: Some(n),
        retention_setting: Some(key.to_owned()),
    }
}

/// A category with a retention that no setting expresses in days.
fn kept_while(category: String, details: String, retention: String) -> DataCategory {
    DataCategory {
        category,
        details,
        retention,
        retention_days: None,
        retention_setting: None,
    }
}

/// Builds the record from the config, dated today (the box's local day).
pub fn gdpr_record(config: &DocumentConfig, lang: Lang) -> GdprRecord {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    gdpr_record_on(config, lang, now.date())
}

/// Builds the record from the config, dated `date`.
pub fn gdpr_record_on(config: &DocumentConfig, lang: Lang, date: time::Date) -> GdprRecord {
    let t = |fr: &str, en: &str| tr(lang, fr, en);
    let mut data_categories = vec![kept_while(
        t("Images des écrans des postes", "Images of the computers' screens"),
        t(
            "Vues en direct par les enseignants pendant les plages de surveillance (mosaïque de la classe, écran d'un poste en grand) et, quand un enseignant montre l'écran d'un élève à la classe, par les autres postes ; relayées par le boîtier, jamais enregistrées.",
            "Watched live by teachers during the monitoring hours (the class mosaic, one computer's screen full size) and, when a teacher shows a student's screen to the class, by the other computers; relayed by the box, never recorded.",
        ),
        t("Aucune conservation", "Not kept"),
    )];
    let helpers = super::helpers_fr_en(&config.remote_help_roles);
    if let Some(who) = &helpers {
        data_categories.push(kept_while(
            t("Écran et saisies pendant une aide à distance", "Screen and input during remote help"),
            match lang {
                Lang::Fr => format!(
                    "Seulement après que l'élève a accepté, sur son poste, la demande d'aide ({} la demande) : l'écran du poste est vu en direct par la personne qui aide, qui utilise la souris et le clavier du poste ; à toute heure, l'élève pouvant arrêter à tout moment. Rien n'est enregistré ; les étapes (demande, accord ou refus, fin et par qui) sont inscrites au journal des accès.",
                    who.0.to_lowercase()
                ),
                Lang::En => format!(
                    "Only once the student has accepted the request on their computer ({} asks): the computer's screen is watched live by the person helping, who uses the computer's mouse and keyboard; at any hour, and the student can end it at any time. Nothing is recorded; the steps (request, agreement or refusal, end and by whom) are written to the audit log.",
                    who.1.to_lowercase()
                ),
            },
            t("Aucune conservation", "Not kept"),
        ));
    }
    data_categories.push(if config.screenshots_enabled {
        kept_for(
            lang,
            t("Captures d'écran", "Screenshots"),
            t(
                "Image d'un écran prise à la demande d'un enseignant pendant les plages de surveillance, avec le poste, l'auteur et l'heure ; stockée sur le boîtier.",
                "A picture of one screen taken at a teacher's request during the monitoring hours, with the computer, who took it and when; stored on the box.",
            ),
            config.screenshot_retention_days,
            "privacy.screenshot_retention_days",
        )
    } else {
        kept_while(
            t("Captures d'écran", "Screenshots"),
            t(
                "Désactivées : aucune capture n'est prise ni conservée.",
                "Disabled: no screenshot is taken or kept.",
            ),
            t("Aucune conservation", "Not kept"),
        )
    });
    if config.hdmi_input {
        data_categories.push(kept_while(
            t(
                "Image de l'ordinateur de l'enseignant (entrée HDMI du boîtier)",
                "Image of the teacher's computer (the box's HDMI input)",
            ),
            t(
                "Captée seulement pendant que l'enseignant la montre à la classe, relayée en direct aux postes, jamais enregistrée.",
                "Captured only while the teacher shows it to the class, relayed live to the computers, never recorded.",
            ),
            t("Aucune conservation", "Not kept"),
        ));
    }
    data_categories.extend([
        kept_for(
            lang,
            t("Journal des accès", "Audit log"),
            t(
                "Pour chaque accès ou action : date et heure, auteur (identifiant du compte, poste, ou adresse réseau d'un poste qui s'inscrit), action, poste ou autre cible, résultat et détails (adresse web ouverte, commande lancée, postes d'une démonstration…).",
                "For every access or action: date and time, who (account name, computer, or network address of a computer enrolling), action, computer or other target, result and details (web address opened, command run, computers of a demo…).",
            ),
            config.audit_retention_days,
            "privacy.audit_retention_days",
        ),
        kept_for(
            lang,
            t("Messages des enseignants", "Teachers' messages"),
            t(
                "Auteur, texte, heure d'envoi, et pour chaque poste : remis ou non, heure de lecture.",
                "Sender, text, time sent, and for each computer: delivered or not, time read.",
            ),
            config.message_retention_days,
            "privacy.message_retention_days",
        ),
        kept_for(
            lang,
            t("Commandes lancées sur les postes", "Commands run on the computers"),
            t(
                "Commande et arguments, auteur, heure, et pour chaque poste : code de sortie, sortie standard et sortie d'erreur.",
                "Command and arguments, sender, time, and for each computer: exit code, standard output and error output.",
            ),
            config.command_retention_days,
            "privacy.command_retention_days",
        ),
        kept_for(
            lang,
            t(
                "Réponses des postes aux ordres (éteindre, redémarrer, fermer ou ouvrir la session, ouvrir une page web)",
                "Computers' answers to orders (shut down, restart, log out or open the session, open a web page)",
            ),
            t(
                "Pour chaque poste : ordre exécuté ou non, et pourquoi ; en mémoire seulement (un redémarrage du boîtier les efface plus tôt). L'ordre lui-même est au journal des accès.",
                "For each computer: whether it carried out the order, and why not; in memory only (a box restart erases them sooner). The order itself is in the audit log.",
            ),
            config.order_retention_days,
            "privacy.order_retention_days",
        ),
        kept_while(
            t("Postes inscrits", "Enrolled computers"),
            t(
                "Nom du poste, nom d'hôte, adresse MAC (pour l'allumage à distance), empreinte de son certificat, date d'inscription, révoqué ou non.",
                "Computer name, host name, MAC address (for Wake-on-LAN), certificate fingerprint, enrolment date, revoked or not.",
            ),
            t(
                "Tant que le poste est inscrit ; effacé quand un administrateur le supprime",
                "While the computer is enrolled; erased when an administrator deletes it",
            ),
        ),
        kept_while(
            t(
                "Comptes des enseignants, administrateurs et techniciens",
                "Teacher, administrator and technician accounts",
            ),
            t(
                "Identifiant, rôle, date de création, compte désactivé ou non, empreinte argon2id du mot de passe, secret TOTP, empreintes des codes de secours et date de leur usage.",
                "Login name, role, creation date, disabled or not, argon2id password hash, TOTP secret, recovery-code hashes and when each was used.",
            ),
            t(
                "Tant que le compte existe ; effacé quand un administrateur le supprime",
                "While the account exists; erased when an administrator deletes it",
            ),
        ),
        kept_while(
            t("Sessions de connexion", "Sign-in sessions"),
            t(
                "Empreinte du jeton de session, compte, heures de début et de fin.",
                "Hash of the session token, account, start and end times.",
            ),
            match lang {
                Lang::Fr => format!(
                    "Jusqu'à leur expiration, {} heures au plus, ou la déconnexion",
                    config.session_hours
                ),
                Lang::En => format!(
                    "Until they expire, {} hours at most, or sign-out",
                    config.session_hours
                ),
            },
        ),
        kept_while(
            t("Journal technique du boîtier", "The box's technical log"),
            t(
                "Noms et noms d'hôte des postes, adresses réseau des postes et des tablettes, identifiant du compte qui verrouille ou lance une démonstration, et une copie de chaque ligne du journal des accès (qui, quoi, sur quel poste, le résultat) ; jamais de mot de passe, de jeton ni de code.",
                "Computer names and host names, network addresses of computers and tablets, the name of the account that locks or starts a demo, and a copy of each audit-log line (who, what, on which computer, the result); never a password, token or code.",
            ),
            t(
                "Selon la configuration du journal système (journald) du boîtier : limité en taille, sans durée fixée par Lanterne",
                "As the box's system journal (journald) is configured: limited in size, no period set by Lanterne",
            ),
        ),
        kept_while(
            t(
                "Nom de l'élève connecté à un poste et sa main levée",
                "Name of the student signed in at a computer, and their raised hand",
            ),
            t(
                "Nom affiché du compte ouvert sur le poste (pour que l'enseignant sache qui est où) et, quand l'élève demande de l'aide, l'ordre de sa demande ; en mémoire seulement, jamais écrits sur le disque du boîtier.",
                "Display name of the account signed in at the computer (so the teacher knows who sits where) and, when the student asks for help, the order of the request; in memory only, never written to the box's disk.",
            ),
            t(
                "Le temps de la session de l'élève : effacés quand il se déconnecte, quand le poste se déconnecte du boîtier ou au redémarrage du boîtier ; la main, dès que l'élève la baisse ou que l'enseignant l'efface",
                "For the student's session: erased when they sign out, when the computer disconnects from the box or when the box restarts; the hand as soon as the student lowers it or the teacher clears it",
            ),
        ),
    ]);

    let mut recipients = vec![
        t(
            "Enseignants connectés : images en direct pendant les plages de surveillance, leurs messages et accusés de lecture, sorties des commandes, réponses aux ordres, qui est connecté à quel poste et les mains levées",
            "Signed-in teachers: live images during the monitoring hours, their messages and read receipts, command output, answers to orders, who is signed in at which computer and the raised hands",
        ),
        t(
            "Les autres élèves de la salle, quand un enseignant montre l'écran d'un élève (ou une partie) à la classe",
            "The other students in the room, when a teacher shows a student's screen (or part of it) to the class",
        ),
        t(
            "L'élève au poste : les messages envoyés à ce poste",
            "The student at a computer: the messages sent to that computer",
        ),
        t(
            "Administrateurs de l'établissement : journal des accès, comptes, postes, configuration, cette fiche",
            "The school's administrators: audit log, accounts, computers, configuration, this record",
        ),
        t(
            "Techniciens connectés : la liste des postes de la salle et leur état",
            "Signed-in technicians: the list of the room's computers and their state",
        ),
    ];
    if helpers.is_some() {
        recipients.push(t(
            "La personne qui aide un élève à distance, avec son accord : l'écran de ce poste pendant l'aide",
            "The person helping a student remotely, with the student's agreement: that computer's screen during the help",
        ));
    }
    if config.screenshots_enabled {
        recipients.push(t(
            "Captures d'écran : l'enseignant qui l'a prise et les administrateurs",
            "Screenshots: the teacher who took one, and administrators",
        ));
    }
    if config.hdmi_input {
        recipients.push(t(
            "Image de l'ordinateur de l'enseignant : les postes de la salle, pendant qu'il la montre",
            "The teacher's computer's image: the room's computers, while the teacher shows it",
        ));
    }
    recipients.push(t(
        "Aucun destinataire extérieur à l'établissement",
        "No recipient outside the school",
    ));

    let mut record = GdprRecord {
        language: lang,
        version: String::new(),
        software: format!("Lanterne {}", config.software_version.trim()),
        date: String::new(),
        processing: t(
            "Supervision pédagogique des postes informatiques de la salle (Lanterne)",
            "Teaching supervision of the room's computers (Lanterne)",
        ),
        controller: config.school_name.trim().to_owned(),
        controller_contact: configured(lang, &config.controller_contact, "privacy.controller_contact"),
        dpo: configured(lang, &config.dpo, "privacy.dpo"),
        room: config.room_name.trim().to_owned(),
        purpose: {
            let mut purpose = t(
                "Accompagner les élèves pendant les activités pédagogiques sur ordinateur : voir les écrans pendant les plages annoncées, montrer un écran à la classe, verrouiller les postes, envoyer des messages, lancer des commandes approuvées, allumer, éteindre ou redémarrer les postes, ouvrir une page web.",
                "Support students during computer-based teaching activities: view screens during the announced hours, show a screen to the class, lock computers, send messages, run approved commands, power computers on, off or restart them, open a web page.",
            );
            if helpers.is_some() {
                purpose.push_str(&t(
                    " Aider un élève en prenant la main sur son poste, après son accord explicite.",
                    " Help a student by taking control of their computer, after their explicit agreement.",
                ));
            }
            purpose
        },
        legal_basis: t(
            "Exécution d'une mission d'intérêt public : l'enseignement (RGPD, article 6-1-e).",
            "Performance of a task carried out in the public interest: education (GDPR, Article 6(1)(e)).",
        ),
        data_categories,
        data_subjects: vec![
            t("Élèves utilisant les postes de la salle", "Students using the room's computers"),
            t("Enseignants", "Teachers"),
            t("Administrateurs et techniciens de l'établissement", "The school's administrators and technicians"),
        ],
        recipients,
        recipients_outside_school: Vec::new(),
        cloud_or_telemetry: false,
        location: t(
            "Sur le boîtier Lanterne de la salle, dans les locaux de l'établissement ; aucun service en ligne, aucune télémétrie, aucun transfert hors de l'établissement.",
            "On the room's Lanterne box, on the school's premises; no cloud service, no telemetry, no transfer outside the school.",
        ),
        erasure: vec![
            t(
                "Le boîtier efface chaque heure ce qui a dépassé sa durée de conservation (au plus une heure de retard).",
                "Every hour the box erases what is past its retention period (at most an hour late).",
            ),
            t(
                "Un administrateur peut supprimer un compte ou un poste : tout ce qui le concerne est effacé, et ses lignes du journal des accès le désignent par un pseudonyme (account#12, station#7) au lieu de son nom.",
                "An administrator can delete an account or a computer: everything about it is erased, and its audit lines name it by a pseudonym (account#12, station#7) instead of its name.",
            ),
            t(
                "Un poste révoqué ne peut plus se connecter ; sa liaison en cours est coupée aussitôt.",
                "A revoked computer can no longer connect; its live link is cut at once.",
            ),
        ],
        security_measures: vec![
            t("Liaison boîtier–postes chiffrée en TLS 1.3 avec authentification mutuelle par certificats", "Box–computer link encrypted with TLS 1.3 and mutual certificate authentication"),
            t("Accès enseignant et administrateur uniquement en HTTPS", "Teacher and administrator access over HTTPS only"),
            t("Mots de passe d'au moins 8 caractères (majuscule, minuscule, chiffre, caractère spécial), stockés en empreintes argon2id", "Passwords of at least 8 characters (upper case, lower case, digit, special character), stored as argon2id hashes"),
            t("Double authentification TOTP (RFC 6238) et codes de secours à usage unique", "TOTP two-factor authentication (RFC 6238) and single-use recovery codes"),
            t("Journal de chaque accès, consultable et exportable par les administrateurs", "Every access logged; the log can be viewed and exported by administrators"),
            t("Surveillance limitée aux plages horaires configurées, avec une plage sans surveillance chaque jour d'ouverture ; voyant sur le boîtier et indicateur sur le poste visionné", "Monitoring limited to the configured hours, with a monitoring-free slot every day the room is open; a light on the box and an indicator on the watched computer"),
            t("Rôles séparés (enseignant, administrateur, technicien) limitant chaque compte à ce qu'il doit faire", "Separate roles (teacher, administrator, technician) limiting each account to what it needs"),
        ],
        monitoring_hours: config.schedule.monitoring_summary(lang),
        monitoring_free_hours: config.schedule.free_summary(lang),
    };
    if helpers.is_some() {
        record.security_measures.push(t(
            "Prise en main à distance seulement après l'accord explicite de l'élève (un clic sur « Accepter » ; refus au bout de 30 s sans réponse), arrêtable à tout moment par l'élève, signalée par un bandeau sur le poste et le clignotement du voyant du boîtier",
            "Remote control only after the student's explicit agreement (a click on \"Accepter\"; refused after 30 s without an answer), which the student can end at any time, shown by a banner on the computer and the box's light blinking",
        ));
    }
    record.version = record.digest();
    record.date = date.to_string();
    record
}

fn hex12(bytes: &[u8]) -> String {
    bytes.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn md_escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

impl GdprRecord {
    /// See [`GdprRecord::version`]: the record's content without its version and date.
    fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let content = GdprRecord {
            version: String::new(),
            date: String::new(),
            ..self.clone()
        };
        let json = serde_json::to_vec(&content).expect("the record serialises");
        hex12(&Sha256::digest(&json))
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, DocumentError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The record as Markdown, one section per heading of a register entry.
    pub fn to_markdown(&self) -> String {
        let lang = self.language;
        let h = |fr: &str, en: &str| tr(lang, fr, en);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# {} — {}\n",
            h(
                "Fiche de registre des traitements",
                "Record of processing activities"
            ),
            self.processing
        );
        // French puts a space before a colon, English does not.
        let colon = h(" :", ":");
        for (label, value) in [
            (h("Version de la fiche", "Record version"), &self.version),
            (h("Date", "Date"), &self.date),
            (h("Généré par", "Generated by"), &self.software),
            (
                h("Responsable du traitement", "Controller"),
                &self.controller,
            ),
            (
                h("Contact du responsable", "Controller's contact"),
                &self.controller_contact,
            ),
            (
                h(
                    "Délégué à la protection des données",
                    "Data protection officer",
                ),
                &self.dpo,
            ),
            (h("Salle", "Room"), &self.room),
        ] {
            let _ = writeln!(out, "- **{label}**{colon} {value}");
        }
        out.push('\n');
        let _ = writeln!(out, "## {}\n\n{}\n", h("Finalité", "Purpose"), self.purpose);
        let _ = writeln!(
            out,
            "## {}\n\n{}\n",
            h("Base légale", "Legal basis"),
            self.legal_basis
        );
        let _ = writeln!(
            out,
            "## {}\n\n| {} | {} | {} |\n|---|---|---|",
            h(
                "Catégories de données et durées de conservation",
                "Data categories and retention"
            ),
            h("Données", "Data"),
            h("Détail", "Details"),
            h("Conservation", "Retention")
        );
        for c in &self.data_categories {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                md_escape_cell(&c.category),
                md_escape_cell(&c.details),
                md_escape_cell(&c.retention)
            );
        }
        let list = |out: &mut String, title: String, items: &[String]| {
            let _ = writeln!(out, "\n## {title}\n");
            for item in items {
                let _ = writeln!(out, "- {item}");
            }
        };
        list(
            &mut out,
            h("Personnes concernées", "People concerned"),
            &self.data_subjects,
        );
        list(&mut out, h("Destinataires", "Recipients"), &self.recipients);
        let _ = writeln!(
            out,
            "\n## {}\n\n{}",
            h("Lieu de conservation", "Where the data is kept"),
            self.location
        );
        list(&mut out, h("Effacement", "Erasure"), &self.erasure);
        list(
            &mut out,
            h("Mesures de sécurité", "Security measures"),
            &self.security_measures,
        );
        let _ = writeln!(
            out,
            "\n## {}\n\n- {}{colon} {}\n- {}{colon} {}",
            h("Plages de surveillance", "Monitoring hours"),
            h("Surveillance possible", "Monitoring possible"),
            self.monitoring_hours,
            h("Sans aucune surveillance", "No monitoring at all"),
            self.monitoring_free_hours
        );
        out
    }
}
