//! The overlay against a real X server: each test starts its own Xvfb (see common/mod.rs),
//! a second X client plays the student's applications, and checks are made on root-window
//! screenshots and on the events that client receives.

mod common;

use std::time::{Duration, Instant};

use common::{next_event, Client, Press, Xvfb, DESKTOP};
use lanterne_overlay::theme::{self, Rgb};
use lanterne_overlay::{Overlay, OverlayError, OverlayEvent, DEFAULT_LOCK_MESSAGE};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, GrabMode, GrabStatus};
use x11rb::CURRENT_TIME;

const XK_A: u32 = 0x61;
const XK_B: u32 = 0x62;
const XK_RETURN: u32 = 0xff0d;

fn is_light(c: Rgb) -> bool {
    c.luma() > 180
}

#[test]
fn lock_covers_both_monitors_with_text_and_unlock_restores_the_desktop() {
    let x = Xvfb::start("2560x720x24");
    let client = Client::connect(&x.display);
    client.two_monitors();
    client.set_desktop(DESKTOP);
    let before = client.screenshot();
    assert_eq!(before.count(0, 0, 2560, 720, |c| c == DESKTOP), 2560 * 720);

    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.lock("").unwrap();
    let state = overlay.state();
    assert!(state.locked && state.input_captured);
    assert_eq!(state.lock_monitors, 2);
    assert_eq!(state.lock_message.as_deref(), Some(DEFAULT_LOCK_MESSAGE));

    let shot = client.screenshot();
    shot.save_png("lock.png");
    assert_eq!(
        shot.count(0, 0, 2560, 720, |c| c == DESKTOP),
        0,
        "some of the desktop is still visible"
    );
    for (left, name) in [(0u32, "left"), (1280, "right")] {
        let background = shot.count(left, 0, left + 1280, 720, |c| c == theme::LOCK_BACKGROUND);
        assert!(
            background > 1280 * 720 * 8 / 10,
            "{name} monitor: only {background} overlay-coloured pixels"
        );
        // The message sits in the middle band of each monitor, centred horizontally.
        let text = shot.count(left + 100, 300, left + 1180, 560, is_light);
        assert!(text > 3000, "{name} monitor: only {text} light text pixels");
        let left_half = shot.count(left + 100, 300, left + 640, 560, is_light) as f64;
        let right_half = shot.count(left + 640, 300, left + 1180, 560, is_light) as f64;
        assert!(
            (left_half / right_half - 1.0).abs() < 0.35,
            "{name} monitor: text not centred ({left_half} vs {right_half})"
        );
        // The amber padlock above the text.
        let amber = shot.count(left + 540, 80, left + 740, 320, |c| c == theme::LOCK_ICON);
        assert!(amber > 500, "{name} monitor: no padlock ({amber})");
    }

    overlay.unlock().unwrap();
    assert!(!overlay.state().locked);
    let after = client.screenshot();
    assert_eq!(
        after.count(0, 0, 2560, 720, |c| c == DESKTOP),
        2560 * 720,
        "the overlay left pixels behind"
    );
}

#[test]
fn input_does_not_reach_other_clients_while_locked() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    let app = client.app_window(100, 100, 400, 300);
    let (a, b) = (client.keycode(XK_A), client.keycode(XK_B));

    // Control: before the lock the app gets keys and clicks.
    client.tap_key(a);
    client.click(200, 200);
    assert_eq!(client.presses(app), vec![Press::Key(a), Press::Button(1)]);

    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.lock("Regardez le tableau").unwrap();
    for _ in 0..5 {
        client.tap_key(a);
        client.click(200, 200);
    }
    assert_eq!(client.presses(app), vec![], "input leaked through the lock");

    // Another client cannot take the grabs away while we hold them.
    let status = client
        .conn
        .grab_keyboard(false, app, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)
        .unwrap()
        .reply()
        .unwrap()
        .status;
    assert_eq!(status, GrabStatus::ALREADY_GRABBED);

    overlay.unlock().unwrap();
    // After unlock the focus went back to the app: the next key is b, and only b (had any
    // locked keystroke been queued for the app, an `a` would come first).
    client.tap_key(b);
    client.click(200, 200);
    assert_eq!(client.presses(app), vec![Press::Key(b), Press::Button(1)]);
}

#[test]
fn lock_waits_for_a_brief_foreign_grab_and_reports_a_lasting_one() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    let app = client.app_window(100, 100, 400, 300);
    let grab = |c: &Client| {
        c.conn
            .grab_keyboard(false, app, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)
            .unwrap()
            .reply()
            .unwrap()
            .status
    };
    assert_eq!(grab(&client), GrabStatus::SUCCESS);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();

    let started = Instant::now();
    let err = overlay.lock("").unwrap_err();
    assert!(
        matches!(
            err,
            OverlayError::GrabFailed {
                device: "keyboard",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "gave up too early"
    );
    let state = overlay.state();
    assert!(state.locked && !state.input_captured, "{state:?}");
    // The lock is still shown although input is not captured yet.
    let shot = client.screenshot();
    assert!(shot.count(0, 0, 1280, 720, |c| c == theme::LOCK_BACKGROUND) > 1280 * 720 / 2);

    // Once the other client lets go, the periodic re-grab captures input.
    client.conn.ungrab_keyboard(CURRENT_TIME).unwrap();
    client.sync();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !overlay.state().input_captured {
        assert!(Instant::now() < deadline, "the lock never captured input");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(grab(&client), GrabStatus::ALREADY_GRABBED);

    // A grab released within the retry window is simply waited for.
    overlay.unlock().unwrap();
    assert_eq!(grab(&client), GrabStatus::SUCCESS);
    client.sync();
    let release_at = Instant::now() + Duration::from_millis(300);
    let conn = &client.conn;
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(release_at.saturating_duration_since(Instant::now()));
            conn.ungrab_keyboard(CURRENT_TIME).unwrap();
            conn.flush().unwrap();
        });
        overlay.lock("").unwrap();
    });
    assert!(overlay.state().input_captured);
}

/// Ctrl+Alt+H raises (or withdraws) the student's hand from whatever application has the
/// keyboard; the application does not get the H, and H alone still reaches it.
#[test]
fn ctrl_alt_h_is_the_raise_hand_key_from_any_application() {
    const XK_H: u32 = 0x68;
    const XK_CONTROL_L: u32 = 0xffe3;
    const XK_ALT_L: u32 = 0xffe9;
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    client.set_desktop(DESKTOP);
    let app = client.app_window(100, 100, 400, 300);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();
    let (ctrl, alt, h) = (
        client.keycode(XK_CONTROL_L),
        client.keycode(XK_ALT_L),
        client.keycode(XK_H),
    );
    client.chord(&[ctrl, alt], h);
    assert_eq!(next_event(&mut events, 5), Some(OverlayEvent::HandKey));
    client.chord(&[ctrl, alt], h);
    assert_eq!(next_event(&mut events, 5), Some(OverlayEvent::HandKey));
    assert!(
        !client.presses(app).contains(&Press::Key(h)),
        "the chord's H went to the application"
    );
    client.tap_key(h);
    assert_eq!(
        client.presses(app),
        vec![Press::Key(h)],
        "H alone is the student's"
    );
}

#[test]
fn message_dismissed_with_enter_reports_its_id() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    client.set_desktop(DESKTOP);
    let app = client.app_window(100, 100, 400, 300);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();
    overlay
        .show_message(
            42,
            "Mme Lefèvre",
            "Enregistrez votre travail : la séance se termine dans cinq minutes. Merci !",
        )
        .unwrap();
    assert_eq!(overlay.state().open_messages, vec![42]);
    let shot = client.screenshot();
    shot.save_png("message.png");
    let card = shot.count(0, 0, 1280, 720, |c| c == theme::MESSAGE_BACKGROUND);
    assert!(card > 100_000, "no message card on screen ({card})");
    let dark_text = shot.count(0, 0, 1280, 720, |c| c == theme::MESSAGE_TITLE);
    assert!(dark_text > 200, "no title text ({dark_text})");

    client.tap_key(client.keycode(XK_RETURN));
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::MessageDismissed { id: 42 })
    );
    assert!(overlay.state().open_messages.is_empty());
    let shot = client.screenshot();
    assert_eq!(
        shot.count(0, 0, 1280, 720, |c| c == theme::MESSAGE_BACKGROUND),
        0
    );
    // The key that read the message went to the card, not to the app; the app has its
    // focus back afterwards.
    let b = client.keycode(XK_B);
    client.tap_key(b);
    assert_eq!(client.presses(app), vec![Press::Key(b)]);
}

#[test]
fn message_dismissed_by_clicking_ok_even_while_locked() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();
    overlay.lock("").unwrap();
    overlay
        .show_message(7, "M. Diallo", "Premier message")
        .unwrap();
    overlay
        .show_message(8, "M. Diallo", "Second message")
        .unwrap();
    assert_eq!(overlay.state().open_messages, vec![7, 8]);
    // Re-sending an open id replaces its card rather than adding one.
    overlay
        .show_message(8, "M. Diallo", "Second message, corrigé")
        .unwrap();
    assert_eq!(overlay.state().open_messages, vec![7, 8]);
    overlay.set_watched(true, "").unwrap();
    client.screenshot().save_png("lock-message-badge.png");

    // A click outside the button does nothing.
    client.click(5, 5);
    assert_eq!(next_event(&mut events, 1), None);

    // Find the topmost card's OK button on screen by its colour, and click it.
    let shot = client.screenshot();
    let (x0, y0, x1, y1) = shot
        .bbox_of(theme::MESSAGE_BUTTON)
        .expect("no OK button on screen");
    client.click(((x0 + x1) / 2) as i16, ((y0 + y1) / 2 + 10) as i16);
    // Cards are offset down-right, so the lower-right button is the newest card's.
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::MessageDismissed { id: 8 })
    );
    assert_eq!(overlay.state().open_messages, vec![7]);
    assert!(overlay.state().locked);
}

#[test]
fn watched_badge_sits_top_right_on_every_monitor_and_lets_clicks_through() {
    let x = Xvfb::start("2560x720x24");
    let client = Client::connect(&x.display);
    client.two_monitors();
    client.set_desktop(DESKTOP);
    // The app fills the top-right corner of the right monitor, under the badge.
    let app = client.app_window(2000, 0, 560, 200);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.set_watched(true, "").unwrap();
    let state = overlay.state();
    assert!(state.watched);
    assert_eq!(state.watched_label.as_deref(), Some("Écran observé"));

    let shot = client.screenshot();
    for (left, name) in [(0u32, "left"), (1280, "right")] {
        let (x0, y0, x1, y1) = {
            let mut b = None::<(u32, u32, u32, u32)>;
            for y in 0..720 {
                for x in left..left + 1280 {
                    if shot.at(x, y) == theme::BADGE_BACKGROUND {
                        b = Some(match b {
                            None => (x, y, x, y),
                            Some((a, bb, c, d)) => (a.min(x), bb.min(y), c.max(x), d.max(y)),
                        });
                    }
                }
            }
            b.unwrap_or_else(|| panic!("no badge on the {name} monitor"))
        };
        assert!(
            x1 > left + 1280 - 40 && y0 < 40,
            "{name}: badge not top-right"
        );
        assert!(x1 - x0 < 300 && y1 - y0 < 60, "{name}: badge too big");
    }

    // Click on the badge of the right monitor: the app below gets the click.
    let (_, by0, bx1, by1) = shot.bbox_of(theme::BADGE_BACKGROUND).unwrap();
    client.click((bx1 - 10) as i16, ((by0 + by1) / 2) as i16);
    assert_eq!(client.presses(app), vec![Press::Button(1)]);

    overlay.set_watched(false, "").unwrap();
    assert!(!overlay.state().watched);
    let shot = client.screenshot();
    assert_eq!(
        shot.count(0, 0, 2560, 720, |c| c == theme::BADGE_BACKGROUND),
        0
    );
}

#[test]
fn losing_the_display_is_reported_not_a_panic() {
    let mut x = Xvfb::start("1280x720x24");
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();
    overlay.lock("").unwrap();
    x.kill();
    match next_event(&mut events, 10) {
        Some(OverlayEvent::DisplayLost { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected DisplayLost, got {other:?}"),
    }
    let state = overlay.state();
    assert!(!state.locked && state.display_lost.is_some(), "{state:?}");
    assert!(matches!(
        overlay.unlock(),
        Err(OverlayError::DisplayLost(_))
    ));
    assert!(matches!(
        overlay.show_message(1, "x", "y"),
        Err(OverlayError::DisplayLost(_))
    ));
}

#[test]
fn network_text_is_bounded() {
    let x = Xvfb::start("1280x720x24");
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.lock(&"Très long message ".repeat(400)).unwrap();
    let msg = overlay.state().lock_message.unwrap();
    assert_eq!(msg.chars().count(), lanterne_overlay::MAX_MESSAGE_CHARS);
    assert!(msg.ends_with('…'));
    overlay.set_watched(true, &"x".repeat(1000)).unwrap();
    let label = overlay.state().watched_label.unwrap();
    assert_eq!(label.chars().count(), lanterne_overlay::MAX_LABEL_CHARS);
}

#[test]
fn connecting_to_a_missing_display_is_an_error() {
    let err = Overlay::connect(Some(":4999")).unwrap_err();
    assert!(matches!(err, OverlayError::Connect { .. }), "{err}");
}

#[test]
fn dropping_the_overlay_removes_it_and_releases_input() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    client.set_desktop(DESKTOP);
    let app = client.app_window(100, 100, 400, 300);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let clone = overlay.clone();
    overlay.lock("").unwrap();
    overlay.set_watched(true, "").unwrap();
    drop(overlay);
    // A clone keeps it alive.
    assert!(clone.state().locked);
    let a = client.keycode(XK_A);
    client.tap_key(a);
    assert_eq!(client.presses(app), vec![]);
    drop(clone);
    // The overlay thread tears down asynchronously: wait for the grab to be released.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = client
            .conn
            .grab_keyboard(false, app, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)
            .unwrap()
            .reply()
            .unwrap()
            .status;
        if status == GrabStatus::SUCCESS {
            break;
        }
        assert!(Instant::now() < deadline, "the grab outlived the overlay");
        std::thread::sleep(Duration::from_millis(20));
    }
    client.conn.ungrab_keyboard(CURRENT_TIME).unwrap();
    let shot = client.screenshot();
    assert_eq!(
        shot.count(0, 0, 1280, 720, |c| c == theme::LOCK_BACKGROUND
            || c == theme::BADGE_BACKGROUND),
        0,
        "overlay windows outlived the handle"
    );
}

#[test]
fn the_handle_can_be_shared_between_threads() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<Overlay>();
}

/// Polls `check` until it holds or `secs` pass; for effects the overlay applies in reaction
/// to other clients' events, which have no reply to wait on.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lock_stays_on_top_of_other_clients_and_survives_being_unmapped() {
    use x11rb::protocol::xproto::{
        AtomEnum, ConfigureWindowAux, CreateWindowAux, StackMode, WindowClass,
    };
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.lock("").unwrap();

    // Another client maps an override-redirect window over the middle and raises it.
    let intruder = client.conn.generate_id().unwrap();
    client
        .conn
        .create_window(
            24,
            intruder,
            client.root,
            0,
            0,
            1280,
            720,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(Rgb(0xff, 0, 0xff).word())
                .override_redirect(1),
        )
        .unwrap();
    client.conn.map_window(intruder).unwrap();
    client
        .conn
        .configure_window(
            intruder,
            &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
        )
        .unwrap();
    client.sync();
    eventually(5, "lock re-raised over the intruder", || {
        let shot = client.screenshot();
        shot.count(0, 0, 1280, 720, |c| c == Rgb(0xff, 0, 0xff)) == 0
            && shot.count(0, 0, 1280, 720, |c| c == theme::LOCK_TEXT) > 500
    });

    // X lets any client unmap any window: find ours by WM_CLASS and unmap it.
    let tree = client
        .conn
        .query_tree(client.root)
        .unwrap()
        .reply()
        .unwrap();
    let ours: Vec<_> = tree
        .children
        .iter()
        .copied()
        .filter(|&w| {
            let p = client
                .conn
                .get_property(false, w, AtomEnum::WM_CLASS, AtomEnum::STRING, 0, 64)
                .unwrap()
                .reply()
                .unwrap();
            p.value.starts_with(b"lanterne-overlay\0")
        })
        .collect();
    assert_eq!(ours.len(), 1, "expected one lock window");
    client.conn.unmap_window(ours[0]).unwrap();
    client.sync();
    eventually(5, "lock window mapped and painted again", || {
        let shot = client.screenshot();
        shot.count(0, 0, 1280, 720, |c| c == theme::LOCK_TEXT) > 500
            && shot.count(0, 0, 1280, 720, |c| c == Rgb(0xff, 0, 0xff)) == 0
    });
    // And it holds the keyboard again (unmapping the grab window had ended the grab).
    let app = client.app_window(0, 0, 10, 10);
    eventually(5, "grab re-taken", || {
        client
            .conn
            .grab_keyboard(false, app, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)
            .unwrap()
            .reply()
            .unwrap()
            .status
            == GrabStatus::ALREADY_GRABBED
    });
    assert!(overlay.state().input_captured);
}

#[test]
fn a_monitor_added_while_locked_gets_the_lock_and_the_badge_too() {
    let x = Xvfb::start("2560x720x24");
    let client = Client::connect(&x.display);
    client.set_desktop(DESKTOP);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.lock("").unwrap();
    overlay.set_watched(true, "").unwrap();
    assert_eq!(overlay.state().lock_monitors, 1);
    client.two_monitors();
    eventually(5, "lock rebuilt for two monitors", || {
        overlay.state().lock_monitors == 2
    });
    let shot = client.screenshot();
    assert_eq!(shot.count(0, 0, 2560, 720, |c| c == DESKTOP), 0);
    for left in [0u32, 1280] {
        let text = shot.count(left + 100, 250, left + 1180, 560, is_light);
        assert!(text > 3000, "monitor at {left}: only {text} text pixels");
        let badge = shot.count(left + 1000, 0, left + 1280, 60, |c| {
            c == theme::BADGE_BACKGROUND
        });
        assert!(badge > 1000, "monitor at {left}: no badge ({badge})");
    }
    assert!(overlay.state().input_captured);
}

#[test]
fn blocking_input_keeps_the_screen_visible_and_outlasts_a_lock() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    client.set_desktop(DESKTOP);
    let app = client.app_window(100, 100, 400, 300);
    let (a, b) = (client.keycode(XK_A), client.keycode(XK_B));
    let desktop = |shot: &common::Shot| shot.count(0, 0, 1280, 720, |c| c == DESKTOP);
    let before = desktop(&client.screenshot());
    assert!(before > 0);

    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    overlay.block_input(true).unwrap();
    let state = overlay.state();
    assert!(state.input_blocked && !state.locked, "{state:?}");
    // Nothing of ours is drawn: the student still sees everything (a full-screen demo).
    assert_eq!(desktop(&client.screenshot()), before);
    for _ in 0..3 {
        client.tap_key(a);
        client.click(200, 200);
    }
    assert_eq!(
        client.presses(app),
        vec![],
        "input leaked through the block"
    );
    let status = client
        .conn
        .grab_keyboard(false, app, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)
        .unwrap()
        .reply()
        .unwrap()
        .status;
    assert_eq!(status, GrabStatus::ALREADY_GRABBED);

    // A lock and an unlock in between leave input blocked.
    overlay.lock("").unwrap();
    overlay.unlock().unwrap();
    assert!(overlay.state().input_blocked);
    client.tap_key(a);
    assert_eq!(
        client.presses(app),
        vec![],
        "unlocking gave input back too early"
    );

    overlay.block_input(false).unwrap();
    assert!(!overlay.state().input_blocked);
    client.tap_key(b);
    client.click(200, 200);
    assert_eq!(client.presses(app), vec![Press::Key(b), Press::Button(1)]);
}
