//! Poster and GDPR record checks. The PDF tests read the file back with poppler's
//! `pdftotext` (an independent PDF reader, so a broken writer cannot pass) and render page 1
//! to PNG with `pdftoppm` for a human to look at.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::*;
use crate::schedule::tests::cdi;

pub(crate) fn config(kind: RoomKind) -> DocumentConfig {
    DocumentConfig {
        school_name: "Lycée Marie Curie".into(),
        room_name: match kind {
            RoomKind::Classroom => "Salle B204".into(),
            RoomKind::Library => "CDI".into(),
        },
        room_kind: kind,
        schedule: cdi(),
        audit_retention_days: 180,
        screenshot_retention_days: 7,
        screenshots_enabled: false,
        controller_contact: Some("Lycée Marie Curie, 1 rue de l'École, 75005 Paris".into()),
        dpo: Some("DPD de l'académie de Paris, dpd@ac-paris.fr".into()),
        message_retention_days: 7,
        command_retention_days: 30,
        order_retention_days: 1,
        session_hours: 10,
        hdmi_input: false,
        remote_help_roles: Vec::new(),
        software_version: "0.1.0".into(),
    }
}

/// Collapses all whitespace (line breaks from wrapping, non-breaking spaces) to one space.
fn flatten(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '\u{a0}')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

/// Makes sure poppler-utils is there, installing it only when missing; fails the test with
/// the reason when it cannot.
fn poppler() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if have("pdftotext") && have("pdftoppm") {
            return Ok(());
        }
        let status = Command::new("apt-get")
            .args(["install", "-y", "-q", "poppler-utils"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if status.success() && have("pdftotext") && have("pdftoppm") {
            Ok(())
        } else {
            Err(format!(
                "poppler-utils (pdftotext, pdftoppm) is missing and `apt-get install -y poppler-utils` failed ({status})"
            ))
        }
    });
    if let Err(reason) = ready {
        panic!("{reason}");
    }
}

fn out_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("lanterne-privacy-test");
    std::fs::create_dir_all(&dir).expect("create test output directory");
    dir
}

fn pdftotext(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("run pdftotext");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("pdftotext prints UTF-8")
}

/// Writes the PDF, checks poppler reads it without complaint, renders page 1 to PNG and
/// returns the extracted text.
fn write_and_read(name: &str, pdf: &[u8], pages: usize) -> String {
    poppler();
    let dir = out_dir();
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).expect("write PDF");
    let info = Command::new("pdfinfo")
        .arg(&path)
        .output()
        .expect("pdfinfo");
    let stderr = String::from_utf8_lossy(&info.stderr);
    assert!(
        info.status.success() && stderr.trim().is_empty(),
        "pdfinfo: {stderr}"
    );
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("595.276 x 841.89 pts (A4)"), "{info}");
    // Each language fits on one sheet.
    let page_count = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .map(|n| n.trim().parse::<usize>().expect("page count"));
    assert_eq!(page_count, Some(pages), "{info}");

    // Fonts really embedded, as TrueType with the one-byte WinAnsi encoding.
    let fonts = Command::new("pdffonts")
        .arg(&path)
        .output()
        .expect("pdffonts");
    let fonts = String::from_utf8_lossy(&fonts.stdout);
    let font_rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!font_rows.is_empty(), "{fonts}");
    for row in font_rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1..5], ["TrueType", "WinAnsi", "yes", "no"], "{fonts}");
    }

    let png_prefix = dir.join(name);
    let render = Command::new("pdftoppm")
        .args(["-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&png_prefix)
        .output()
        .expect("run pdftoppm");
    let stderr = String::from_utf8_lossy(&render.stderr);
    assert!(
        render.status.success() && stderr.trim().is_empty(),
        "pdftoppm: {stderr}"
    );
    let png = png_prefix.with_extension("png");
    assert!(std::fs::metadata(&png).expect("PNG written").len() > 10_000);
    eprintln!("poster rendered to {}", png.display());
    pdftotext(&path)
}

/// Loaded once: compressing two whole fonts is the slow part in a debug build.
fn fonts() -> &'static PosterFonts {
    static FONTS: OnceLock<PosterFonts> = OnceLock::new();
    FONTS.get_or_init(|| PosterFonts::dejavu().expect("fonts-dejavu-core is installed"))
}

#[test]
fn classroom_poster_pdf_has_wording_and_hours() {
    let cfg = config(RoomKind::Classroom);
    let pdf = poster_pdf(&cfg, true, fonts()).unwrap();
    assert!(pdf.starts_with(b"%PDF-1.4"));
    let text = flatten(&write_and_read("poster-classroom", &pdf, 2));
    // pdftotext separates pages with a form feed; split to check each language's page.
    let (fr, en) = text
        .split_once("Notice to users")
        .expect("English page present");

    assert!(fr.contains(CLASSROOM_WORDING_FR), "{fr}");
    assert!(!fr.contains(LIBRARY_WORDING_FR));
    for line in cfg.schedule.monitoring_lines(Lang::Fr) {
        assert!(fr.contains(&line), "missing {line:?} in {fr}");
    }
    assert!(fr.contains("lundi, mardi, jeudi, vendredi : 9 h 15 – 11 h 45 et 13 h 15 – 16 h 45"));
    assert!(
        fr.contains("mercredi : 8 h – 9 h 15 et 11 h 45 – 12 h 30"),
        "free hours"
    );
    assert!(fr.contains("Plages sans aucune surveillance"));
    assert!(fr.contains("Le voyant du boîtier mural"));
    assert!(fr.contains("conservé 180 jours"));
    assert!(fr.contains("aucune capture d'écran n'est conservée"));
    assert!(fr.contains("Lycée Marie Curie — salle : Salle B204"));

    assert!(en.contains(CLASSROOM_WORDING_EN), "{en}");
    assert!(en.contains("Monday, Tuesday, Thursday, Friday: 9:15–11:45 and 13:15–16:45"));
}

#[test]
fn library_poster_pdf_has_wording_followed_by_hours() {
    let mut cfg = config(RoomKind::Library);
    cfg.screenshots_enabled = true;
    let pdf = poster_pdf(&cfg, false, fonts()).unwrap();
    let text = flatten(&write_and_read("poster-library", &pdf, 1));
    assert!(!text.contains("Notice to users"), "French only");
    let expected = format!(
        "« {} » {}",
        LIBRARY_WORDING_FR,
        cfg.schedule.monitoring_lines(Lang::Fr).join(" ")
    );
    assert!(text.contains(&expected), "{text}");
    assert!(!text.contains(CLASSROOM_WORDING_FR));
    assert!(text.contains("elles sont conservées 7 jours puis effacées"));
}

#[test]
fn poster_pdf_changes_with_the_schedule() {
    let mut cfg = config(RoomKind::Library);
    let other = crate::schedule::ScheduleConfig {
        access: vec![crate::schedule::tests::window(&["sat"], "10:00", "12:00")],
        monitoring: vec![crate::schedule::tests::window(&["sat"], "10:30", "11:00")],
        min_free_minutes: 30,
    };
    cfg.schedule = other.validate().unwrap();
    let text = flatten(&write_and_read(
        "poster-saturday",
        &poster_pdf(&cfg, false, fonts()).unwrap(),
        1,
    ));
    assert!(text.contains("samedi : 10 h 30 – 11 h"), "{text}");
    assert!(!text.contains("lundi"), "{text}");
}

#[test]
fn poster_with_different_hours_every_day_still_fits_one_page() {
    use crate::schedule::tests::window;
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let cfg = DocumentConfig {
        schedule: crate::schedule::ScheduleConfig {
            access: days
                .iter()
                .enumerate()
                .map(|(i, d)| window(&[d], &format!("0{}:00", 7 + i % 3), "19:00"))
                .collect(),
            monitoring: days
                .iter()
                .enumerate()
                .flat_map(|(i, d)| {
                    [
                        window(&[d], &format!("10:{:02}", i * 5), "11:30"),
                        window(&[d], "12:00", &format!("13:{:02}", i * 5)),
                        window(&[d], "14:00", &format!("16:{:02}", i * 5)),
                    ]
                })
                .collect(),
            min_free_minutes: 30,
        }
        .validate()
        .unwrap(),
        ..config(RoomKind::Classroom)
    };
    assert_eq!(cfg.schedule.monitoring_lines(Lang::Fr).len(), 7);
    let text = flatten(&write_and_read(
        "poster-every-day",
        &poster_pdf(&cfg, false, fonts()).unwrap(),
        1,
    ));
    assert!(
        text.contains("dimanche : 10 h 30 – 11 h 30 et 12 h – 13 h 30 et 14 h – 16 h 30"),
        "{text}"
    );
    assert!(
        text.contains("l'administration de l'établissement"),
        "last line present"
    );
}

#[test]
fn poster_pdf_refuses_an_unprintable_room_name() {
    let mut cfg = config(RoomKind::Classroom);
    cfg.room_name = "Salle 🙂".into();
    let err = poster_pdf(&cfg, false, fonts()).unwrap_err();
    assert!(
        matches!(err, DocumentError::Unprintable { ch: '🙂', .. }),
        "{err}"
    );
}

#[test]
fn times_stay_together() {
    assert_eq!(
        keep_times_together("lundi : 9 h 15 – 11 h et 13 h 15"),
        "lundi : 9\u{a0}h\u{a0}15\u{a0}–\u{a0}11\u{a0}h et 13\u{a0}h\u{a0}15"
    );
    assert_eq!(
        keep_times_together("Monday: 9:15–11:45"),
        "Monday: 9:15–11:45"
    );
    assert_eq!(keep_times_together("3 heures"), "3 heures");
}

fn cfg_lines(kind: RoomKind) -> Vec<String> {
    config(kind)
        .schedule
        .monitoring_lines(Lang::Fr)
        .iter()
        .map(|l| html_unbreakable(l))
        .collect()
}

#[test]
fn poster_html_for_both_room_kinds() {
    let classroom = poster_html(&config(RoomKind::Classroom), false);
    assert!(classroom.starts_with("<!DOCTYPE html>"));
    assert!(classroom.contains("size: A4"));
    // Apostrophes are escaped in HTML; compare against the escaped wording.
    assert!(classroom.contains(&html_escape(CLASSROOM_WORDING_FR)));
    // Times and ranges are bound with no-break spaces so a line never splits "13 h | 15".
    for line in cfg_lines(RoomKind::Classroom) {
        assert!(classroom.contains(&format!("<li>{line}</li>")), "{line}");
    }
    assert!(classroom
        .contains("<li>mercredi : 9\u{a0}h\u{a0}15\u{a0}–\u{2060}\u{a0}11\u{a0}h\u{a0}45</li>"));
    assert!(!classroom.contains("lang=\"en\""));
    // Self-contained: nothing fetched from elsewhere.
    assert!(!classroom.contains("http://") && !classroom.contains("https://"));
    assert!(!classroom.contains("<script"));

    let library = poster_html(&config(RoomKind::Library), true);
    let wording = html_escape(LIBRARY_WORDING_FR);
    let at = library.find(&wording).expect("library wording");
    let hours = library
        .find("<li>lundi, mardi, jeudi, vendredi : 9\u{a0}h\u{a0}15")
        .expect("hours");
    assert!(
        hours > at,
        "the hours follow the wording ('sur les plages horaires suivantes :')"
    );
    assert!(library.contains("lang=\"en\""));
    // Kept for a person to open or print.
    std::fs::write(out_dir().join("poster-library.html"), &library).expect("write HTML");
    assert!(library.contains("Monday, Tuesday, Thursday, Friday: 9:15–11:45"));
}

#[test]
fn room_kind_reads_cdi_as_library() {
    #[derive(serde::Deserialize)]
    struct Room {
        kind: RoomKind,
    }
    let parse = |text: &str| toml::from_str::<Room>(text).map(|r| r.kind);
    assert_eq!(parse("kind = 'library'").unwrap(), RoomKind::Library);
    assert_eq!(parse("kind = 'cdi'").unwrap(), RoomKind::Library);
    assert_eq!(parse("kind = 'classroom'").unwrap(), RoomKind::Classroom);
    assert!(parse("kind = 'gym'").is_err());
}

#[test]
fn only_the_classroom_poster_needs_its_own_hours_heading() {
    // The library wording ends with "suivantes :" and leads straight into the hours.
    assert!(Poster::new(&config(RoomKind::Library), Lang::Fr)
        .hours_heading
        .is_none());
    let classroom = Poster::new(&config(RoomKind::Classroom), Lang::Fr);
    assert_eq!(
        classroom.hours_heading.as_deref(),
        Some("Plages horaires pendant lesquelles les écrans peuvent être visionnés :")
    );
    assert_eq!(classroom.monitoring_hours.len(), 2);
}

#[test]
fn poster_html_escapes_config_text() {
    let mut cfg = config(RoomKind::Classroom);
    cfg.room_name = "<script>alert(1)</script>".into();
    let html = poster_html(&cfg, false);
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;"));
}

/// Every field of the record, in both languages, from a config where each setting has a
/// value of its own, so a field that ignored its setting would show.
#[test]
fn gdpr_record_states_every_field_from_the_config() {
    use time::macros::date;
    let mut cfg = config(RoomKind::Library);
    cfg.audit_retention_days = 365;
    cfg.message_retention_days = 11;
    cfg.command_retention_days = 43;
    cfg.order_retention_days = 2;
    cfg.screenshot_retention_days = 5;
    cfg.session_hours = 10;
    let record = gdpr_record_on(&cfg, Lang::En, date!(2026 - 11 - 23));

    assert_eq!(record.language, Lang::En);
    assert_eq!(record.date, "2026-11-23");
    assert_eq!(record.software, "Lanterne 0.1.0");
    assert_eq!(record.version.len(), 12);
    assert!(record.version.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        record.processing,
        "Teaching supervision of the room's computers (Lanterne)"
    );
    assert_eq!(record.controller, "Lycée Marie Curie");
    assert_eq!(
        record.controller_contact,
        "Lycée Marie Curie, 1 rue de l'École, 75005 Paris"
    );
    assert_eq!(record.dpo, "DPD de l'académie de Paris, dpd@ac-paris.fr");
    assert_eq!(record.room, "CDI");
    for feature in [
        "show a screen to the class",
        "lock",
        "messages",
        "approved commands",
        "open a web page",
    ] {
        assert!(
            record.purpose.contains(feature),
            "{feature}: {}",
            record.purpose
        );
    }
    assert!(
        !record.purpose.contains("control"),
        "remote help is off in this config"
    );
    assert!(record.legal_basis.contains("Article 6(1)(e)"));

    // Every category of data the box holds, each with its retention and the key setting it.
    let cats: Vec<(&str, &str, Option<u32>, Option<&str>)> = record
        .data_categories
        .iter()
        .map(|c| {
            (
                c.category.as_str(),
                c.retention.as_str(),
                c.retention_days,
                c.retention_setting.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        cats,
        vec![
            ("Images of the computers' screens", "Not kept", None, None),
            ("Screenshots", "Not kept", None, None),
            ("Audit log", "365 days", Some(365), Some("privacy.audit_retention_days")),
            ("Teachers' messages", "11 days", Some(11), Some("privacy.message_retention_days")),
            ("Commands run on the computers", "43 days", Some(43), Some("privacy.command_retention_days")),
            (
                "Computers' answers to orders (shut down, restart, log out or open the session, open a web page)",
                "2 days",
                Some(2),
                Some("privacy.order_retention_days")
            ),
            (
                "Enrolled computers",
                "While the computer is enrolled; erased when an administrator deletes it",
                None,
                None
            ),
            (
                "Teacher, administrator and technician accounts",
                "While the account exists; erased when an administrator deletes it",
                None,
                None
            ),
            ("Sign-in sessions", "Until they expire, 10 hours at most, or sign-out", None, None),
            (
                "The box's technical log",
                "As the box's system journal (journald) is configured: limited in size, no period set by Lanterne",
                None,
                None
            ),
            (
                "Name of the student signed in at a computer, and their raised hand",
                "For the student's session: erased when they sign out, when the computer disconnects from the box or when the box restarts; the hand as soon as the student lowers it or the teacher clears it",
                None,
                None
            ),
        ]
    );
    let details = |name: &str| {
        record
            .data_categories
            .iter()
            .find(|c| c.category.starts_with(name))
            .unwrap()
            .details
            .clone()
    };
    assert!(
        details("Images").contains("other computers"),
        "classmates see a shown screen"
    );
    assert!(details("Images").contains("never recorded"));
    assert!(details("Screenshots").contains("Disabled"));
    assert!(
        details("Enrolled").contains("host name") && details("Enrolled").contains("MAC address")
    );
    assert!(
        details("Teachers' messages").contains("text")
            && details("Teachers' messages").contains("time read")
    );
    assert!(
        details("Commands").contains("standard output")
            && details("Commands").contains("error output")
    );
    assert!(details("Audit").contains("network address"));
    assert!(details("Teacher, admin").contains("TOTP secret"));
    assert!(
        !details("Teacher, admin").contains("display name"),
        "the box keeps none"
    );

    assert_eq!(
        record.data_subjects,
        vec![
            "Students using the room's computers",
            "Teachers",
            "The school's administrators and technicians"
        ]
    );
    assert_eq!(record.recipients.len(), 6);
    assert!(record.recipients[0].starts_with("Signed-in teachers"));
    assert!(record.recipients[1]
        .starts_with("The other students in the room, when a teacher shows a student's screen"));
    assert!(record.recipients[2].starts_with("The student at a computer"));
    assert!(record.recipients[3].starts_with("The school's administrators"));
    assert!(record.recipients[4].starts_with("Signed-in technicians"));
    assert_eq!(record.recipients[5], "No recipient outside the school");
    assert!(record.recipients_outside_school.is_empty());
    assert!(!record.cloud_or_telemetry);
    assert!(record.location.contains("no telemetry"));
    assert_eq!(record.erasure.len(), 3);
    assert!(record.erasure[0].contains("Every hour"));
    assert!(record.erasure[1].contains("account#12, station#7"));
    assert!(record.erasure[2].contains("revoked"));
    assert_eq!(record.security_measures.len(), 7);
    assert!(record.security_measures[0].contains("TLS 1.3"));
    assert!(record
        .security_measures
        .iter()
        .all(|m| !m.contains("Remote control")));
    assert_eq!(
        record.monitoring_hours,
        cfg.schedule.monitoring_summary(Lang::En)
    );
    assert!(record
        .monitoring_hours
        .contains("Monday, Tuesday, Thursday, Friday: 9:15–11:45 and 13:15–16:45"));
    assert_eq!(
        record.monitoring_free_hours,
        cfg.schedule.free_summary(Lang::En)
    );

    // The JSON has every field, under its documented name.
    let json: serde_json::Value = serde_json::from_str(&record.to_json().unwrap()).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "language",
        "version",
        "software",
        "date",
        "processing",
        "controller",
        "controller_contact",
        "dpo",
        "room",
        "purpose",
        "legal_basis",
        "data_categories",
        "data_subjects",
        "recipients",
        "recipients_outside_school",
        "cloud_or_telemetry",
        "location",
        "erasure",
        "security_measures",
        "monitoring_hours",
        "monitoring_free_hours",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["data_categories"][3]["retention_days"], 11);
    assert_eq!(
        json["data_categories"][3]["retention_setting"],
        "privacy.message_retention_days"
    );

    // The Markdown carries the same.
    let md = record.to_markdown();
    for line in [
        format!("- **Record version**: {}", record.version),
        "- **Date**: 2026-11-23".to_string(),
        "- **Generated by**: Lanterne 0.1.0".to_string(),
        "- **Controller**: Lycée Marie Curie".to_string(),
        "- **Controller's contact**: Lycée Marie Curie, 1 rue de l'École, 75005 Paris".to_string(),
        "- **Data protection officer**: DPD de l'académie de Paris, dpd@ac-paris.fr".to_string(),
        "- **Room**: CDI".to_string(),
        "| Audit log |".to_string(),
        "| 11 days |".to_string(),
        "| 43 days |".to_string(),
        "- No recipient outside the school".to_string(),
        "## Erasure".to_string(),
    ] {
        assert!(md.contains(&line), "{line} missing from:\n{md}");
    }

    // The version follows the content, not the date.
    let other_day = gdpr_record_on(&cfg, Lang::En, date!(2027 - 01 - 04));
    assert_eq!(other_day.version, record.version);
    cfg.message_retention_days = 12;
    assert_ne!(
        gdpr_record_on(&cfg, Lang::En, date!(2026 - 11 - 23)).version,
        record.version
    );
}

#[test]
fn gdpr_record_follows_the_optional_parts_of_the_config() {
    use time::macros::date;
    let mut cfg = config(RoomKind::Classroom);
    cfg.screenshots_enabled = true;
    cfg.hdmi_input = true;
    cfg.dpo = None;
    cfg.controller_contact = Some("  ".into());
    let fr = gdpr_record_on(&cfg, Lang::Fr, date!(2026 - 11 - 23));
    assert_eq!(
        fr.dpo,
        "À compléter : non renseigné dans la configuration du boîtier (privacy.dpo)"
    );
    assert!(fr.controller_contact.contains("privacy.controller_contact"));
    let shots = &fr.data_categories[1];
    assert_eq!(shots.category, "Captures d'écran");
    assert_eq!(
        (shots.retention.as_str(), shots.retention_days),
        ("7 jours", Some(7))
    );
    assert_eq!(
        fr.data_categories[2].category,
        "Image de l'ordinateur de l'enseignant (entrée HDMI du boîtier)"
    );
    assert!(fr
        .recipients
        .iter()
        .any(|r| r.starts_with("Captures d'écran")));
    assert!(fr
        .recipients
        .iter()
        .any(|r| r.starts_with("Image de l'ordinateur de l'enseignant")));
    assert_eq!(
        fr.recipients.last().unwrap(),
        "Aucun destinataire extérieur à l'établissement"
    );
    let md = fr.to_markdown();
    assert!(md.contains("| Captures d'écran |"));
    assert!(md.contains("| 7 jours |"), "{md}");
    assert!(md.contains("| 180 jours |"));
    assert!(md.contains("mission d'intérêt public"));
    assert!(md.contains("- **Délégué à la protection des données** : À compléter"));
    // Every category without a period keeps nothing or says how long it lives.
    assert!(fr.data_categories.iter().all(|c| !c.retention.is_empty()));
}

#[test]
fn remote_help_appears_in_every_document_exactly_when_a_role_may_ask_for_it() {
    use crate::policy::Role;
    let mut cfg = config(RoomKind::Classroom);
    for lang in [Lang::Fr, Lang::En] {
        let poster = Poster::new(&cfg, lang);
        assert!(
            poster
                .sections
                .iter()
                .all(|s| s.heading != "Aide à distance" && s.heading != "Remote help"),
            "off: no remote-help section"
        );
        let record = gdpr_record(&cfg, lang);
        let all = format!("{record:?}");
        for word in [
            "Accepter",
            "aide à distance",
            "remote help",
            "Remote control",
            "prise en main à distance",
        ] {
            assert!(!all.contains(word), "off: the record says {word:?}");
        }
    }
    cfg.remote_help_roles = vec![Role::Technician];
    let poster = Poster::new(&cfg, Lang::Fr);
    let help = poster
        .sections
        .iter()
        .find(|s| s.heading == "Aide à distance")
        .expect("on: a remote-help section");
    assert!(
        help.items[0].starts_with("Un technicien peut demander"),
        "{}",
        help.items[0]
    );
    assert!(help.items[0].contains("« Accepter »") && help.items[0].contains("30 secondes"));
    assert!(help.items[1].contains("Ctrl+Alt+Fin") && help.items[1].contains("« Arrêter »"));
    assert!(help.items[2].contains("clignote"));
    cfg.remote_help_roles = vec![Role::Teacher, Role::Technician, Role::Admin];
    let en = Poster::new(&cfg, Lang::En);
    let help = en
        .sections
        .iter()
        .find(|s| s.heading == "Remote help")
        .unwrap();
    assert!(
        help.items[0].starts_with("A teacher, a technician or an administrator may ask"),
        "{}",
        help.items[0]
    );
    let record = gdpr_record(&cfg, Lang::En);
    assert!(record.purpose.contains("after their explicit agreement"));
    assert!(record
        .security_measures
        .iter()
        .any(|m| m.contains("Remote control only after")));
    assert!(record
        .data_categories
        .iter()
        .any(|c| format!("{c:?}").contains("Screen and input during remote help")));
}
