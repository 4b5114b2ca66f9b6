//! The GDPR processing record (P4): the entry the school copies into its register of
//! processing activities, generated from the live config so that the retention periods,
//! the screenshot setting and the monitoring hours it states are the ones in force.

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
    /// data lives as long as the account.
    pub retention_days: Option<u32>,
}

/// The record, serialisable as JSON; [`GdprRecord::to_markdown`] gives the readable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GdprRecord {
    /// Language of the texts.
    pub language: Lang,
    /// Name of the processing.
    pub processing: String,
    /// The controller: the school.
    pub controller: String,
    /// The room whose box produced the record.
    pub room: String,
    /// Why the data is processed.
    pub purpose: String,
    /// Lawful basis (GDPR art. 6).
    pub legal_basis: String,
    /// Personal data processed.
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

/// Builds the record from the config.
pub fn gdpr_record(config: &DocumentConfig, lang: Lang) -> GdprRecord {
    let mut data_categories = vec![
        DataCategory {
            category: tr(lang, "Images des écrans des postes", "Images of the computers' screens"),
            details: tr(
                lang,
                "Visionnées en direct par l'enseignant pendant les plages de surveillance ; jamais enregistrées.",
                "Viewed live by the teacher during the monitoring hours; never recorded.",
            ),
            retention: tr(lang, "Aucune conservation", "Not kept"),
            retention_days: None,
        },
        DataCategory {
            category: tr(lang, "Journal des accès", "Audit log"),
            details: tr(
                lang,
                "Pour chaque accès ou action : compte, rôle, action, poste, date et heure, résultat.",
                "For every access or action: account, role, action, computer, date and time, result.",
            ),
            retention: days(lang, config.audit_retention_days),
            retention_days: Some(config.audit_retention_days),
        },
    ];
    data_categories.push(if config.screenshots_enabled {
        DataCategory {
            category: tr(lang, "Captures d'écran", "Screenshots"),
            details: tr(
                lang,
                "Prises à la demande d'un enseignant, stockées sur le boîtier et inscrites au journal des accès.",
                "Taken at a teacher's request, stored on the box and listed in the audit log.",
            ),
            retention: days(lang, config.screenshot_retention_days),
            retention_days: Some(config.screenshot_retention_days),
        }
    } else {
        DataCategory {
            category: tr(lang, "Captures d'écran", "Screenshots"),
            details: tr(
                lang,
                "Désactivées : aucune capture n'est prise ni conservée.",
                "Disabled: no screenshot is taken or kept.",
            ),
            retention: tr(lang, "Aucune conservation", "Not kept"),
            retention_days: None,
        }
    });
    data_categories.push(DataCategory {
        category: tr(
            lang,
            "Comptes des enseignants, administrateurs et techniciens",
            "Teacher, administrator and technician accounts",
        ),
        details: tr(
            lang,
            "Identifiant, nom affiché, rôle, empreinte argon2id du mot de passe, secret TOTP et empreintes des codes de secours.",
            "Login, display name, role, argon2id password hash, TOTP secret and recovery-code hashes.",
        ),
        retention: tr(
            lang,
            "Tant que le compte est actif ; supprimé par un administrateur au départ de la personne",
            "While the account is active; deleted by an administrator when the person leaves",
        ),
        retention_days: None,
    });

    GdprRecord {
        language: lang,
        processing: tr(
            lang,
            "Supervision pédagogique des postes informatiques de la salle (Lanterne)",
            "Teaching supervision of the room's computers (Lanterne)",
        ),
        controller: config.school_name.trim().to_owned(),
        room: config.room_name.trim().to_owned(),
        purpose: tr(
            lang,
            "Accompagner les élèves pendant les activités pédagogiques sur ordinateur : voir les écrans, montrer un écran à la classe, verrouiller les postes, envoyer des messages, aider un élève à distance avec son accord.",
            "Support students during computer-based teaching activities: view screens, show a screen to the class, lock computers, send messages, help a student remotely with their consent.",
        ),
        legal_basis: tr(
            lang,
            "Exécution d'une mission d'intérêt public : l'enseignement (RGPD, article 6-1-e).",
            "Performance of a task carried out in the public interest: education (GDPR, Article 6(1)(e)).",
        ),
        data_categories,
        data_subjects: vec![
            tr(lang, "Élèves utilisant les postes de la salle", "Students using the room's computers"),
            tr(lang, "Enseignants", "Teachers"),
            tr(lang, "Administrateurs et techniciens de l'établissement", "The school's administrators and technicians"),
        ],
        recipients: vec![
            tr(
                lang,
                "Enseignants de la salle (images en direct, pendant les plages de surveillance)",
                "The room's teachers (live images, during the monitoring hours)",
            ),
            tr(
                lang,
                "Administrateurs de l'établissement (journal des accès, configuration)",
                "The school's administrators (audit log, configuration)",
            ),
            tr(
                lang,
                "Aucun destinataire extérieur à l'établissement",
                "No recipient outside the school",
            ),
        ],
        recipients_outside_school: Vec::new(),
        cloud_or_telemetry: false,
        location: tr(
            lang,
            "Sur le boîtier Lanterne de la salle, dans les locaux de l'établissement ; aucun service en ligne, aucune télémétrie, aucun transfert hors de l'établissement.",
            "On the room's Lanterne box, on the school's premises; no cloud service, no telemetry, no transfer outside the school.",
        ),
        security_measures: vec![
            tr(lang, "Liaison boîtier–postes chiffrée en TLS 1.3 avec authentification mutuelle par certificats", "Box–computer link encrypted with TLS 1.3 and mutual certificate authentication"),
            tr(lang, "Accès enseignant et administrateur uniquement en HTTPS", "Teacher and administrator access over HTTPS only"),
            tr(lang, "Mots de passe d'au moins 8 caractères (majuscule, minuscule, chiffre, caractère spécial), stockés en empreintes argon2id", "Passwords of at least 8 characters (upper case, lower case, digit, special character), stored as argon2id hashes"),
            tr(lang, "Double authentification TOTP (RFC 6238) et codes de secours à usage unique", "TOTP two-factor authentication (RFC 6238) and single-use recovery codes"),
            tr(lang, "Journal de chaque accès, consultable et exportable par les administrateurs", "Every access logged; the log can be viewed and exported by administrators"),
            tr(lang, "Surveillance limitée aux plages horaires configurées, avec une plage sans surveillance chaque jour d'ouverture ; voyant sur le boîtier et indicateur sur le poste visionné", "Monitoring limited to the configured hours, with a monitoring-free slot every day the room is open; a light on the box and an indicator on the watched computer"),
            tr(lang, "Prise en main à distance uniquement après l'accord explicite de l'élève, qui peut y mettre fin à tout moment", "Remote control only after the student's explicit consent; the student can end it at any time"),
            tr(lang, "Rôles séparés (enseignant, administrateur, technicien) limitant chaque compte à ce qu'il doit faire", "Separate roles (teacher, administrator, technician) limiting each account to what it needs"),
        ],
        monitoring_hours: config.schedule.monitoring_summary(lang),
        monitoring_free_hours: config.schedule.free_summary(lang),
    }
}

fn md_escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

impl GdprRecord {
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
        let _ = writeln!(
            out,
            "- **{}**{colon} {}\n- **{}**{colon} {}\n",
            h("Responsable du traitement", "Controller"),
            self.controller,
            h("Salle", "Room"),
            self.room
        );
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
