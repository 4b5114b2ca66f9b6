//! The station's own configuration file on the PC (`/etc/lanterne/station.toml` by default):
//! what this PC lets the box do, decided by whoever administers the PC, not by the box.
//!
//! It holds the command allow-list (the box orders only commands its admin approved, and the
//! station runs only those that are also listed here, so a box that is stolen, misconfigured
//! or impersonated cannot run arbitrary programs as root on the PCs) and where the service
//! waits for the session helper, and whom it accepts as one (`[session]`).
//!
//! Unknown keys are errors and every semantic check names its field
//! (`'commands[1].program' must be an absolute path`). No file means an empty list: the
//! station then runs no command at all (fail closed). Because the file decides what runs as
//! root, it must not be writable by anyone but its owner, and its owner must be root or the
//! account the agent runs as. `images/config/station.toml` is the commented sample; a test
//! proves it parses.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// Largest file accepted; a real one is a few KiB.
const MAX_CONFIG_BYTES: u64 = 256 * 1024;
/// Bounds of one entry, the same as the box applies to its approved commands.
const MAX_ARGS: usize = 32;
const MAX_ARG_BYTES: usize = 256;
const MAX_PROGRAM_BYTES: usize = 256;
const MAX_COMMANDS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: '{field}' {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{path}: {problem}; it decides what this station runs as its service account")]
    Unsafe { path: PathBuf, problem: String },
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StationConfig {
    /// Commands the box may have this station run; nothing else is run.
    #[serde(default)]
    pub commands: Vec<AllowedCommand>,
    #[serde(default)]
    pub session: SessionHelper,
}

/// Where the session helper meets the service: a Unix socket on Linux (`session_socket`), a
/// named pipe (`\\.\pipe\name`) on Windows (`session_pipe`). Account names in `users` and
/// `groups` are Windows account names there (`eleve` or `PC\eleve`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionHelper {
    /// Where the service listens for the helper.
    #[serde(default = "SessionHelper::default_socket")]
    pub socket: PathBuf,
    /// Accounts whose helper is accepted. With `groups` empty too: any account but root.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups whose members' helper is accepted.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl SessionHelper {
    fn default_socket() -> PathBuf {
        PathBuf::from(crate::platform::DEFAULT_SESSION_SOCKET)
    }
}

impl Default for SessionHelper {
    fn default() -> Self {
        SessionHelper {
            socket: Self::default_socket(),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }
}

/// One command this PC accepts.
///
/// A command the box orders matches when its program is `program` exactly, its first
/// arguments are `args` exactly and in order, and every further argument is one of
/// `allowed_args` (the same shape as the box's approved commands, so an entry can be copied
/// from the box's configuration). With `allowed_args` empty, the argument list must be
/// exactly `args`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AllowedCommand {
    /// Absolute path of the program; started directly, never through a shell.
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub allowed_args: Vec<String>,
}

impl StationConfig {
    /// Reads `path`. A missing file is an empty configuration (no command allowed); any
    /// other problem is an error naming the file and the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StationConfig::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        check_ownership(path, &meta)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: StationConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: describe_toml_error(&e),
        })?;
        cfg.validate()
            .map_err(|(field, problem)| ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                problem,
            })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        if self.commands.len() > MAX_COMMANDS {
            return Err((
                "commands".into(),
                format!("lists more than {MAX_COMMANDS} commands"),
            ));
        }
        for (i, c) in self.commands.iter().enumerate() {
            let f = |name: &str| format!("commands[{i}].{name}");
            let p = Path::new(&c.program);
            if !p.is_absolute()
                || c.program.len() > MAX_PROGRAM_BYTES
                || c.program.contains('\0')
                || p.components()
                    .any(|k| matches!(k, Component::CurDir | Component::ParentDir))
            {
                return Err((
                    f("program"),
                    format!(
                        "must be an absolute path without '.' or '..' of at most \
                         {MAX_PROGRAM_BYTES} bytes (no shell, no PATH lookup)"
                    ),
                ));
            }
            for (what, list) in [("args", &c.args), ("allowed_args", &c.allowed_args)] {
                if list.len() > MAX_ARGS
                    || list
                        .iter()
                        .any(|a| a.len() > MAX_ARG_BYTES || a.contains('\0'))
                {
                    return Err((
                        f(what),
                        format!(
                            "at most {MAX_ARGS} arguments of at most {MAX_ARG_BYTES} bytes, \
                             without NUL"
                        ),
                    ));
                }
            }
        }
        if !self.session.socket.is_absolute() {
            return Err(("session.socket".into(), "must be an absolute path".into()));
        }
        for (what, list) in [
            ("session.users", &self.session.users),
            ("session.groups", &self.session.groups),
        ] {
            if list.len() > 64 {
                return Err((what.into(), "lists more than 64 names".into()));
            }
            for (i, name) in list.iter().enumerate() {
                if name.is_empty()
                    || name.len() > 64
                    || name
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/')
                {
                    return Err((
                        format!("{what}[{i}]"),
                        "must be an account or group name (1 to 64 characters, no spaces, \
                         ':' or '/')"
                            .into(),
                    ));
                }
                if name == "root" && what == "session.users" {
                    return Err((
                        format!("{what}[{i}]"),
                        "root may not run the session helper".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The file decides what runs as root: refuse one that another account could have written
/// (the platform decides what that means: mode and owner on Linux, owner and access list on
/// Windows).
fn check_ownership(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    crate::platform::check_config_ownership(path, meta).map_err(|problem| ConfigError::Unsafe {
        path: path.to_path_buf(),
        problem,
    })
}

/// toml's messages already name the key and the line; keep them on one line, since they end
/// up in logs and systemd status.
fn describe_toml_error(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn parse(text: &str) -> Result<StationConfig, ConfigError> {
        StationConfig::parse(text, Path::new("station.toml"))
    }

    /// Unix paths.
    #[cfg(unix)]
    #[test]
    fn the_shipped_sample_parses_and_lists_absolute_programs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/config/station.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg = StationConfig::parse(&text, &path).expect("sample config is valid");
        assert!(!cfg.commands.is_empty(), "the sample shows commands");
        assert!(cfg.commands.iter().all(|c| c.program.starts_with('/')));
        assert_eq!(
            cfg.session.socket,
            Path::new("/run/lanterne-station/session.sock")
        );
    }

    /// Unix paths.
    #[cfg(unix)]
    #[test]
    fn the_session_section_is_checked_by_field() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.session, SessionHelper::default());
        let cfg = parse("[session]\nsocket = \"/tmp/s.sock\"\ngroups = [\"eleves\"]\n").unwrap();
        assert_eq!(cfg.session.groups, ["eleves"]);
        let err = parse("[session]\nsocket = \"s.sock\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'session.socket'"), "{err}");
        let err = parse("[session]\nusers = [\"eleve\", \"a b\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'session.users[1]'"), "{err}");
        let err = parse("[session]\nusers = [\"root\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'session.users[0]'") && err.contains("root"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_allows_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StationConfig::load(&dir.path().join("absent.toml")).unwrap();
        assert!(cfg.commands.is_empty());
    }

    /// Unix paths.
    #[cfg(unix)]
    #[test]
    fn bad_entries_are_named_by_field() {
        let err = parse("[[commands]]\nprogram = \"df\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'commands[0].program'"), "{err}");
        let err = parse("[[commands]]\nprogram = \"/bin/true\"\n[[commands]]\nprogram = \"/usr/bin/../bin/sh\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'commands[1].program'"), "{err}");
        let long = format!(
            "[[commands]]\nprogram = \"/bin/echo\"\nallowed_args = [{}]\n",
            vec!["\"x\""; 33].join(",")
        );
        let err = parse(&long).unwrap_err().to_string();
        assert!(err.contains("'commands[0].allowed_args'"), "{err}");
        let err = parse("[[commands]]\nprogram = \"/bin/echo\"\nname = \"echo\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field") && err.contains("name"),
            "{err}"
        );
        assert!(err.contains("station.toml"), "{err}");
    }

    /// Unix modes and owners; Windows ACLs are not checked yet.
    #[cfg(unix)]
    #[test]
    fn a_file_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("station.toml");
        std::fs::write(&path, "[[commands]]\nprogram = \"/bin/true\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(StationConfig::load(&path).unwrap().commands.len(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = StationConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("writable") && err.contains("666"), "{err}");
    }
}
