//! "May this user do this to this station now?" — the one answer every path of the box asks.
//!
//! [`decide`] combines three rules, checked in this order so that the reason given is the
//! one the user can act on:
//! 1. the **role** (P6 and §3.3 of the design): a teacher uses the room, a technician only
//!    helps remotely, an admin may do everything;
//! 2. **screenshots** need `screenshots_enabled` (off by default, P4);
//! 3. **remote help** needs the role to be listed in `remote_help.roles` (the school decides
//!    per role; all three by default);
//! 4. **monitoring actions** (thumbnails, focus, screenshot, demo of a student's screen) are
//!    refused outside the schedule's monitoring windows (P3), for every role including
//!    admins, and the refusal carries the next time they are allowed.
//!
//! Remote help is not a monitoring action: it is allowed at any hour, because nothing is seen
//! before the student accepts the prompt on the station (P5), and the student can end it at
//! any time. An `Allow` for [`Action::RemoteHelp`] is only the box's half: the consent is the
//! station's report of the student's click, followed by the room, and the station plays input
//! only for the help its student accepted. The station also checks the schedule itself
//! before it sends any video outside remote help.
//!
//! Time comes from a [`Clock`] so that tests (and the box's own scenario tests) control it.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::schedule::{Lang, Schedule};

/// What a user asks to do to a station or to the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See the live thumbnail mosaic.
    Thumbnails,
    /// Open one station's full stream.
    Focus,
    /// Save a still image of a station's screen.
    Screenshot,
    /// Show one student's screen to the others.
    DemoOfStudent,
    /// Take control of a station to help (also needs the student's consent, P5).
    RemoteHelp,
    /// Lock or unlock screens.
    Lock,
    /// Send a text message.
    Message,
    /// Wake, shut down or restart stations.
    Power,
    /// Run an admin-approved command.
    RunCommand,
    /// Change the box's configuration (schedule, retention, screenshots…).
    AdminConfig,
    /// Export the audit log or the GDPR record.
    AuditExport,
    /// Approve station enrolment.
    Enrol,
    /// Create, disable and reset accounts.
    ManageAccounts,
    /// See the room: station names, online, locked, the running demo (no picture).
    ViewRoom,
    /// One's own account: sign out, two-factor setup, recovery codes, own password.
    OwnAccount,
    /// Show the teacher's own PC (the box's HDMI input) to the class, or stop a demo.
    DemoOfTeacher,
    /// Open a web page on stations.
    OpenUrl,
    /// See screenshots already taken (one's own; admins: all).
    ReadScreenshots,
    /// Print the room notice (poster).
    ReadNotice,
    /// List, revoke and delete enrolled stations.
    ManageStations,
    /// Clear a student's raised hand (the teacher has seen it). Watches nobody: any hour.
    ClearHand,
}

impl Action {
    /// Every action, for exhaustive tests and admin pages.
    pub const ALL: [Action; 21] = [
        Action::Thumbnails,
        Action::Focus,
        Action::Screenshot,
        Action::DemoOfStudent,
        Action::RemoteHelp,
        Action::Lock,
        Action::Message,
        Action::Power,
        Action::RunCommand,
        Action::AdminConfig,
        Action::AuditExport,
        Action::Enrol,
        Action::ManageAccounts,
        Action::ViewRoom,
        Action::OwnAccount,
        Action::DemoOfTeacher,
        Action::OpenUrl,
        Action::ReadScreenshots,
        Action::ReadNotice,
        Action::ManageStations,
        Action::ClearHand,
    ];

    /// The action's name as the audit log and the API write it (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            Action::Thumbnails => "thumbnails",
            Action::Focus => "focus",
            Action::Screenshot => "screenshot",
            Action::DemoOfStudent => "demo_of_student",
            Action::RemoteHelp => "remote_help",
            Action::Lock => "lock",
            Action::Message => "message",
            Action::Power => "power",
            Action::RunCommand => "run_command",
            Action::AdminConfig => "admin_config",
            Action::AuditExport => "audit_export",
            Action::Enrol => "enrol",
            Action::ManageAccounts => "manage_accounts",
            Action::ViewRoom => "view_room",
            Action::OwnAccount => "own_account",
            Action::DemoOfTeacher => "demo_of_teacher",
            Action::OpenUrl => "open_url",
            Action::ReadScreenshots => "read_screenshots",
            Action::ReadNotice => "read_notice",
            Action::ManageStations => "manage_stations",
            Action::ClearHand => "clear_hand",
        }
    }

    /// What the action is, in words, for refusals ("the teacher role may not …").
    pub fn describe(self) -> &'static str {
        match self {
            Action::Thumbnails => "see the live mosaic of the students' screens",
            Action::Focus => "open a student's screen full size",
            Action::Screenshot => "take a screenshot of a student's screen",
            Action::DemoOfStudent => "show a student's screen to the class",
            Action::RemoteHelp => "take control of a station to help",
            Action::Lock => "lock or unlock screens",
            Action::Message => "send or read class messages",
            Action::Power => "power stations on or off",
            Action::RunCommand => "run commands on stations",
            Action::AdminConfig => "change the box's settings",
            Action::AuditExport => "read or export the audit log and the GDPR record",
            Action::Enrol => "enrol stations",
            Action::ManageAccounts => "manage accounts",
            Action::ViewRoom => "see the room",
            Action::OwnAccount => "manage their own account",
            Action::DemoOfTeacher => "show the teacher's screen or stop a demo",
            Action::OpenUrl => "open web pages on stations",
            Action::ReadScreenshots => "see screenshots",
            Action::ReadNotice => "print the room notice",
            Action::ManageStations => "manage the enrolled stations",
            Action::ClearHand => "clear a student's raised hand",
        }
    }

    /// Whether this action lets someone see a student's screen, and so falls under the
    /// monitoring windows (P3) and lights the status LED (P2).
    pub fn is_monitoring(self) -> bool {
        matches!(
            self,
            Action::Thumbnails | Action::Focus | Action::Screenshot | Action::DemoOfStudent
        )
    }
}

/// An account's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Config, enrolment, accounts, audit export, and everything a teacher does.
    Admin,
    /// Room use: monitoring, demo, lock, message, power, commands, remote help.
    Teacher,
    /// Remote help only, with the student's consent.
    Technician,
}

impl Role {
    /// The role's name as accounts show it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
            Role::Technician => "technician",
        }
    }

    /// Role rules alone, ignoring time and settings.
    pub fn permits(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Teacher => !matches!(
                action,
                Action::AdminConfig
                    | Action::AuditExport
                    | Action::Enrol
                    | Action::ManageAccounts
                    | Action::ManageStations
            ),
            // Remote help, with the student's consent, and what any account needs to find
            // the station and manage its own sign-in: never a picture of a screen.
            Role::Technician => matches!(
                action,
                Action::RemoteHelp | Action::ViewRoom | Action::OwnAccount
            ),
        }
    }
}

/// Policy settings (in the box, made from its config's `[privacy]` and `[remote_help]`
/// sections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Screenshots are personal data kept on the box (P4): off unless the admin enables them.
    #[serde(default)]
    pub screenshots_enabled: bool,
    /// The roles that may ask a student for remote help (each one also needs the role rule).
    #[serde(default = "PolicyConfig::all_roles")]
    pub remote_help_roles: Vec<Role>,
}

impl PolicyConfig {
    fn all_roles() -> Vec<Role> {
        vec![Role::Admin, Role::Teacher, Role::Technician]
    }
}

impl Default for PolicyConfig {
    /// Screenshots off; remote help for every role allowed to help (consent makes it safe).
    fn default() -> Self {
        PolicyConfig {
            screenshots_enabled: false,
            remote_help_roles: PolicyConfig::all_roles(),
        }
    }
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Error)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DenyReason {
    /// The role may never do this.
    #[error("the {} role may not {}", role.name(), action.describe())]
    RoleNotPermitted { role: Role, action: Action },
    /// Screenshots are disabled in the config.
    #[error("screenshots are turned off on this box (privacy.screenshots in the configuration)")]
    ScreenshotsDisabled,
    /// Remote help is turned off for this role in the config.
    #[error("remote help is turned off for the {} role on this box ('remote_help.roles' in the configuration)", role.name())]
    RemoteHelpOff { role: Role },
    /// A monitoring action outside the monitoring windows.
    #[error("screens may not be watched outside the monitoring hours ('schedule.monitoring')")]
    OutsideMonitoringHours,
    /// A monitoring action in a room whose configuration has no monitoring schedule: no
    /// schedule means no monitoring at all (fail closed, P3).
    #[error("monitoring is not configured on this box (its configuration has no [schedule]), so no screen may be watched")]
    NoSchedule,
}

/// A refusal as an error, for callers that want `decide(..).into_result()?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{reason}{}", next_allowed_suffix(.next_allowed))]
pub struct Denied {
    /// Why.
    pub reason: DenyReason,
    /// When the schedule next allows it, if waiting helps.
    pub next_allowed: Option<PrimitiveDateTime>,
}

fn next_allowed_suffix(next: &Option<PrimitiveDateTime>) -> String {
    match next {
        Some(t) => format!(
            "; next allowed {} {} {:02}:{:02} (box local time)",
            t.weekday(),
            t.date(),
            t.hour(),
            t.minute()
        ),
        None => String::new(),
    }
}

/// The answer of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused; `next_allowed` is when the same request would next be allowed by the
    /// schedule, when waiting helps at all (`None` for role and settings refusals, and when
    /// the schedule has no monitoring window).
    Deny {
        reason: DenyReason,
        next_allowed: Option<PrimitiveDateTime>,
    },
}

impl Decision {
    /// Whether the action may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// `Ok(())` for `Allow`, the refusal as an error otherwise.
    pub fn into_result(self) -> Result<(), Denied> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny {
                reason,
                next_allowed,
            } => Err(Denied {
                reason,
                next_allowed,
            }),
        }
    }

    /// A sentence for the user, saying when monitoring is next allowed where it applies.
    /// `None` for `Allow`.
    pub fn explain(&self, lang: Lang) -> Option<String> {
        let Decision::Deny {
            reason,
            next_allowed,
        } = self
        else {
            return None;
        };
        let base = match (reason, lang) {
            (DenyReason::RoleNotPermitted { .. }, Lang::Fr) => {
                "Votre rôle ne permet pas cette action.".to_owned()
            }
            (DenyReason::RoleNotPermitted { .. }, Lang::En) => {
                "Your role does not allow this action.".to_owned()
            }
            (DenyReason::ScreenshotsDisabled, Lang::Fr) => {
                "Les captures d'écran sont désactivées sur ce boîtier.".to_owned()
            }
            (DenyReason::ScreenshotsDisabled, Lang::En) => {
                "Screenshots are disabled on this box.".to_owned()
            }
            (DenyReason::OutsideMonitoringHours, Lang::Fr) => {
                "Les écrans ne peuvent pas être visionnés en dehors des plages horaires de surveillance.".to_owned()
            }
            (DenyReason::OutsideMonitoringHours, Lang::En) => {
                "Screens may not be watched outside the monitoring hours.".to_owned()
            }
            (DenyReason::NoSchedule, Lang::Fr) => {
                "Aucune plage horaire de surveillance n'est configurée : les écrans ne peuvent pas être visionnés.".to_owned()
            }
            (DenyReason::NoSchedule, Lang::En) => {
                "No monitoring hours are configured: screens may not be watched.".to_owned()
            }
            (DenyReason::RemoteHelpOff { .. }, Lang::Fr) => {
                "L'aide à distance est désactivée pour votre rôle sur ce boîtier.".to_owned()
            }
            (DenyReason::RemoteHelpOff { .. }, Lang::En) => {
                "Remote help is turned off for your role on this box.".to_owned()
            }
        };
        Some(match (next_allowed, lang) {
            (Some(t), Lang::Fr) => format!(
                "{base} Prochaine plage : {} {} à {} h {:02}.",
                day_fr(*t),
                t.day(),
                t.hour(),
                t.minute()
            ),
            (Some(t), Lang::En) => format!(
                "{base} Next allowed: {} {} at {}:{:02}.",
                t.weekday(),
                t.day(),
                t.hour(),
                t.minute()
            ),
            (None, _) => base,
        })
    }
}

fn day_fr(t: PrimitiveDateTime) -> &'static str {
    [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ][usize::from(t.weekday().number_days_from_monday())]
}

/// Decides whether `role` may perform `action` at local time `now`.
pub fn decide(
    role: Role,
    action: Action,
    now: PrimitiveDateTime,
    schedule: &Schedule,
    config: &PolicyConfig,
) -> Decision {
    if !role.permits(action) {
        return Decision::Deny {
            reason: DenyReason::RoleNotPermitted { role, action },
            next_allowed: None,
        };
    }
    if action == Action::Screenshot && !config.screenshots_enabled {
        return Decision::Deny {
            reason: DenyReason::ScreenshotsDisabled,
            next_allowed: None,
        };
    }
    if action == Action::RemoteHelp && !config.remote_help_roles.contains(&role) {
        return Decision::Deny {
            reason: DenyReason::RemoteHelpOff { role },
            next_allowed: None,
        };
    }
    if action.is_monitoring() && !schedule.is_monitoring_at(now) {
        return Decision::Deny {
            reason: DenyReason::OutsideMonitoringHours,
            next_allowed: schedule.next_monitoring_start(now),
        };
    }
    Decision::Allow
}

/// [`decide`] for a room that may have no schedule at all: without one, every monitoring
/// action is refused ([`DenyReason::NoSchedule`]) and everything else follows the role and
/// settings rules.
pub fn decide_in_room(
    role: Role,
    action: Action,
    now: PrimitiveDateTime,
    schedule: Option<&Schedule>,
    config: &PolicyConfig,
) -> Decision {
    match schedule {
        Some(s) => decide(role, action, now, s, config),
        None => {
            if !role.permits(action) {
                return Decision::Deny {
                    reason: DenyReason::RoleNotPermitted { role, action },
                    next_allowed: None,
                };
            }
            if action == Action::Screenshot && !config.screenshots_enabled {
                return Decision::Deny {
                    reason: DenyReason::ScreenshotsDisabled,
                    next_allowed: None,
                };
            }
            if action == Action::RemoteHelp && !config.remote_help_roles.contains(&role) {
                return Decision::Deny {
                    reason: DenyReason::RemoteHelpOff { role },
                    next_allowed: None,
                };
            }
            if action.is_monitoring() {
                return Decision::Deny {
                    reason: DenyReason::NoSchedule,
                    next_allowed: None,
                };
            }
            Decision::Allow
        }
    }
}

/// The box's local wall-clock time, which the schedule is written in.
pub trait Clock {
    /// Current local date and time.
    fn now(&self) -> PrimitiveDateTime;
}

/// The system clock in the box's local time zone.
///
/// [`Clock::now`] uses `OffsetDateTime::now_local()`. Since `time` 0.3.37 that reads the
/// offset through the C library's `localtime_r` from any thread (the tokio daemon, `cargo
/// test`), so daylight-saving changes apply as they happen. The zone itself (`/etc/localtime`,
/// `TZ`) is loaded once per process: after changing the box's time zone, restart the daemon.
///
/// Fallback, for a platform where the offset cannot be read at all: the offset captured by
/// [`SystemClock::new`] (call it in `main`, before starting threads, where reading it is most
/// likely to succeed), and UTC if even that failed. A box whose schedule looks shifted by
/// whole hours is running on this fallback; [`SystemClock::fallback_offset`] shows it.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    fallback: UtcOffset,
}

impl SystemClock {
    /// Captures the current local offset (UTC if it cannot be determined).
    pub fn new() -> Self {
        SystemClock {
            fallback: UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC),
        }
    }

    /// The offset used when the local offset cannot be read at call time.
    pub fn fallback_offset(&self) -> UtcOffset {
        self.fallback
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> PrimitiveDateTime {
        let now = OffsetDateTime::now_local()
            .unwrap_or_else(|_| OffsetDateTime::now_utc().to_offset(self.fallback));
        PrimitiveDateTime::new(now.date(), now.time())
    }
}

/// A clock that only moves when told to: for tests of this crate and of the box.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<PrimitiveDateTime>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: PrimitiveDateTime) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Sets the time.
    pub fn set(&self, t: PrimitiveDateTime) {
        *self.lock() = t;
    }

    /// Moves the time forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrimitiveDateTime> {
        // A panic while holding this lock cannot leave a half-written time behind.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> PrimitiveDateTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::tests::cdi;
    use time::macros::datetime;

    #[test]
    fn thumbnails_allowed_inside_a_window_and_refused_outside_with_next_start() {
        let schedule = cdi();
        let config = PolicyConfig::default();
        // Monday 2026-11-23, 10:00: inside 9:15–11:45.
        let clock = ManualClock::new(datetime!(2026-11-23 10:00));
        assert_eq!(
            decide(
                Role::Teacher,
                Action::Thumbnails,
                clock.now(),
                &schedule,
                &config
            ),
            Decision::Allow
        );

        clock.advance(Duration::hours(2)); // 12:00, lunch break
        let d = decide(
            Role::Teacher,
            Action::Thumbnails,
            clock.now(),
            &schedule,
            &config,
        );
        assert_eq!(
            d,
            Decision::Deny {
                reason: DenyReason::OutsideMonitoringHours,
                next_allowed: Some(datetime!(2026-11-23 13:15)),
            }
        );
        assert_eq!(
            d.explain(Lang::En).unwrap(),
            "Screens may not be watched outside the monitoring hours. Next allowed: Monday 23 at 13:15."
        );
        assert!(d
            .explain(Lang::Fr)
            .unwrap()
            .ends_with("lundi 23 à 13 h 15."));

        assert_eq!(
            d.into_result().unwrap_err().to_string(),
            "screens may not be watched outside the monitoring hours ('schedule.monitoring'); \
             next allowed Monday 2026-11-23 13:15 (box local time)"
        );

        clock.set(datetime!(2026-11-23 13:15));
        assert!(decide(
            Role::Teacher,
            Action::Thumbnails,
            clock.now(),
            &schedule,
            &config
        )
        .is_allowed());
    }

    #[test]
    fn every_monitoring_action_is_refused_outside_windows_even_for_admins() {
        let schedule = cdi();
        let config = PolicyConfig {
            screenshots_enabled: true,
            ..PolicyConfig::default()
        };
        let saturday = datetime!(2026-11-28 10:00);
        for action in Action::ALL {
            let d = decide(Role::Admin, action, saturday, &schedule, &config);
            if action.is_monitoring() {
                assert_eq!(
                    d,
                    Decision::Deny {
                        reason: DenyReason::OutsideMonitoringHours,
                        next_allowed: Some(datetime!(2026-11-30 09:15))
                    },
                    "{action:?}"
                );
            } else {
                // Lock, messages, power, admin work: not monitoring, allowed any time.
                assert_eq!(d, Decision::Allow, "{action:?}");
            }
        }
    }

    #[test]
    fn screenshots_need_the_setting() {
        let schedule = cdi();
        let inside = datetime!(2026-11-23 10:00);
        let off = PolicyConfig::default();
        assert!(
            !off.screenshots_enabled,
            "screenshots must be off by default"
        );
        assert_eq!(
            decide(Role::Teacher, Action::Screenshot, inside, &schedule, &off),
            Decision::Deny {
                reason: DenyReason::ScreenshotsDisabled,
                next_allowed: None
            }
        );
        let on = PolicyConfig {
            screenshots_enabled: true,
            ..PolicyConfig::default()
        };
        assert!(decide(Role::Teacher, Action::Screenshot, inside, &schedule, &on).is_allowed());
    }

    #[test]
    fn role_limits() {
        let schedule = cdi();
        let config = PolicyConfig {
            screenshots_enabled: true,
            ..PolicyConfig::default()
        };
        let inside = datetime!(2026-11-23 10:00);
        let allowed = |role, action| decide(role, action, inside, &schedule, &config);

        let teacher_denied = [
            Action::AdminConfig,
            Action::AuditExport,
            Action::Enrol,
            Action::ManageAccounts,
            Action::ManageStations,
        ];
        for action in Action::ALL {
            assert!(
                allowed(Role::Admin, action).is_allowed(),
                "admin {action:?}"
            );
            assert_eq!(
                allowed(Role::Teacher, action).is_allowed(),
                !teacher_denied.contains(&action),
                "teacher {action:?}"
            );
            assert_eq!(
                allowed(Role::Technician, action).is_allowed(),
                matches!(
                    action,
                    Action::RemoteHelp | Action::ViewRoom | Action::OwnAccount
                ),
                "technician {action:?}"
            );
        }
        assert_eq!(
            allowed(Role::Teacher, Action::AuditExport),
            Decision::Deny {
                reason: DenyReason::RoleNotPermitted {
                    role: Role::Teacher,
                    action: Action::AuditExport
                },
                next_allowed: None
            }
        );
        // The role refusal wins over the schedule: waiting would not help a technician lock.
        let outside = datetime!(2026-11-28 10:00);
        assert_eq!(
            decide(Role::Technician, Action::Lock, outside, &schedule, &config),
            Decision::Deny {
                reason: DenyReason::RoleNotPermitted {
                    role: Role::Technician,
                    action: Action::Lock
                },
                next_allowed: None
            }
        );
        // Remote help is not monitoring: the student's consent is the safeguard, at any hour.
        assert!(decide(
            Role::Technician,
            Action::RemoteHelp,
            outside,
            &schedule,
            &config
        )
        .is_allowed());
        assert!(
            decide_in_room(Role::Teacher, Action::RemoteHelp, outside, None, &config).is_allowed()
        );
    }

    #[test]
    fn the_school_turns_remote_help_off_per_role() {
        let schedule = cdi();
        let inside = datetime!(2026-11-23 10:00);
        let config = PolicyConfig {
            remote_help_roles: vec![Role::Teacher],
            ..PolicyConfig::default()
        };
        assert!(decide(
            Role::Teacher,
            Action::RemoteHelp,
            inside,
            &schedule,
            &config
        )
        .is_allowed());
        for role in [Role::Technician, Role::Admin] {
            assert_eq!(
                decide(role, Action::RemoteHelp, inside, &schedule, &config),
                Decision::Deny {
                    reason: DenyReason::RemoteHelpOff { role },
                    next_allowed: None
                }
            );
            assert!(matches!(
                decide_in_room(role, Action::RemoteHelp, inside, None, &config),
                Decision::Deny {
                    reason: DenyReason::RemoteHelpOff { .. },
                    ..
                }
            ));
        }
        // Everything else stays as it was.
        assert!(decide(Role::Admin, Action::Focus, inside, &schedule, &config).is_allowed());
        // By default every role that may help, may.
        assert_eq!(
            PolicyConfig::default().remote_help_roles,
            vec![Role::Admin, Role::Teacher, Role::Technician]
        );
    }

    #[test]
    fn without_a_schedule_nothing_is_watched_and_the_rest_works() {
        let config = PolicyConfig {
            screenshots_enabled: true,
            ..PolicyConfig::default()
        };
        let now = datetime!(2026-11-23 10:00);
        for action in Action::ALL {
            let d = decide_in_room(Role::Admin, action, now, None, &config);
            if action.is_monitoring() {
                assert_eq!(
                    d,
                    Decision::Deny {
                        reason: DenyReason::NoSchedule,
                        next_allowed: None
                    },
                    "{action:?}"
                );
            } else {
                assert_eq!(d, Decision::Allow, "{action:?}");
            }
        }
        // The role is still the first answer.
        assert!(matches!(
            decide_in_room(Role::Technician, Action::Lock, now, None, &config),
            Decision::Deny {
                reason: DenyReason::RoleNotPermitted { .. },
                ..
            }
        ));
        // With a schedule it is exactly `decide`.
        let s = cdi();
        for action in Action::ALL {
            assert_eq!(
                decide_in_room(Role::Teacher, action, now, Some(&s), &config),
                decide(Role::Teacher, action, now, &s, &config)
            );
        }
    }

    #[test]
    fn action_names_are_their_serde_names() {
        for action in Action::ALL {
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                serde_json::Value::String(action.name().into())
            );
        }
    }

    #[test]
    fn policy_config_refuses_unknown_fields() {
        let err = toml::from_str::<PolicyConfig>("screenshot_enabled = true").unwrap_err();
        assert!(err.to_string().contains("screenshot_enabled"), "{err}");
        let ok: PolicyConfig = toml::from_str("screenshots_enabled = true").unwrap();
        assert!(ok.screenshots_enabled);
    }

    /// The docs above rely on this: `time` must read the local offset in a multi-threaded
    /// process (the test harness runs tests on several threads, and this spawns another).
    #[test]
    fn local_offset_is_readable_from_another_thread() {
        let read = std::thread::spawn(|| OffsetDateTime::now_local().is_ok())
            .join()
            .unwrap();
        assert!(read, "time::OffsetDateTime::now_local() failed in a thread");
    }

    #[test]
    fn system_clock_is_close_to_utc_plus_its_offset() {
        let clock = SystemClock::new();
        let utc = OffsetDateTime::now_utc();
        let local = clock.now();
        let as_utc = local.assume_offset(clock.fallback_offset());
        // Either now_local worked (same offset as captured, on a box without a DST change in
        // between) or the fallback was used: both give the same instant within a second.
        assert!(
            (as_utc - utc).abs() < Duration::seconds(2),
            "{as_utc} vs {utc}"
        );
    }
}
