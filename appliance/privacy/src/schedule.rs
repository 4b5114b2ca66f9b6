//! The room's weekly monitoring schedule (policy P3).
//!
//! The schedule is a *local, timezone-free* weekly model: every time in it is the box's
//! local wall-clock time ("9:15 on Mondays"), because that is how a school writes its
//! hours on a poster. Nothing here converts between time zones; the caller hands in the
//! local time (see [`crate::policy::Clock`]).
//!
//! Two lists of windows, per weekday:
//! - `access`: when the stations may be used at all (the room's opening hours);
//! - `monitoring`: when screens may be watched. Every monitoring window must lie inside
//!   the access hours, and outside monitoring windows the box refuses every monitoring path.
//!
//! # The P3 rule (proportionality)
//!
//! Policy P3 requires "a minimum time slot with no monitoring at all within station access
//! hours". As implemented: on **every weekday that has access hours** (and any monitoring
//! window), take the access time of that day (touching access windows join into one
//! stretch), remove the monitoring windows, and look at what is left. At least one *contiguous* free stretch must last
//! `min_free_minutes` or more (default 30, which is also the least a config may set). A day with access hours and no such stretch
//! makes the whole configuration invalid, and the error names the day and the longest free
//! stretch found. Days without access hours need nothing, and neither do days without any
//! monitoring window (they are free from end to end, even when open for less than
//! `min_free_minutes`). Stretches are measured within one day; a free stretch never
//! continues across midnight, so each day must stand on its own.
//!
//! Windows are half-open: `start = "09:15", end = "11:45"` covers 09:15:00 up to 11:44:59;
//! at 11:45:00 monitoring has stopped. `"24:00"` is accepted as an end (midnight at the end
//! of the day); windows never cross midnight (write two windows instead).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Duration, PrimitiveDateTime, Time, Weekday};

/// Minutes in a day; `24:00` is the largest time accepted, as a window end only.
const DAY_MINUTES: u16 = 24 * 60;

/// Default for `min_free_minutes` when the config does not set it, and its floor: a school
/// may ask for a longer monitoring-free slot, never a shorter one (P3 asks for a slot of a
/// school-sized length, and half an hour is the shortest that deserves the name).
pub const DEFAULT_MIN_FREE_MINUTES: u16 = 30;

/// A language the human-readable texts are produced in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// French, the language of the school's policy documents.
    Fr,
    /// English.
    En,
}

/// `[schedule]` as written in the box's TOML config. Times and days are kept as text here
/// so that validation can name the exact field that is wrong (serde's own errors cannot
/// say `schedule.monitoring[1].end`).
///
/// It is also `Serialize` so the box can hand the same text to its stations, which validate
/// and enforce it themselves (defence in depth).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// When the stations may be used at all.
    pub access: Vec<WindowConfig>,
    /// When screens may be watched; empty means never.
    #[serde(default)]
    pub monitoring: Vec<WindowConfig>,
    /// Shortest monitoring-free stretch each day with access hours must keep (P3).
    #[serde(default = "default_min_free_minutes")]
    pub min_free_minutes: u16,
}

fn default_min_free_minutes() -> u16 {
    DEFAULT_MIN_FREE_MINUTES
}

/// One `{ days = [...], start = "HH:MM", end = "HH:MM" }` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Lower-case day names: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<String>,
    /// Start, `HH:MM`, inclusive.
    pub start: String,
    /// End, `HH:MM` (or `24:00`), exclusive.
    pub end: String,
}

/// Why a `[schedule]` is refused. Every variant names the config field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// A time is not `HH:MM` on a 24-hour clock.
    #[error(
        "'{field}' is not a time of day as HH:MM (00:00 to 23:59, or 24:00 as an end): {value:?}"
    )]
    BadTime { field: String, value: String },
    /// A day name is not one of the seven accepted.
    #[error(
        "'{field}' is not a day (expected one of mon, tue, wed, thu, fri, sat, sun): {value:?}"
    )]
    UnknownDay { field: String, value: String },
    /// A window lists no days.
    #[error("'{field}' lists no days")]
    NoDays { field: String },
    /// A window lists the same day twice.
    #[error("'{field}' lists {day} twice")]
    DuplicateDay { field: String, day: String },
    /// `end` is before `start`.
    #[error("'{field}.end' is before its start")]
    EndBeforeStart { field: String },
    /// `end` equals `start`: an empty window is always a mistake.
    #[error("'{field}' is empty: its start and end are both {time}")]
    EmptyWindow { field: String, time: String },
    /// Two windows of the same list overlap on some day.
    #[error("'{field}' overlaps '{other}' on {day}")]
    Overlap {
        field: String,
        other: String,
        day: String,
    },
    /// `access` is empty: the room would never be usable.
    #[error("'schedule.access' lists no window: stations would never be usable")]
    NoAccess,
    /// A monitoring window lies (partly) outside the access hours.
    #[error("'{field}' is outside the access hours on {day} (monitoring is only allowed while stations may be used)")]
    MonitoringOutsideAccess { field: String, day: String },
    /// `min_free_minutes` is below [`DEFAULT_MIN_FREE_MINUTES`]: the P3 slot may only be
    /// made longer.
    #[error(
        "'schedule.min_free_minutes' must be at least {minimum} (it is {value}): the monitoring-free slot may be made longer, not shorter"
    )]
    MinFreeTooSmall { value: u16, minimum: u16 },
    /// The P3 rule fails for a day.
    #[error(
        "'schedule.monitoring' leaves no monitoring-free slot of at least {required} minutes inside the access hours on {day} \
         (longest free slot: {longest} minutes; see 'schedule.min_free_minutes')"
    )]
    NoFreeSlot {
        day: String,
        required: u16,
        longest: u16,
    },
}

/// A half-open interval of minutes since local midnight, `start < end <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Span {
    start: u16,
    end: u16,
}

impl Span {
    fn len(self) -> u16 {
        self.end - self.start
    }
}

/// A validated schedule. Build it with [`ScheduleConfig::validate`] (or
/// [`Schedule::from_config`]); there is no other way, so every `Schedule` obeys P3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Index 0 is Monday. Spans are sorted and merged where they touch.
    access: [Vec<Span>; 7],
    monitoring: [Vec<Span>; 7],
    min_free_minutes: u16,
}

const DAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES_EN: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const DAY_NAMES_FR: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];

fn day_index(day: Weekday) -> usize {
    usize::from(day.number_days_from_monday())
}

/// Parses `HH:MM`; `allow_24` admits `24:00` (only meaningful as an end).
fn parse_hhmm(text: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    if !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    match (h, m) {
        (24, 0) if allow_24 => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl ScheduleConfig {
    /// Checks every rule of the module docs and builds the [`Schedule`].
    pub fn validate(&self) -> Result<Schedule, ScheduleError> {
        if self.min_free_minutes < DEFAULT_MIN_FREE_MINUTES {
            return Err(ScheduleError::MinFreeTooSmall {
                value: self.min_free_minutes,
                minimum: DEFAULT_MIN_FREE_MINUTES,
            });
        }
        if self.access.is_empty() {
            return Err(ScheduleError::NoAccess);
        }
        let access = parse_list("schedule.access", &self.access)?;
        let monitoring = parse_list("schedule.monitoring", &self.monitoring)?;

        let access_days = merge_days(&access);
        let monitoring_days = merge_days(&monitoring);

        for (field, day, span) in &monitoring {
            let inside = access_days[*day]
                .iter()
                .any(|a| a.start <= span.start && span.end <= a.end);
            if !inside {
                return Err(ScheduleError::MonitoringOutsideAccess {
                    field: field.clone(),
                    day: DAY_NAMES_EN[*day].to_owned(),
                });
            }
        }

        for day in 0..7 {
            // A day without access needs no free slot; a day without any monitoring window
            // is free from end to end, however short its access hours.
            if access_days[day].is_empty() || monitoring_days[day].is_empty() {
                continue;
            }
            let longest = free_spans(&access_days[day], &monitoring_days[day])
                .iter()
                .map(|s| s.len())
                .max()
                .unwrap_or(0);
            if longest < self.min_free_minutes {
                return Err(ScheduleError::NoFreeSlot {
                    day: DAY_NAMES_EN[day].to_owned(),
                    required: self.min_free_minutes,
                    longest,
                });
            }
        }

        Ok(Schedule {
            access: access_days,
            monitoring: monitoring_days,
            min_free_minutes: self.min_free_minutes,
        })
    }
}

/// Parses one list of windows into `(field name, day index, span)` triples and refuses
/// overlaps between windows of the same list (touching is fine).
fn parse_list(
    list_field: &str,
    windows: &[WindowConfig],
) -> Result<Vec<(String, usize, Span)>, ScheduleError> {
    let mut out: Vec<(String, usize, Span)> = Vec::new();
    for (i, window) in windows.iter().enumerate() {
        let field = format!("{list_field}[{i}]");
        let start =
            parse_hhmm(window.start.trim(), false).ok_or_else(|| ScheduleError::BadTime {
                field: format!("{field}.start"),
                value: window.start.clone(),
            })?;
        let end = parse_hhmm(window.end.trim(), true).ok_or_else(|| ScheduleError::BadTime {
            field: format!("{field}.end"),
            value: window.end.clone(),
        })?;
        if end < start {
            return Err(ScheduleError::EndBeforeStart { field });
        }
        if end == start {
            return Err(ScheduleError::EmptyWindow {
                field,
                time: window.start.clone(),
            });
        }
        if window.days.is_empty() {
            return Err(ScheduleError::NoDays {
                field: format!("{field}.days"),
            });
        }
        let span = Span { start, end };
        let mut seen = [false; 7];
        for (j, day) in window.days.iter().enumerate() {
            let key = day.trim().to_ascii_lowercase();
            let Some(d) = DAY_KEYS.iter().position(|k| *k == key) else {
                return Err(ScheduleError::UnknownDay {
                    field: format!("{field}.days[{j}]"),
                    value: day.clone(),
                });
            };
            if seen[d] {
                return Err(ScheduleError::DuplicateDay {
                    field: format!("{field}.days"),
                    day: DAY_KEYS[d].to_owned(),
                });
            }
            seen[d] = true;
            if let Some((other, _, _)) = out
                .iter()
                .find(|(_, od, os)| *od == d && os.start < span.end && span.start < os.end)
            {
                return Err(ScheduleError::Overlap {
                    field: field.clone(),
                    other: other.clone(),
                    day: DAY_NAMES_EN[d].to_owned(),
                });
            }
            out.push((field.clone(), d, span));
        }
    }
    Ok(out)
}

/// Groups spans by day, sorted, with touching spans joined (09:00–10:00 + 10:00–11:00 is
/// one stretch 09:00–11:00: for P3 and for "when does this window end" they are one).
fn merge_days(items: &[(String, usize, Span)]) -> [Vec<Span>; 7] {
    let mut days: [Vec<Span>; 7] = Default::default();
    for (_, d, s) in items {
        days[*d].push(*s);
    }
    for spans in &mut days {
        spans.sort();
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans.drain(..) {
            match merged.last_mut() {
                Some(last) if last.end >= s.start => last.end = last.end.max(s.end),
                _ => merged.push(s),
            }
        }
        *spans = merged;
    }
    days
}

/// `access` minus `monitoring`, both sorted and merged.
fn free_spans(access: &[Span], monitoring: &[Span]) -> Vec<Span> {
    let mut free = Vec::new();
    for a in access {
        let mut cursor = a.start;
        for m in monitoring {
            if m.end <= cursor || m.start >= a.end {
                continue;
            }
            if m.start > cursor {
                free.push(Span {
                    start: cursor,
                    end: m.start,
                });
            }
            cursor = cursor.max(m.end);
        }
        if cursor < a.end {
            free.push(Span {
                start: cursor,
                end: a.end,
            });
        }
    }
    free
}

/// Seconds since local midnight.
fn seconds_of_day(t: PrimitiveDateTime) -> u32 {
    let (h, m, s) = t.time().as_hms();
    u32::from(h) * 3600 + u32::from(m) * 60 + u32::from(s)
}

fn contains(spans: &[Span], second: u32) -> Option<Span> {
    spans
        .iter()
        .copied()
        .find(|s| u32::from(s.start) * 60 <= second && second < u32::from(s.end) * 60)
}

/// The local date-time `minutes` after midnight of `at`'s day (1440 is next midnight).
fn at_minute(at: PrimitiveDateTime, minutes: u16) -> PrimitiveDateTime {
    PrimitiveDateTime::new(at.date(), Time::MIDNIGHT) + Duration::minutes(i64::from(minutes))
}

impl Schedule {
    /// Validates a config; same as [`ScheduleConfig::validate`].
    pub fn from_config(config: &ScheduleConfig) -> Result<Self, ScheduleError> {
        config.validate()
    }

    /// The P3 threshold this schedule was validated against.
    pub fn min_free_minutes(&self) -> u16 {
        self.min_free_minutes
    }

    /// Whether screens may be watched at this local time.
    pub fn is_monitoring_at(&self, local: PrimitiveDateTime) -> bool {
        contains(
            &self.monitoring[day_index(local.weekday())],
            seconds_of_day(local),
        )
        .is_some()
    }

    /// Whether the stations may be used at this local time.
    pub fn is_access_at(&self, local: PrimitiveDateTime) -> bool {
        contains(
            &self.access[day_index(local.weekday())],
            seconds_of_day(local),
        )
        .is_some()
    }

    /// The first moment strictly after `after` at which monitoring begins (a window start
    /// not continuing a window that ran up to it). `None` when the schedule has no
    /// monitoring at all.
    pub fn next_monitoring_start(&self, after: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        // Eight days ahead covers "same weekday next week, earlier in the day".
        for offset in 0..8 {
            let day = after + Duration::days(offset);
            for span in &self.monitoring[day_index(day.weekday())] {
                let start = at_minute(day, span.start);
                if start <= after {
                    continue;
                }
                // A 00:00 start that continues yesterday's window up to 24:00 is not a start.
                if self.is_monitoring_at(start - Duration::seconds(1)) {
                    continue;
                }
                return Some(start);
            }
        }
        None
    }

    /// When the monitoring window in force at `at` ends (following a window that runs to
    /// midnight into the next day's 00:00 window). `None` when `at` is outside monitoring.
    pub fn current_window_end(&self, at: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        let span = contains(
            &self.monitoring[day_index(at.weekday())],
            seconds_of_day(at),
        )?;
        let mut end = at_minute(at, span.end);
        let mut end_minute = span.end;
        // At most a week of windows chained through midnight.
        for _ in 0..7 {
            if end_minute != DAY_MINUTES {
                break;
            }
            let Some(next) = contains(&self.monitoring[day_index(end.weekday())], 0) else {
                break;
            };
            end = at_minute(end, next.end);
            end_minute = next.end;
        }
        Some(end)
    }

    /// The next moment strictly after `after` at which monitoring starts or stops: the end of
    /// the window in force, or the start of the next one. `None` when the schedule has no
    /// monitoring window at all (nothing ever changes). The box and the stations sleep until
    /// this moment and act at the edge itself.
    pub fn next_edge(&self, after: PrimitiveDateTime) -> Option<PrimitiveDateTime> {
        match self.current_window_end(after) {
            Some(end) => Some(end),
            None => self.next_monitoring_start(after),
        }
    }

    /// Monitoring windows, one line per group of days with identical hours, e.g.
    /// `lundi, mardi, jeudi, vendredi : 9 h 15 – 11 h 45 et 13 h 15 – 16 h 45`.
    pub fn monitoring_lines(&self, lang: Lang) -> Vec<String> {
        group_lines(&self.monitoring, lang)
    }

    /// Access hours, grouped like [`Schedule::monitoring_lines`].
    pub fn access_lines(&self, lang: Lang) -> Vec<String> {
        group_lines(&self.access, lang)
    }

    /// Monitoring-free hours within the access hours (what P3 guarantees), grouped.
    pub fn free_lines(&self, lang: Lang) -> Vec<String> {
        let free: [Vec<Span>; 7] =
            std::array::from_fn(|d| free_spans(&self.access[d], &self.monitoring[d]));
        group_lines(&free, lang)
    }

    /// One-line summary of the monitoring hours:
    /// `lundi, mardi, jeudi, vendredi : 9 h 15 – 11 h 45 ; mercredi : 9 h 15 – 11 h 45` or
    /// `Monday, Tuesday, Thursday, Friday: 9:15–11:45; Wednesday: 9:15–11:45`.
    pub fn monitoring_summary(&self, lang: Lang) -> String {
        join_summary(self.monitoring_lines(lang), lang)
    }

    /// One-line summary of the access hours.
    pub fn access_summary(&self, lang: Lang) -> String {
        join_summary(self.access_lines(lang), lang)
    }

    /// One-line summary of the monitoring-free hours within the access hours.
    pub fn free_summary(&self, lang: Lang) -> String {
        join_summary(self.free_lines(lang), lang)
    }
}

fn join_summary(lines: Vec<String>, lang: Lang) -> String {
    if lines.is_empty() {
        return match lang {
            Lang::Fr => "aucune".to_owned(),
            Lang::En => "none".to_owned(),
        };
    }
    lines.join(match lang {
        Lang::Fr => " ; ",
        Lang::En => "; ",
    })
}

/// French writes `9 h 15` and `14 h`; English writes `9:15` and `14:00`.
fn format_minute(minute: u16, lang: Lang) -> String {
    let (h, m) = (minute / 60, minute % 60);
    match lang {
        Lang::Fr if m == 0 => format!("{h} h"),
        Lang::Fr => format!("{h} h {m:02}"),
        Lang::En => format!("{h}:{m:02}"),
    }
}

fn format_spans(spans: &[Span], lang: Lang) -> String {
    let (dash, and) = match lang {
        Lang::Fr => (" – ", " et "),
        Lang::En => ("–", " and "),
    };
    let parts: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{}{dash}{}",
                format_minute(s.start, lang),
                format_minute(s.end, lang)
            )
        })
        .collect();
    parts.join(and)
}

/// Days with identical spans share one line, in week order of their first day.
fn group_lines(days: &[Vec<Span>; 7], lang: Lang) -> Vec<String> {
    let names = match lang {
        Lang::Fr => DAY_NAMES_FR,
        Lang::En => DAY_NAMES_EN,
    };
    let mut groups: Vec<(Vec<usize>, &Vec<Span>)> = Vec::new();
    for (d, spans) in days.iter().enumerate() {
        if spans.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(_, s)| *s == spans) {
            Some((members, _)) => members.push(d),
            None => groups.push((vec![d], spans)),
        }
    }
    groups
        .into_iter()
        .map(|(members, spans)| {
            let mut line = String::new();
            for (i, d) in members.iter().enumerate() {
                if i > 0 {
                    line.push_str(", ");
                }
                line.push_str(names[*d]);
            }
            let sep = match lang {
                Lang::Fr => " : ",
                Lang::En => ": ",
            };
            let _ = write!(line, "{sep}{}", format_spans(spans, lang));
            line
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    pub(crate) fn window(days: &[&str], start: &str, end: &str) -> WindowConfig {
        WindowConfig {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.to_owned(),
            end: end.to_owned(),
        }
    }

    /// The CDI example of the issue: 9:15–11:45 and 13:15–16:45, access 8:00–18:00.
    pub(crate) fn cdi_config() -> ScheduleConfig {
        ScheduleConfig {
            access: vec![
                window(&["mon", "tue", "thu", "fri"], "08:00", "18:00"),
                window(&["wed"], "08:00", "12:30"),
            ],
            monitoring: vec![
                window(&["mon", "tue", "thu", "fri"], "09:15", "11:45"),
                window(&["mon", "tue", "thu", "fri"], "13:15", "16:45"),
                window(&["wed"], "09:15", "11:45"),
            ],
            min_free_minutes: 30,
        }
    }

    pub(crate) fn cdi() -> Schedule {
        cdi_config().validate().expect("the CDI example is valid")
    }

    #[test]
    fn monitoring_inside_and_outside_windows() {
        let s = cdi();
        // 2026-11-23 is a Monday.
        assert!(!s.is_monitoring_at(datetime!(2026-11-23 09:14:59)));
        assert!(s.is_monitoring_at(datetime!(2026-11-23 09:15:00)));
        assert!(s.is_monitoring_at(datetime!(2026-11-23 11:44:59)));
        assert!(!s.is_monitoring_at(datetime!(2026-11-23 11:45:00)));
        assert!(s.is_monitoring_at(datetime!(2026-11-25 10:00))); // Wednesday
        assert!(!s.is_monitoring_at(datetime!(2026-11-25 14:00))); // Wednesday afternoon
        assert!(!s.is_monitoring_at(datetime!(2026-11-28 10:00))); // Saturday
        assert!(s.is_access_at(datetime!(2026-11-23 12:00)));
        assert!(!s.is_access_at(datetime!(2026-11-25 13:00)));
    }

    #[test]
    fn next_start_and_window_end() {
        let s = cdi();
        assert_eq!(
            s.next_monitoring_start(datetime!(2026-11-23 12:00)),
            Some(datetime!(2026-11-23 13:15))
        );
        // Friday evening → Monday morning.
        assert_eq!(
            s.next_monitoring_start(datetime!(2026-11-27 17:00)),
            Some(datetime!(2026-11-30 09:15))
        );
        // Inside a window, the next start is the following window.
        assert_eq!(
            s.next_monitoring_start(datetime!(2026-11-23 09:15)),
            Some(datetime!(2026-11-23 13:15))
        );
        assert_eq!(
            s.current_window_end(datetime!(2026-11-23 10:00)),
            Some(datetime!(2026-11-23 11:45))
        );
        assert_eq!(s.current_window_end(datetime!(2026-11-23 12:00)), None);
    }

    #[test]
    fn the_next_edge_is_the_end_inside_a_window_and_the_start_outside() {
        let s = cdi();
        // Inside: the end of this window, even a fraction of a second before it.
        assert_eq!(
            s.next_edge(datetime!(2026-11-23 10:00)),
            Some(datetime!(2026-11-23 11:45))
        );
        assert_eq!(
            s.next_edge(datetime!(2026-11-23 11:44:59.999)),
            Some(datetime!(2026-11-23 11:45))
        );
        // At the end itself monitoring has stopped: the next edge is the next start.
        assert_eq!(
            s.next_edge(datetime!(2026-11-23 11:45)),
            Some(datetime!(2026-11-23 13:15))
        );
        // At a start monitoring runs: the next edge is that window's end.
        assert_eq!(
            s.next_edge(datetime!(2026-11-23 13:15)),
            Some(datetime!(2026-11-23 16:45))
        );
        // Friday evening: Monday morning.
        assert_eq!(
            s.next_edge(datetime!(2026-11-27 18:00)),
            Some(datetime!(2026-11-30 09:15))
        );
        // Every edge found is a real change of state.
        let mut at = datetime!(2026-11-23 00:00);
        for _ in 0..20 {
            let edge = s.next_edge(at).unwrap();
            assert!(edge > at);
            assert_ne!(
                s.is_monitoring_at(edge),
                s.is_monitoring_at(edge - Duration::seconds(1)),
                "no change at {edge}"
            );
            at = edge;
        }
        // No monitoring window: nothing ever changes.
        let never = ScheduleConfig {
            access: vec![window(&["mon"], "08:00", "17:00")],
            monitoring: vec![],
            min_free_minutes: 30,
        };
        assert_eq!(
            never
                .validate()
                .unwrap()
                .next_edge(datetime!(2026-11-23 09:00)),
            None
        );
    }

    #[test]
    fn the_free_slot_may_be_made_longer_never_shorter() {
        let mut cfg = cdi_config();
        cfg.min_free_minutes = 29;
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            err,
            ScheduleError::MinFreeTooSmall {
                value: 29,
                minimum: 30
            }
        );
        assert!(
            err.to_string().contains("'schedule.min_free_minutes'"),
            "{err}"
        );
        // Longer is fine while every day keeps such a slot (the CDI keeps 75 minutes before
        // its first window every day)…
        cfg.min_free_minutes = 75;
        assert!(cfg.validate().is_ok());
        // …and refused, naming the day, once a day cannot.
        cfg.min_free_minutes = 120;
        assert!(matches!(
            cfg.validate().unwrap_err(),
            ScheduleError::NoFreeSlot { required: 120, .. }
        ));
    }

    #[test]
    fn windows_through_midnight_are_one_window() {
        let cfg = ScheduleConfig {
            access: vec![window(&["mon", "tue"], "00:00", "24:00")],
            monitoring: vec![
                window(&["mon"], "22:00", "24:00"),
                window(&["tue"], "00:00", "02:00"),
            ],
            min_free_minutes: 30,
        };
        let s = cfg.validate().unwrap();
        assert_eq!(
            s.current_window_end(datetime!(2026-11-23 23:00)),
            Some(datetime!(2026-11-24 02:00))
        );
        // Tuesday 00:00 continues Monday's window: it is not a new start.
        assert_eq!(
            s.next_monitoring_start(datetime!(2026-11-23 22:30)),
            Some(datetime!(2026-11-30 22:00))
        );
    }

    #[test]
    fn no_monitoring_means_no_next_start() {
        let cfg = ScheduleConfig {
            access: vec![window(&["mon"], "08:00", "17:00")],
            monitoring: vec![],
            min_free_minutes: 30,
        };
        let s = cfg.validate().unwrap();
        assert_eq!(s.next_monitoring_start(datetime!(2026-11-23 07:00)), None);
        assert!(!s.is_monitoring_at(datetime!(2026-11-23 09:00)));
    }

    #[test]
    fn schedule_without_free_slot_is_rejected_naming_the_field() {
        let mut cfg = cdi_config();
        // Monitoring covers Wednesday's whole access time.
        cfg.monitoring[2] = window(&["wed"], "08:00", "12:30");
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            err,
            ScheduleError::NoFreeSlot {
                day: "Wednesday".into(),
                required: 30,
                longest: 0
            }
        );
        let text = err.to_string();
        assert!(text.contains("'schedule.monitoring'"), "{text}");
        assert!(text.contains("Wednesday"), "{text}");
    }

    #[test]
    fn free_slot_must_be_contiguous() {
        // 08:00–10:00 access; monitoring leaves 20 + 20 free minutes: 40 in total but no
        // single 30-minute slot.
        let cfg = ScheduleConfig {
            access: vec![window(&["mon"], "08:00", "10:00")],
            monitoring: vec![
                window(&["mon"], "08:20", "09:00"),
                window(&["mon"], "09:00", "09:40"),
            ],
            min_free_minutes: 30,
        };
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::NoFreeSlot {
                day: "Monday".into(),
                required: 30,
                longest: 20
            }
        );
        // Exactly 30 free minutes at the end is enough.
        let ok = ScheduleConfig {
            monitoring: vec![window(&["mon"], "08:00", "09:30")],
            ..cfg
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn short_day_without_monitoring_needs_no_free_slot() {
        // Saturday morning opens only 20 minutes, unmonitored: P3 holds that day.
        let mut cfg = cdi_config();
        cfg.access.push(window(&["sat"], "10:00", "10:20"));
        assert!(cfg.validate().is_ok());
        // The same 20 minutes with 5 of them monitored leave 15 free: refused.
        cfg.monitoring.push(window(&["sat"], "10:00", "10:05"));
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::NoFreeSlot {
                day: "Saturday".into(),
                required: 30,
                longest: 15
            }
        );
    }

    #[test]
    fn touching_access_windows_form_one_free_slot() {
        // Access 08:00–08:20 and 08:20–08:40, monitoring 08:40–10:00 in a third access
        // window: the first two form one 40-minute free stretch, so P3 holds even though
        // each of them alone is shorter than 30 minutes.
        let mut cfg = ScheduleConfig {
            access: vec![
                window(&["mon"], "08:00", "08:20"),
                window(&["mon"], "08:20", "08:40"),
                window(&["mon"], "08:40", "10:00"),
            ],
            monitoring: vec![window(&["mon"], "08:40", "10:00")],
            min_free_minutes: 30,
        };
        assert!(cfg.validate().is_ok());
        // With a gap between them (08:20–08:25 closed), the longest stretch is 20 minutes.
        cfg.access[1].start = "08:25".into();
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::NoFreeSlot {
                day: "Monday".into(),
                required: 30,
                longest: 20
            }
        );
    }

    #[test]
    fn field_named_errors() {
        let mut cfg = cdi_config();
        cfg.monitoring[1].end = "13:00".into();
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "'schedule.monitoring[1].end' is before its start"
        );

        let mut cfg = cdi_config();
        cfg.monitoring[0].start = "9h15".into();
        let err = cfg.validate().unwrap_err();
        assert!(
            matches!(&err, ScheduleError::BadTime { field, .. } if field == "schedule.monitoring[0].start")
        );

        let mut cfg = cdi_config();
        cfg.access[0].end = "24:01".into();
        assert!(
            matches!(cfg.validate().unwrap_err(), ScheduleError::BadTime { field, .. } if field == "schedule.access[0].end")
        );

        let mut cfg = cdi_config();
        cfg.monitoring[2].days = vec!["wed".into(), "mercredi".into()];
        let err = cfg.validate().unwrap_err();
        assert_eq!(
            err,
            ScheduleError::UnknownDay {
                field: "schedule.monitoring[2].days[1]".into(),
                value: "mercredi".into()
            }
        );

        let mut cfg = cdi_config();
        cfg.monitoring[1] = window(&["fri"], "11:00", "12:00");
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::Overlap {
                field: "schedule.monitoring[1]".into(),
                other: "schedule.monitoring[0]".into(),
                day: "Friday".into()
            }
        );

        let mut cfg = cdi_config();
        cfg.monitoring[2] = window(&["wed"], "12:00", "13:00");
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::MonitoringOutsideAccess {
                field: "schedule.monitoring[2]".into(),
                day: "Wednesday".into()
            }
        );

        let mut cfg = cdi_config();
        cfg.monitoring[0].end = "09:15".into();
        assert!(
            matches!(cfg.validate().unwrap_err(), ScheduleError::EmptyWindow { field, .. } if field == "schedule.monitoring[0]")
        );

        let mut cfg = cdi_config();
        cfg.min_free_minutes = 0;
        assert_eq!(
            cfg.validate().unwrap_err(),
            ScheduleError::MinFreeTooSmall {
                value: 0,
                minimum: 30
            }
        );

        let mut cfg = cdi_config();
        cfg.access.clear();
        cfg.monitoring.clear();
        assert_eq!(cfg.validate().unwrap_err(), ScheduleError::NoAccess);

        let mut cfg = cdi_config();
        cfg.access[1].days = vec!["wed".into(), "wed".into()];
        assert!(
            matches!(cfg.validate().unwrap_err(), ScheduleError::DuplicateDay { field, .. } if field == "schedule.access[1].days")
        );
    }

    #[test]
    fn config_round_trips_for_the_stations() {
        // The box sends its config text to stations, which validate it again: the same
        // text must give the same schedule.
        let cfg = cdi_config();
        let json = serde_json::to_string(&cfg).unwrap();
        let back: ScheduleConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.validate().unwrap(), cdi());
    }

    #[test]
    fn time_parsing() {
        assert_eq!(parse_hhmm("09:15", false), Some(555));
        assert_eq!(parse_hhmm("9:15", false), Some(555));
        assert_eq!(parse_hhmm("23:59", false), Some(1439));
        assert_eq!(parse_hhmm("24:00", true), Some(1440));
        assert_eq!(parse_hhmm("24:00", false), None);
        assert_eq!(parse_hhmm("12:60", false), None);
        assert_eq!(parse_hhmm("12:5", false), None);
        assert_eq!(parse_hhmm("+1:00", false), None);
        assert_eq!(parse_hhmm("1200", false), None);
    }

    #[test]
    fn summaries_in_french_and_english() {
        let s = cdi();
        assert_eq!(
            s.monitoring_summary(Lang::Fr),
            "lundi, mardi, jeudi, vendredi : 9 h 15 – 11 h 45 et 13 h 15 – 16 h 45 ; mercredi : 9 h 15 – 11 h 45"
        );
        assert_eq!(
            s.monitoring_summary(Lang::En),
            "Monday, Tuesday, Thursday, Friday: 9:15–11:45 and 13:15–16:45; Wednesday: 9:15–11:45"
        );
        assert_eq!(
            s.free_summary(Lang::Fr),
            "lundi, mardi, jeudi, vendredi : 8 h – 9 h 15 et 11 h 45 – 13 h 15 et 16 h 45 – 18 h ; mercredi : 8 h – 9 h 15 et 11 h 45 – 12 h 30"
        );
        assert_eq!(
            s.access_summary(Lang::En),
            "Monday, Tuesday, Thursday, Friday: 8:00–18:00; Wednesday: 8:00–12:30"
        );
    }
}
