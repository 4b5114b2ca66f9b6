//! `lanterne-box`: the classroom box daemon.
//!
//! ```text
//! lanterne-box run --data-dir /var/lib/lanterne --config /etc/lanterne/lanterne.toml
//! lanterne-box enrol-codes --data-dir /var/lib/lanterne --count 30
//! lanterne-box stations --data-dir /var/lib/lanterne
//! lanterne-box revoke-station --data-dir /var/lib/lanterne poste-12
//! lanterne-box delete-station --data-dir /var/lib/lanterne poste-12
//! ```
//! Revoking or deleting works while the box runs: it notices within a second and cuts the
//! station's link.
//! Without `--config`, a development room is used (HTTPS on 127.0.0.1:8443, station link on
//! 127.0.0.1:7443). `RUST_LOG` sets the log filter (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lanterne_box::{Config, Options};

#[derive(Parser)]
#[command(version, about = "Lanterne classroom box")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the box.
    Run {
        #[arg(long, default_value = "/var/lib/lanterne")]
        data_dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override the config's HTTPS address (e.g. 127.0.0.1:0 in tests).
        #[arg(long)]
        https: Option<SocketAddr>,
        /// Override the config's station link address.
        #[arg(long)]
        station_link: Option<SocketAddr>,
        /// Override the config's plain-HTTP redirect address.
        #[arg(long)]
        http_redirect: Option<SocketAddr>,
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Print one-time station enrolment tokens (`CODE@CA-FINGERPRINT`), one per line.
    EnrolCodes {
        #[arg(long, default_value = "/var/lib/lanterne")]
        data_dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long, default_value_t = 24)]
        ttl_hours: u64,
    },
    /// List enrolled stations (id, name, host name, MAC address, revoked).
    Stations {
        #[arg(long, default_value = "/var/lib/lanterne")]
        data_dir: PathBuf,
    },
    /// Revoke a station (by id or name): its certificate is refused from now on and a
    /// running box cuts its link. It stays listed until deleted.
    RevokeStation {
        #[arg(long, default_value = "/var/lib/lanterne")]
        data_dir: PathBuf,
        /// The station's id or name.
        station: String,
    },
    /// Delete a station (by id or name) and everything the box holds about it; its audit
    /// lines keep `station#<id>` instead of its name.
    DeleteStation {
        #[arg(long, default_value = "/var/lib/lanterne")]
        data_dir: PathBuf,
        /// The station's id or name.
        station: String,
    },
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::development("Salle de démonstration"),
    })
}

/// The box's allocator policy. glibc gives threads that allocate their own malloc arenas (up
/// to eight per core) and keeps freed memory in each; and after a large block is freed it
/// raises its mmap threshold, so later 19 MiB argon2 runs and large video buffers come from
/// the arenas and stay there. Under load the box's RSS grew past 330 MB (measured by the
/// hostile-network test). The box holds itself to two arenas and always maps blocks of 1 MiB
/// and more directly (returned to the system when freed), however it is started. glibc reads
/// these variables only when a process starts, so the box sets them and executes itself
/// again, once, before anything else runs (the process id stays the same). Values set by
/// whoever started the box are respected.
const MALLOC_POLICY: [(&str, &str); 2] = [
    ("MALLOC_ARENA_MAX", "2"),
    ("MALLOC_MMAP_THRESHOLD_", "1048576"),
];

fn hold_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    if MALLOC_POLICY
        .iter()
        .all(|(k, _)| std::env::var_os(k).is_some())
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(std::env::args_os().skip(1));
    for (k, v) in MALLOC_POLICY {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    let err = cmd.exec();
    // Only reached when exec failed: run as started, with glibc's defaults.
    eprintln!("lanterne-box: could not re-execute with its allocator policy ({err}); continuing");
}

fn main() -> anyhow::Result<()> {
    hold_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_cli())
}

/// Where the log goes. Under systemd, standard error is the journal: the box then speaks
/// journald's own protocol, so that each event's fields (the peer, the station, the error…)
/// stay separate journal fields, named `LANTERNE_<FIELD>`, which `journalctl -o verbose`
/// shows, `journalctl LANTERNE_PEER=…` selects and forwarders keep. Anywhere else, formatted
/// lines on standard error. Standard output is for what a person asked for (the first-start
/// password, enrolment codes).
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if stderr_is_the_journal() {
        match tracing_journald::layer() {
            Ok(journal) => {
                let journal = journal
                    .with_field_prefix(Some("LANTERNE".into()))
                    .with_syslog_identifier("lanterne-box".into());
                tracing_subscriber::registry()
                    .with(filter())
                    .with(journal)
                    .init();
                return;
            }
            Err(e) => eprintln!(
                "lanterne-box: cannot write to journald's socket ({e}); logging lines to standard error"
            ),
        }
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter())
        .init();
}

/// Standard error is the journal when it is the stream systemd names in `JOURNAL_STREAM`
/// ("device:inode"), as systemd.exec(5) says to check.
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(named) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    journal_stream_is(&named, meta.dev(), meta.ino())
}

/// `JOURNAL_STREAM`'s "device:inode" names this device and inode.
fn journal_stream_is(named: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = named.split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

async fn run_cli() -> anyhow::Result<()> {
    init_logging();
    match Cli::parse().cmd {
        Cmd::Run {
            data_dir,
            config,
            https,
            station_link,
            http_redirect,
            ready_file,
        } => {
            let mut config = load_config(config.as_ref())?;
            if let Some(a) = https {
                config.network.https = a;
            }
            if let Some(a) = station_link {
                config.network.station_link = a;
            }
            if let Some(a) = http_redirect {
                config.network.http_redirect = Some(a);
            }
            lanterne_box::run(Options {
                data_dir,
                config,
                ready_file,
            })
            .await
        }
        Cmd::EnrolCodes {
            data_dir,
            config,
            count,
            ttl_hours,
        } => {
            let config = load_config(config.as_ref())?;
            let ttl = std::time::Duration::from_secs(ttl_hours.clamp(1, 24 * 30) * 3600);
            for token in
                lanterne_box::create_enrol_codes(&data_dir, &config.room.name, count.min(500), ttl)?
            {
                println!("{token}");
            }
            Ok(())
        }
        Cmd::Stations { data_dir } => {
            for s in lanterne_box::stations::list_in(&data_dir)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    s.id,
                    s.name,
                    s.hostname,
                    s.mac.as_deref().unwrap_or("-"),
                    if s.revoked { "revoked" } else { "enrolled" }
                );
            }
            Ok(())
        }
        Cmd::RevokeStation { data_dir, station } => {
            let s = lanterne_box::stations::revoke_in(&data_dir, &station)?;
            println!("revoked station {} ({})", s.id, s.name);
            Ok(())
        }
        Cmd::DeleteStation { data_dir, station } => {
            let d = lanterne_box::stations::delete_in(&data_dir, &station)?;
            println!(
                "deleted station {} ({}); its audit lines now say {}",
                d.id, d.name, d.pseudonym
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::journal_stream_is;

    #[test]
    fn the_journal_is_used_only_for_the_stream_systemd_names() {
        assert!(journal_stream_is("64:123456", 64, 123456));
        assert!(!journal_stream_is("64:123456", 64, 123457));
        assert!(!journal_stream_is("65:123456", 64, 123456));
        for bad in ["", "64", "64:", ":123456", "x:y", "64:123456:7", "-1:2"] {
            assert!(!journal_stream_is(bad, 64, 123456), "{bad:?}");
        }
    }
}
