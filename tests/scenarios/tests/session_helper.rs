//! The station agent as two processes, as installed on a PC: the system service
//! (`lanterne-station run`) as root, and the session helper (`lanterne-station session`) as a
//! student's account on an X display (Xvfb). The box orders a URL opened and the test proves
//! the opener ran as the student, not as root; helpers running as root, as an account the
//! station's configuration does not list, or talking to a service of another account are
//! refused, and only one helper is served at a time.
//!
//! Needs root (CI runs as root): the service runs as root and the helpers as system accounts
//! the test creates with `useradd --system` when they are missing.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lanterne_scenarios::xvfb::start_xvfb;
use lanterne_scenarios::{bin, BoxProcess};

/// A student's account on the PC.
#[derive(Debug, Clone, Copy)]
struct Account {
    uid: u32,
    gid: u32,
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .flatten()
}

/// The account `name`, created as a system account if missing. Tests run in parallel
/// threads: one at a time edits /etc/passwd.
fn system_account(name: &str) -> Account {
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    if id(&["-u", name]).is_none() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .status()
            .expect("useradd (passwd) must be installed");
        assert!(status.success(), "useradd {name} failed: {status}");
    }
    Account {
        uid: id(&["-u", name]).expect("the account exists"),
        gid: id(&["-g", name]).expect("the account has a group"),
    }
}

fn assert_root() {
    assert_eq!(
        id(&["-u"]),
        Some(0),
        "this test runs the station service as root and its helpers as other accounts: \
         run it as root (as CI does)"
    );
}

/// A child process logging to a file, killed on drop.
struct Logged {
    child: Child,
    log: PathBuf,
}

impl Logged {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until one line of the log has every one of `needles`.
    async fn wait_line(&self, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needles:?} in {} within {timeout:?}:\n{}",
                self.log.display(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the process exits; returns whether it succeeded.
    async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {timeout:?}:\n{}",
                self.log.display(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One PC: its enrolled identity, configuration and socket in a directory every account
/// may traverse (the helpers are not root).
struct Pc {
    dir: tempfile::TempDir,
    station_id: u32,
}

impl Pc {
    async fn enrol(b: &BoxProcess, name: &str) -> Pc {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let station_id = b
            .enrol(&dir.path().join("data"), name)
            .await
            .unwrap()
            .station_id;
        Pc { dir, station_id }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("session.sock")
    }

    /// Starts the service (as root, like the test) with `[session]` admitting `users`.
    async fn service(&self, users: &[&str]) -> Logged {
        let config = self.dir.path().join("station.toml");
        let users: Vec<String> = users.iter().map(|u| format!("{u:?}")).collect();
        std::fs::write(
            &config,
            format!(
                "[session]\nsocket = {:?}\nusers = [{}]\n",
                self.socket().display().to_string(),
                users.join(", ")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = self.dir.path().join("service.log");
        let child = Command::new(bin("lanterne-station"))
            .args(["run", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let service = Logged { child, log };
        service
            .wait_line(&["waiting for the session helper"], Duration::from_secs(30))
            .await;
        service
    }

    /// Starts a helper as `account` (None: as root, like the test), with `args` after the
    /// socket. Its home (GStreamer's registry cache) is its own directory.
    fn helper(&self, tag: &str, account: Option<Account>, args: &[&str]) -> Logged {
        let home = self.dir.path().join(format!("home-{tag}"));
        std::fs::create_dir_all(&home).unwrap();
        let log = self.dir.path().join(format!("helper-{tag}.log"));
        let mut cmd = Command::new(bin("lanterne-station"));
        cmd.arg("session")
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .env("HOME", &home)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(a) = account {
            std::os::unix::fs::chown(&home, Some(a.uid), Some(a.gid)).unwrap();
            cmd.uid(a.uid).gid(a.gid);
        }
        Logged {
            child: cmd.spawn().unwrap(),
            log,
        }
    }
}

/// Stands in for xdg-open: records the account that ran it and what it was asked to open.
fn opener(dir: &Path, student: Account) -> (PathBuf, PathBuf) {
    let out_dir = dir.join("opened");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::chown(&out_dir, Some(student.uid), Some(student.gid)).unwrap();
    let out = out_dir.join("opened.txt");
    let script = dir.join("xdg-open");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$(id -u) $1\" > {0}.tmp && mv {0}.tmp {0}\n",
            out.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, out)
}

#[tokio::test]
async fn a_url_opens_in_the_students_session_as_the_student_not_as_root() {
    assert_root();
    let student = system_account("lanterne-eleve");
    let (_xvfb, display) = start_xvfb();
    let b = BoxProcess::start().await.unwrap();
    let pc = Pc::enrol(&b, "poste-eleve").await;
    let (script, opened) = opener(pc.dir.path(), student);
    let service = pc.service(&["lanterne-eleve"]).await;
    let script = script.display().to_string();
    let _helper = pc.helper(
        "eleve",
        Some(student),
        &["--display", &display, "--opener", &script],
    );
    service
        .wait_line(
            &["session connected", &format!("uid {}", student.uid), "x11"],
            Duration::from_secs(60),
        )
        .await;
    b.wait_log_line(&["station online", "poste-eleve"], Duration::from_secs(30))
        .await
        .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let url = "https://fr.wikipedia.org/wiki/Lanterne";
    let res = https
        .post_json(
            &cookie,
            "/api/stations/open-url",
            serde_json::json!({ "url": url, "stations": [pc.station_id] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let order = res.json()["id"].as_u64().unwrap();
    // The tablet's report says it was done…
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        let run = https
            .request(
                "GET",
                &format!("/api/orders/{order}"),
                None,
                &[("cookie", &cookie)],
            )
            .await
            .unwrap()
            .json();
        if run["results"][0]["done"] == true {
            break run["results"][0].clone();
        }
        assert!(Instant::now() < deadline, "no answer: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(result["ok"], true, "{result}");
    // …and the opener ran as the student, with the URL as its one argument.
    let line = std::fs::read_to_string(&opened).expect("the opener ran");
    assert_eq!(line.trim(), format!("{} {url}", student.uid));
    assert_ne!(student.uid, 0);
}

#[tokio::test]
async fn helpers_as_root_or_an_unlisted_account_are_refused_and_one_is_served_at_a_time() {
    assert_root();
    let student = system_account("lanterne-eleve");
    let other = system_account("lanterne-autre");
    let b = BoxProcess::start().await.unwrap();
    let pc = Pc::enrol(&b, "poste-refus").await;
    let service = pc.service(&["lanterne-eleve"]).await;
    // Display-less helpers: a test pattern instead of a screen.
    let synthetic = ["--source", "synthetic"];

    let mut root = pc.helper("root", None, &synthetic);
    assert!(!root.wait_exit(Duration::from_secs(60)).await, "refused");
    root.wait_line(
        &["refused this helper", "root may not run the session helper"],
        Duration::from_secs(1),
    )
    .await;

    let mut unlisted = pc.helper("autre", Some(other), &synthetic);
    assert!(
        !unlisted.wait_exit(Duration::from_secs(60)).await,
        "refused"
    );
    unlisted
        .wait_line(
            &[
                "refused this helper",
                &format!("uid {} (lanterne-autre)", other.uid),
                "session.users",
            ],
            Duration::from_secs(1),
        )
        .await;

    // A helper talks only to the service account it is told (here not root, so no).
    let mut wary = pc.helper(
        "wary",
        Some(student),
        &["--source", "synthetic", "--service-user", "lanterne-autre"],
    );
    assert!(!wary.wait_exit(Duration::from_secs(60)).await, "refused");
    wary.wait_line(&["served by uid 0"], Duration::from_secs(1))
        .await;

    // The student's helper is served; a second one is refused while it is connected.
    let first = pc.helper("eleve-1", Some(student), &synthetic);
    service
        .wait_line(
            &["session connected", &format!("uid {}", student.uid)],
            Duration::from_secs(60),
        )
        .await;
    let mut second = pc.helper("eleve-2", Some(student), &synthetic);
    assert!(!second.wait_exit(Duration::from_secs(60)).await, "refused");
    second
        .wait_line(&["another session helper"], Duration::from_secs(1))
        .await;
    assert!(
        !service.log().lines().any(
            |l| l.contains("session connected") && !l.contains(&format!("uid {}", student.uid))
        ),
        "no other account was ever served:\n{}",
        service.log()
    );
    drop(first);
    // Its place is free again once it is gone.
    service
        .wait_line(&["session gone"], Duration::from_secs(30))
        .await;
    let _again = pc.helper("eleve-3", Some(student), &synthetic);
    let deadline = Instant::now() + Duration::from_secs(60);
    while service
        .log()
        .lines()
        .filter(|l| l.contains("session connected"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the next helper was not served:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The station's tile as the tablet sees it.
async fn tile(https: &lanterne_scenarios::Https, cookie: &str, id: u32) -> serde_json::Value {
    let room = https
        .request("GET", "/api/room", None, &[("cookie", cookie)])
        .await
        .unwrap()
        .json();
    room["mosaic"]["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["station_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no tile for station {id}: {room}"))
}

async fn tile_until(
    https: &lanterne_scenarios::Https,
    cookie: &str,
    id: u32,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = tile(https, cookie, id).await;
        if cond(&t) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_a_helper_nothing_is_shown_or_sent_and_a_helper_that_connects_gets_the_lock() {
    assert_root();
    let student = system_account("lanterne-eleve");
    let (_xvfb, display) = start_xvfb();
    let b = BoxProcess::start().await.unwrap();
    let pc = Pc::enrol(&b, "poste-seule").await;
    // Any account but root may be the helper.
    let service = pc.service(&[]).await;
    b.wait_log_line(
        &["station online", "poste-seule", "capture=none (no session)"],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    // The box asks for thumbnails as the station comes online; none can leave it.
    b.wait_log_line(
        &["station reports", "no student session is connected"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .post_json(
            &cookie,
            "/api/room/lock",
            serde_json::json!({ "locked": true }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    b.wait_log_line(
        &["station reports", "cannot lock", "no student session"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let t = tile(&https, &cookie, pc.station_id).await;
    assert_eq!(
        (t["lock_ordered"].as_bool(), t["locked"].as_bool()),
        (Some(true), Some(false)),
        "ordered but not shown: {t}"
    );
    assert!(t["user_name"].is_null(), "nobody logged in yet: {t}");

    // The student's session starts: its helper gets the lock at once and shows it.
    let helper = pc.helper("eleve", Some(student), &["--display", &display]);
    service
        .wait_line(&["session connected", "x11"], Duration::from_secs(60))
        .await;
    tile_until(&https, &cookie, pc.station_id, "locked", |t| {
        t["locked"] == true
    })
    .await;
    // Who is at the station, as the account database names the helper's account (a system
    // account without a full name: its login name), taken from the kernel's credentials.
    tile_until(
        &https,
        &cookie,
        pc.station_id,
        "showing who is logged in",
        |t| t["user_name"] == "lanterne-eleve",
    )
    .await;

    // Its screen reaches the teacher through the helper and the service.
    let mut ws = https
        .websocket(&format!("/api/stations/{}/focus", pc.station_id), &cookie)
        .await
        .unwrap();
    loop {
        match lanterne_scenarios::next_item(&mut ws, Duration::from_secs(30))
            .await
            .unwrap()
        {
            lanterne_scenarios::WsItem::Video(v) => {
                assert!(v.keyframe, "the view starts at a keyframe");
                break;
            }
            lanterne_scenarios::WsItem::Json(j) => {
                assert_ne!(j["type"], "ended", "focus ended: {j}")
            }
        }
    }
    drop(ws);

    // The student ends the helper: the tile no longer says locked, since nothing is shown.
    drop(helper);
    service
        .wait_line(&["session gone"], Duration::from_secs(30))
        .await;
    tile_until(
        &https,
        &cookie,
        pc.station_id,
        "unlocked, nobody logged in",
        |t| t["locked"] == false && t["lock_ordered"] == true && t["user_name"].is_null(),
    )
    .await;
}
