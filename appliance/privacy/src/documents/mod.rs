//! Documents generated from the live room config: the room poster (P2) as an HTML print
//! page and as an A4 PDF, and the GDPR processing record (P4) as Markdown and JSON.
//!
//! Both are built from the same [`DocumentConfig`], so what the poster promises (hours,
//! retention, screenshots) is exactly what the box enforces. The poster uses the wording of
//! the school's policy documents for each room kind; that text must not be paraphrased.
//!
//! The poster's content is assembled once ([`Poster`]) and rendered twice, so the HTML and
//! the PDF cannot drift apart.

mod gdpr;
mod pdf;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::schedule::{Lang, Schedule};

pub use gdpr::{gdpr_record, gdpr_record_on, DataCategory, GdprRecord};
pub use pdf::{PdfFont, PosterFonts, DEJAVU_SANS, DEJAVU_SANS_BOLD};

/// Policy wording for classrooms (required text, keep verbatim).
pub const CLASSROOM_WORDING_FR: &str = "Les postes informatiques de cette salle peuvent être pris en main à distance depuis le poste enseignant à des fins pédagogiques.";
/// Policy wording for libraries / CDI (required text, keep verbatim); the hours follow it.
pub const LIBRARY_WORDING_FR: &str = "Les postes informatiques de cette salle peuvent faire l'objet d'un contrôle visuel de leur utilisation sur les plages horaires suivantes :";
/// English rendering of the classroom wording, for bilingual posters.
pub const CLASSROOM_WORDING_EN: &str = "The computers in this room may be controlled remotely from the teacher's computer for teaching purposes.";
/// English rendering of the library wording.
pub const LIBRARY_WORDING_EN: &str =
    "The use of the computers in this room may be visually checked during the following hours:";

/// The kind of room, which selects the policy wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A classroom: remote control from the teacher's station.
    Classroom,
    /// A library / CDI (centre de documentation et d'information): visual checks in set hours.
    #[serde(alias = "cdi")]
    Library,
}

/// Everything the documents say, taken from the live config by the caller.
#[derive(Debug, Clone)]
pub struct DocumentConfig {
    /// The school (the data controller), e.g. "Lycée Jean Moulin".
    pub school_name: String,
    /// The room, e.g. "CDI" or "Salle B204".
    pub room_name: String,
    /// Selects the policy wording.
    pub room_kind: RoomKind,
    /// The validated schedule in force.
    pub schedule: Schedule,
    /// Days the audit log keeps an entry before purging it.
    pub audit_retention_days: u32,
    /// Days a screenshot is kept before purging it (only meaningful when enabled).
    pub screenshot_retention_days: u32,
    /// Whether screenshots are enabled (off by default).
    pub screenshots_enabled: bool,
    /// How to reach the controller (`privacy.controller_contact`), when configured.
    pub controller_contact: Option<String>,
    /// The data protection officer and how to reach them (`privacy.dpo`), when configured.
    pub dpo: Option<String>,
    /// Days a teacher's message is kept with each station's delivery and read receipt.
    pub message_retention_days: u32,
    /// Days a command run is kept with each station's exit code and output.
    pub command_retention_days: u32,
    /// Days the box remembers each station's answer to a power or open-URL order.
    pub order_retention_days: u32,
    /// Longest life of a sign-in session, in hours; it is deleted when it expires.
    pub session_hours: u32,
    /// The box has an HDMI input through which a teacher shows their own computer.
    pub hdmi_input: bool,
    /// The roles allowed to ask for remote help (`remote_help.roles`); empty: remote help
    /// is off, and no document mentions it.
    pub remote_help_roles: Vec<crate::policy::Role>,
    /// The Lanterne version that generates the record.
    pub software_version: String,
}

/// Errors while producing documents.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// The font file could not be read.
    #[error("cannot read font file '{path}': {source}")]
    FontRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The font file is not a usable TrueType font.
    #[error("'{path}' is not a TrueType font Lanterne can embed: {reason}")]
    FontParse { path: String, reason: String },
    /// A text (room or school name, usually) has a character the PDF font encoding lacks.
    #[error("'{field}' contains {ch:?}, which the poster PDF cannot print (Western European characters only)")]
    Unprintable { field: String, ch: char },
    /// JSON serialisation failed (cannot happen with these types, kept to avoid a panic path).
    #[error("GDPR record to JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One titled block of the poster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosterSection {
    /// Heading.
    pub heading: String,
    /// Bullet points (hours, one line per group of days; or short statements).
    pub items: Vec<String>,
}

/// The poster's content in one language, shared by the HTML and PDF renderers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poster {
    /// Language of this text.
    pub lang: Lang,
    /// Big title.
    pub title: String,
    /// Subtitle under the title.
    pub subtitle: String,
    /// School and room line.
    pub place: String,
    /// The policy wording for the room kind.
    pub statement: String,
    /// Heading above the monitoring hours, when the statement does not lead into them.
    pub hours_heading: Option<String>,
    /// The monitoring hours, shown right under the statement.
    pub monitoring_hours: Vec<String>,
    /// Further sections: free hours, access hours, indicators, data.
    pub sections: Vec<PosterSection>,
    /// Small print at the bottom.
    pub footer: String,
}

/// Who may ask for remote help, in words ("Un enseignant ou un technicien"), in both
/// languages; None when remote help is off.
pub(crate) fn helpers_fr_en(roles: &[crate::policy::Role]) -> Option<(String, String)> {
    use crate::policy::Role;
    let mut fr = Vec::new();
    let mut en = Vec::new();
    for (role, f, e) in [
        (Role::Teacher, "un enseignant", "a teacher"),
        (Role::Technician, "un technicien", "a technician"),
        (Role::Admin, "un administrateur", "an administrator"),
    ] {
        if roles.contains(&role) {
            fr.push(f);
            en.push(e);
        }
    }
    let join = |v: Vec<&str>, or: &str| match v.len() {
        0 => None,
        1 => Some(v[0].to_string()),
        n => Some(format!("{} {or} {}", v[..n - 1].join(", "), v[n - 1])),
    };
    let mut fr = join(fr, "ou")?;
    let en = join(en, "or")?;
    fr.replace_range(0..1, &fr[0..1].to_uppercase());
    let mut en_cap = en.clone();
    en_cap.replace_range(0..1, &en[0..1].to_uppercase());
    Some((fr, en_cap))
}

/// The poster's remote-help lines: each one is a fact the agent and the box enforce (the
/// documents' claims test checks them against the code).
pub fn remote_help_lines(lang: Lang, who: &(String, String)) -> Vec<String> {
    match lang {
        Lang::Fr => vec![
            format!(
                "{} peut demander à prendre la main sur votre poste pour vous aider. Rien ne se passe sans votre accord : une fenêtre vous le demande, seul un clic sur « Accepter » l'autorise, et sans réponse la demande est refusée au bout de 30 secondes.",
                who.0
            ),
            "Pendant l'aide, un bandeau reste en haut de votre écran ; vous l'arrêtez à tout moment avec son bouton « Arrêter » ou les touches Ctrl+Alt+Fin.".into(),
            "Le voyant du boîtier clignote tant qu'une aide à distance est en cours. Elle est possible à toute heure, même hors des plages de surveillance, puisqu'elle demande votre accord.".into(),
        ],
        Lang::En => vec![
            format!(
                "{} may ask to take control of your computer to help you. Nothing happens without your agreement: a window asks you, only a click on \"Accepter\" allows it, and with no answer the request is refused after 30 seconds.",
                who.1
            ),
            "During the help, a banner stays at the top of your screen; you end it at any time with its \"Arrêter\" button or the keys Ctrl+Alt+End.".into(),
            "The light on the box blinks while remote help is running. It is possible at any hour, even outside the monitoring hours, since it needs your agreement.".into(),
        ],
    }
}

fn tr(lang: Lang, fr: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr.to_owned(),
        Lang::En => en.to_owned(),
    }
}

fn or_none(lines: Vec<String>, lang: Lang) -> Vec<String> {
    if lines.is_empty() {
        vec![tr(lang, "aucune", "none")]
    } else {
        lines
    }
}

impl Poster {
    /// Assembles the poster text for `lang` from the config.
    pub fn new(config: &DocumentConfig, lang: Lang) -> Poster {
        let schedule = &config.schedule;
        let statement = match (config.room_kind, lang) {
            (RoomKind::Classroom, Lang::Fr) => CLASSROOM_WORDING_FR,
            (RoomKind::Library, Lang::Fr) => LIBRARY_WORDING_FR,
            (RoomKind::Classroom, Lang::En) => CLASSROOM_WORDING_EN,
            (RoomKind::Library, Lang::En) => LIBRARY_WORDING_EN,
        }
        .to_owned();

        // The library wording ends with "suivantes :" and the hours follow it directly; a
        // classroom poster needs a heading of its own for them (P2: hours are always shown).
        let hours_heading = (config.room_kind == RoomKind::Classroom).then(|| {
            tr(
                lang,
                "Plages horaires pendant lesquelles les écrans peuvent être visionnés :",
                "Hours during which screens may be watched:",
            )
        });
        let mut sections = Vec::new();
        sections.push(PosterSection {
            heading: tr(
                lang,
                "Plages sans aucune surveillance",
                "Hours without any monitoring",
            ),
            items: or_none(schedule.free_lines(lang), lang),
        });
        sections.push(PosterSection {
            heading: tr(
                lang,
                "Heures d'accès aux postes",
                "Hours when the computers may be used",
            ),
            items: or_none(schedule.access_lines(lang), lang),
        });
        sections.push(PosterSection {
            heading: tr(
                lang,
                "Comment savoir si votre écran est visionné",
                "How to tell that your screen is being watched",
            ),
            items: vec![
                tr(
                    lang,
                    "Le voyant du boîtier mural de la salle est allumé tant qu'au moins un écran est visionné.",
                    "The light on the room's wall box is on while any screen is being watched.",
                ),
                tr(
                    lang,
                    "Sur votre poste, un indicateur reste affiché en permanence tant que l'image de votre écran est transmise.",
                    "On your computer, an indicator stays on screen for as long as your screen's image is being sent.",
                ),
            ],
        });
        if let Some(who) = helpers_fr_en(&config.remote_help_roles) {
            sections.push(PosterSection {
                heading: tr(lang, "Aide à distance", "Remote help"),
                items: remote_help_lines(lang, &who),
            });
        }
        let screenshots = if config.screenshots_enabled {
            match lang {
                Lang::Fr => format!(
                    "Des captures d'écran peuvent être enregistrées ; elles sont conservées {} jours puis effacées.",
                    config.screenshot_retention_days
                ),
                Lang::En => format!(
                    "Screenshots may be saved; they are kept for {} days and then erased.",
                    config.screenshot_retention_days
                ),
            }
        } else {
            tr(
                lang,
                "Les écrans sont visionnés en direct, sans enregistrement : aucune capture d'écran n'est conservée.",
                "Screens are watched live and never recorded: no screenshot is kept.",
            )
        };
        sections.push(PosterSection {
            heading: tr(lang, "Vos données", "Your data"),
            items: vec![
                screenshots,
                match lang {
                    Lang::Fr => format!(
                        "Chaque accès à un poste est inscrit dans un journal conservé {} jours.",
                        config.audit_retention_days
                    ),
                    Lang::En => format!(
                        "Every access to a computer is written to a log kept for {} days.",
                        config.audit_retention_days
                    ),
                },
                tr(
                    lang,
                    "Toutes les données restent sur le boîtier, dans l'établissement : rien n'est envoyé à l'extérieur.",
                    "All data stays on the box, inside the school: nothing is sent outside.",
                ),
                tr(
                    lang,
                    "Pour toute question, ou pour exercer vos droits, adressez-vous à l'administration de l'établissement.",
                    "For any question, or to exercise your rights, ask the school's administration.",
                ),
            ],
        });

        Poster {
            lang,
            title: tr(lang, "Information des usagers", "Notice to users"),
            subtitle: tr(
                lang,
                "Surveillance des postes informatiques",
                "Monitoring of the computers",
            ),
            place: match lang {
                Lang::Fr => format!(
                    "{} — salle : {}",
                    config.school_name.trim(),
                    config.room_name.trim()
                ),
                Lang::En => format!(
                    "{} — room: {}",
                    config.school_name.trim(),
                    config.room_name.trim()
                ),
            },
            statement,
            hours_heading,
            monitoring_hours: or_none(schedule.monitoring_lines(lang), lang),
            sections,
            footer: tr(
                lang,
                "Affiche générée par le boîtier Lanterne de la salle à partir de sa configuration : elle change avec les horaires.",
                "Notice generated by the room's Lanterne box from its configuration: it changes with the hours.",
            ),
        }
    }
}

/// Joins the parts of a French time ("13 h 15") and of a range ("9 h 15 – 11 h 45") with
/// non-breaking spaces so that word wrapping never splits them across lines.
pub(crate) fn keep_times_together(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let before = |n: usize| i.checked_sub(n).map(|j| chars[j]);
        let after = |n: usize| chars.get(i + n).copied();
        let digit_then_h = before(1).is_some_and(|c| c.is_ascii_digit())
            && after(1) == Some('h')
            && after(2).is_none_or(|c| c == ' ');
        let h_then_digit = before(1) == Some('h')
            && before(2) == Some(' ')
            && before(3).is_some_and(|c| c.is_ascii_digit())
            && after(1).is_some_and(|c| c.is_ascii_digit());
        // A range "9 h 15 – 11 h 45" stays whole too; lines break between ranges.
        let around_dash = before(1) == Some('–') || after(1) == Some('–');
        if c == ' ' && (digit_then_h || h_then_digit || around_dash) {
            out.push('\u{a0}');
        } else {
            out.push(c);
        }
    }
    out
}

/// [`keep_times_together`] for browsers: they may still break after an en dash even when a
/// no-break space follows (UAX #14 allows a break before a no-break space after a dash), so a
/// word joiner goes after each dash inside a range.
pub(crate) fn html_unbreakable(text: &str) -> String {
    keep_times_together(text).replace("–\u{a0}", "–\u{2060}\u{a0}")
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn html_list(out: &mut String, items: &[String]) {
    out.push_str("<ul>\n");
    for item in items {
        let _ = writeln!(out, "  <li>{}</li>", html_escape(&html_unbreakable(item)));
    }
    out.push_str("</ul>\n");
}

fn html_poster_section(out: &mut String, poster: &Poster) {
    let lang = match poster.lang {
        Lang::Fr => "fr",
        Lang::En => "en",
    };
    let _ = writeln!(out, "<section class=\"poster\" lang=\"{lang}\">");
    let _ = writeln!(
        out,
        "<header><h1>{}</h1><p class=\"subtitle\">{}</p></header>",
        html_escape(&poster.title),
        html_escape(&poster.subtitle)
    );
    let _ = writeln!(out, "<p class=\"place\">{}</p>", html_escape(&poster.place));
    let (open, close) = match poster.lang {
        Lang::Fr => ("« ", " »"),
        Lang::En => ("“", "”"),
    };
    let _ = writeln!(
        out,
        "<blockquote class=\"statement\">{open}{}{close}</blockquote>",
        html_escape(&poster.statement)
    );
    if let Some(heading) = &poster.hours_heading {
        let _ = writeln!(out, "<h2>{}</h2>", html_escape(heading));
    }
    out.push_str("<div class=\"hours\">\n");
    html_list(out, &poster.monitoring_hours);
    out.push_str("</div>\n");
    for section in &poster.sections {
        let _ = writeln!(out, "<h2>{}</h2>", html_escape(&section.heading));
        html_list(out, &section.items);
    }
    let _ = writeln!(
        out,
        "<footer>{}</footer>\n</section>",
        html_escape(&poster.footer)
    );
}

/// The poster as a self-contained HTML print page (A4, no external resources), in French,
/// followed by an English page when `with_english`.
pub fn poster_html(config: &DocumentConfig, with_english: bool) -> String {
    let fr = Poster::new(config, Lang::Fr);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"fr\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{} — {}</title>\n<style>\n{}</style>\n</head>\n<body>\n",
        html_escape(&fr.title),
        html_escape(config.room_name.trim()),
        POSTER_CSS
    );
    html_poster_section(&mut out, &fr);
    if with_english {
        html_poster_section(&mut out, &Poster::new(config, Lang::En));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Print-first styling: one A4 page per language, readable from a few metres away.
const POSTER_CSS: &str = "\
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
body { margin: 0; font-family: 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif; color: #1a1a1a; }
.poster { max-width: 182mm; margin: 0 auto; break-after: page; page-break-after: always; }
.poster:last-child { break-after: auto; page-break-after: auto; }
header { background: #1f3a5f; color: #fff; padding: 6mm 9mm; border-left: 3mm solid #e0a100; }
h1 { margin: 0; font-size: 24pt; }
.subtitle { margin: 1.5mm 0 0; font-size: 13pt; }
.place { font-size: 12pt; font-weight: bold; margin: 5mm 0 4mm; }
.statement { margin: 0 0 4mm; padding: 4.5mm 7mm; font-size: 14.5pt; font-weight: bold; line-height: 1.3;
  background: #fff4d6; border-left: 3mm solid #e0a100; }
h2 { font-size: 12pt; color: #1f3a5f; border-bottom: 0.35mm solid #1f3a5f; margin: 4.5mm 0 1.5mm; padding-bottom: 0.8mm; }
ul { margin: 0; padding-left: 6mm; }
li { font-size: 10.5pt; line-height: 1.3; margin: 0.8mm 0; }
li::marker { color: #e0a100; }
.hours li { font-size: 14pt; font-weight: bold; }
footer { margin-top: 6mm; font-size: 8pt; color: #666; }
@media screen { body { background: #ddd; } .poster { background: #fff; margin: 10mm auto; padding: 12mm; } }
";

/// The poster as an A4 PDF: French on page 1, English on page 2 when `with_english`.
pub fn poster_pdf(
    config: &DocumentConfig,
    with_english: bool,
    fonts: &PosterFonts,
) -> Result<Vec<u8>, DocumentError> {
    let mut posters = vec![Poster::new(config, Lang::Fr)];
    if with_english {
        posters.push(Poster::new(config, Lang::En));
    }
    pdf::render_posters(&posters, fonts, &config.room_name)
}

#[cfg(test)]
pub(crate) mod tests;
