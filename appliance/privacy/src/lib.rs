//! Lanterne's privacy logic, free of I/O so the box daemon and the station agent can share
//! it and every rule is tested on the host with a controlled clock.
//!
//! - [`schedule`]: the room's weekly access and monitoring windows, validated against the
//!   policy's proportionality rule (P3), with French and English summaries.
//! - [`policy`]: "may this user do this to this station now?" ([`policy::decide`]), and the
//!   [`policy::Clock`] every caller reads time through.
//! - [`totp`]: RFC 6238 two-factor codes, enrolment URI and QR code, replay protection and
//!   single-use recovery codes (P6).
//! - [`documents`]: the room poster (P2) as HTML and PDF, and the GDPR processing record
//!   (P4) as Markdown and JSON, generated from the live config.
//!
//! The only I/O is reading a TrueType font file for the PDF ([`documents::PdfFont::load`]).

pub mod documents;
pub mod policy;
pub mod schedule;
pub mod totp;

pub use schedule::Lang;

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::policy::PolicyConfig;
    use crate::schedule::{Lang, ScheduleConfig};

    /// The part of the box config this crate owns.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        schedule: ScheduleConfig,
        policy: PolicyConfig,
    }

    /// The README's sample must stay a valid config: it is what schools copy.
    #[test]
    fn readme_sample_schedule_parses_and_validates() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").expect("README has a TOML sample") + 8;
        let len = readme[start..].find("```").expect("closed code block");
        let sample: Sample = toml::from_str(&readme[start..start + len]).expect("sample parses");
        assert!(!sample.policy.screenshots_enabled);
        let schedule = sample.schedule.validate().expect("sample is valid");
        assert_eq!(schedule.min_free_minutes(), 30);
        // The summary the README quotes is the one the sample produces.
        let summary = schedule.monitoring_summary(Lang::En);
        assert_eq!(
            summary,
            "Monday, Tuesday, Thursday, Friday: 9:15–11:45 and 13:15–16:45; Wednesday: 9:15–11:45"
        );
        let flat_readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat_readme.contains(&summary), "README quotes {summary:?}");
        let french = schedule.monitoring_summary(Lang::Fr);
        assert!(flat_readme.contains(&french), "README quotes {french:?}");
    }

    #[test]
    fn unknown_schedule_fields_and_defaults() {
        let err = toml::from_str::<ScheduleConfig>(
            r#"access = [{ days = ["mon"], start = "08:00", end = "12:00" }]
               monitoring_windows = []"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("monitoring_windows"), "{err}");
        let err = toml::from_str::<ScheduleConfig>(
            r#"access = [{ days = ["mon"], start = "08:00", end = "12:00", room = "B204" }]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("room"), "{err}");
        let cfg: ScheduleConfig =
            toml::from_str(r#"access = [{ days = ["mon"], start = "08:00", end = "12:00" }]"#)
                .unwrap();
        assert_eq!(cfg.min_free_minutes, 30);
        assert!(cfg.monitoring.is_empty());
    }
}
