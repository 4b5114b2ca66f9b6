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
