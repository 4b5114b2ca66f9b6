//! Remote help at the station end, across processes: the real session helper runs as a
//! student's account on an X display (Xvfb) and this test plays the station's service, and
//! so whatever a box would send through it. Input sent before the student accepts, for
//! another help, or after the student ended it, is refused by the helper and never reaches
//! the X server; input for the help the student accepted with a click moves the pointer.
//!
//! Needs root (CI runs as root): the helper runs as `nobody`, and refuses a service that is
//! not root.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanterne_overlay::theme;
use lanterne_scenarios::xscreen::XScreen;
use lanterne_scenarios::xvfb::start_xvfb;
use lanterne_station::session::SessionConn;
use lanterne_station::session_socket::{listen, Greeting, HelperPolicy};
use lanterne_wire::{Control, HelpAsk, HelpState, InputEvent};

fn rgb(c: theme::Rgb) -> [u8; 3] {
    [c.0, c.1, c.2]
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The next report matching `want` from the helper, skipping the others.
async fn report(conn: &mut SessionConn, want: impl Fn(&Control) -> bool) -> Control {
    loop {
        let c = tokio::time::timeout(Duration::from_secs(20), conn.reports.recv())
            .await
            .expect("a report from the helper in time")
            .expect("the helper is connected");
        if want(&c) {
            return c;
        }
    }
}

fn refused(c: &Control) -> bool {
    matches!(c, Control::StationError { message } if message.contains("remote-help input refused"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_station_plays_input_only_for_the_help_its_student_accepted() {
    assert_eq!(
        id(&["-u"]),
        0,
        "run as root (as CI does): the helper runs as nobody"
    );
    let (_xvfb, display) = start_xvfb();
    let screen = XScreen::connect(&display).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("session.sock");
    let mut sessions = listen(
        &socket,
        HelperPolicy::new(Vec::new(), Vec::new()),
        Greeting {
            station_id: 1,
            name: "poste-aide".into(),
        },
    )
    .unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (uid, gid) = (id(&["-u", "nobody"]), id(&["-g", "nobody"]));
    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
    let log = dir.path().join("helper.log");
    let mut helper = Command::new(lanterne_scenarios::bin("lanterne-station"))
        .arg("session")
        .arg("--socket")
        .arg(&socket)
        .args(["--source", "x11", "--display", &display])
        .env("HOME", &home)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .uid(uid)
        .gid(gid)
        .spawn()
        .unwrap();
    let mut conn = tokio::time::timeout(Duration::from_secs(30), sessions.recv())
        .await
        .expect("the helper connects")
        .unwrap();
    let middle = InputEvent::PointerMove { x: 32768, y: 32768 };
    // 6000/65535 of a 1280×720 screen: pixel (117, 66).
    let corner = InputEvent::PointerMove { x: 6000, y: 6000 };
    let at_start = screen.pointer().unwrap();

    // Input nobody accepted: refused, and nothing moves.
    conn.orders
        .try_send(Control::HelpInput {
            id: 7,
            events: vec![middle.clone()],
        })
        .unwrap();
    report(&mut conn, refused).await;
    assert_eq!(screen.pointer().unwrap(), at_start);

    // The box asks; the prompt shows; input while it waits is refused too.
    conn.orders
        .try_send(Control::HelpAsk(HelpAsk {
            id: 7,
            from: "M. Durand (technicien)".into(),
            timeout_s: 30,
        }))
        .unwrap();
    assert_eq!(
        report(&mut conn, |c| matches!(c, Control::HelpState { .. })).await,
        Control::HelpState {
            id: 7,
            state: HelpState::Asking
        }
    );
    let accept = screen
        .wait_for(rgb(theme::CONSENT_ACCEPT), Duration::from_secs(10))
        .unwrap();
    conn.orders
        .try_send(Control::HelpInput {
            id: 7,
            events: vec![middle.clone()],
        })
        .unwrap();
    report(&mut conn, refused).await;
    assert_eq!(screen.pointer().unwrap(), at_start);

    // The student clicks "Accepter" (after the prompt armed itself).
    tokio::time::sleep(Duration::from_millis(900)).await;
    screen.click(accept.0, accept.1).unwrap();
    assert_eq!(
        report(&mut conn, |c| matches!(c, Control::HelpState { .. })).await,
        Control::HelpState {
            id: 7,
            state: HelpState::Accepted
        }
    );
    // Input for help 7 now moves the pointer; input for another help still does not.
    conn.orders
        .try_send(Control::HelpInput {
            id: 7,
            events: vec![corner.clone()],
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while screen.pointer().unwrap() != (117, 66) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pointer never moved: {:?}",
            screen.pointer()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.orders
        .try_send(Control::HelpInput {
            id: 8,
            events: vec![middle.clone()],
        })
        .unwrap();
    report(&mut conn, refused).await;
    assert_eq!(screen.pointer().unwrap(), (117, 66));

    // The student ends it with "Arrêter": the box is told, and input is refused again.
    let stop = screen
        .wait_for(rgb(theme::HELP_STOP_BUTTON), Duration::from_secs(10))
        .unwrap();
    screen.click(stop.0, stop.1).unwrap();
    assert_eq!(
        report(&mut conn, |c| matches!(c, Control::HelpState { .. })).await,
        Control::HelpState {
            id: 7,
            state: HelpState::EndedByStudent
        }
    );
    let after = screen.pointer().unwrap();
    conn.orders
        .try_send(Control::HelpInput {
            id: 7,
            events: vec![middle],
        })
        .unwrap();
    report(&mut conn, refused).await;
    assert_eq!(
        screen.pointer().unwrap(),
        after,
        "nothing is played after the end"
    );
    assert!(screen
        .bbox_of(rgb(theme::HELP_BANNER_BACKGROUND))
        .unwrap()
        .is_none());

    let _ = helper.kill();
    let _ = helper.wait();
}
