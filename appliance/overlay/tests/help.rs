//! Remote help on a real X server (Xvfb): the consent prompt, what accepts it and what does
//! not, input played only while the student's consent holds, and the student ending it.

mod common;

use std::time::{Duration, Instant};

use common::{next_event, Client, Press, Xvfb};
use lanterne_overlay::theme;
use lanterne_overlay::{HelpShown, HelpStep, Overlay, OverlayError, OverlayEvent};
use lanterne_wire::{InputEvent, PointerButton, SpecialKey};
use x11rb::protocol::xproto::ConnectionExt as _;

const XK_RETURN: u32 = 0xff0d;
const XK_END: u32 = 0xff57;
const XK_CONTROL_L: u32 = 0xffe3;
const XK_ALT_L: u32 = 0xffe9;

/// The centre of the on-screen area of colour `c` (a button), as the student sees it.
fn centre_of(client: &Client, c: theme::Rgb) -> (i16, i16) {
    let (x0, y0, x1, y1) = client
        .screenshot()
        .bbox_of(c)
        .unwrap_or_else(|| panic!("no {c:?} on screen"));
    (((x0 + x1) / 2) as i16, ((y0 + y1) / 2) as i16)
}

fn pointer(client: &Client) -> (i16, i16) {
    let p = client
        .conn
        .query_pointer(client.root)
        .unwrap()
        .reply()
        .unwrap();
    (p.root_x, p.root_y)
}

fn wait_armed() {
    // Clicks in the prompt's first moments are ignored (they were aimed elsewhere).
    std::thread::sleep(Duration::from_millis(800));
}

#[test]
fn only_a_click_on_accepter_accepts_and_input_flows_only_while_consent_holds() {
    let x = Xvfb::start("1280x720x24");
    let client = Client::connect(&x.display);
    let app = client.app_window(0, 0, 1280, 720);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();

    // Input before any consent is refused and plays nothing.
    let before = pointer(&client);
    let moved = vec![InputEvent::PointerMove { x: 100, y: 100 }];
    assert!(matches!(
        overlay.inject(1, moved.clone()),
        Err(OverlayError::Help(_))
    ));
    assert_eq!(pointer(&client), before);

    // Where the prompt's "Accepter" is (the prompt always sits at the same place), from a
    // first request withdrawn at once.
    overlay
        .ask_help(9, "Mme Martin (enseignante)", Duration::from_secs(30))
        .unwrap();
    let accept = centre_of(&client, theme::CONSENT_ACCEPT);
    overlay.end_help(9).unwrap();
    assert_eq!(overlay.state().help, None);

    let asked = Instant::now();
    overlay
        .ask_help(1, "Mme Martin (enseignante)", Duration::from_secs(30))
        .unwrap();
    // A click on "Accepter" the instant it appeared is ignored (it was aimed at whatever was
    // there before).
    client.click(accept.0, accept.1);
    let clicked_after = asked.elapsed();
    assert_eq!(overlay.state().help, Some(HelpShown::Asking { id: 1 }));
    client.screenshot().save_png("help-prompt.png");
    // A second request while one is open is refused.
    assert!(overlay
        .ask_help(2, "quelqu'un", Duration::from_secs(30))
        .is_err());
    // Enter (or any key) does not accept; nor does input sent while the prompt is up.
    client.tap_key(client.keycode(XK_RETURN));
    assert!(overlay.inject(1, moved.clone()).is_err());
    if clicked_after < Duration::from_millis(600) {
        assert_eq!(next_event(&mut events, 1), None, "an early click accepted");
        assert_eq!(overlay.state().help, Some(HelpShown::Asking { id: 1 }));
    } else {
        // The machine stalled for longer than the prompt's arming time between showing it and
        // the click: that click was not early, and this run cannot check the rule.
        eprintln!("the early click came {clicked_after:?} after the prompt: not checked");
        let _ = next_event(&mut events, 1);
        overlay.end_help(1).unwrap();
        overlay
            .ask_help(1, "Mme Martin (enseignante)", Duration::from_secs(30))
            .unwrap();
    }

    wait_armed();
    client.click(accept.0, accept.1);
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::Help {
            id: 1,
            step: HelpStep::Accepted
        })
    );
    assert_eq!(overlay.state().help, Some(HelpShown::Active { id: 1 }));
    let shot = client.screenshot();
    shot.save_png("help-banner.png");
    assert!(
        shot.bbox_of(theme::HELP_STOP_BUTTON).is_some()
            || shot.bbox_of(theme::HELP_BANNER_BACKGROUND).is_some()
    );
    assert!(
        shot.bbox_of(theme::CONSENT_ACCEPT).is_none(),
        "the prompt is gone"
    );

    // Now input flows: a move to the middle, a click on the application, and text.
    client.presses(app);
    overlay
        .inject(
            1,
            vec![
                InputEvent::PointerMove { x: 32768, y: 49151 },
                InputEvent::Button {
                    button: PointerButton::Left,
                    pressed: true,
                },
                InputEvent::Button {
                    button: PointerButton::Left,
                    pressed: false,
                },
                InputEvent::Text { text: "aé".into() },
                InputEvent::Key {
                    key: SpecialKey::Enter,
                    pressed: true,
                },
                InputEvent::Key {
                    key: SpecialKey::Enter,
                    pressed: false,
                },
            ],
        )
        .unwrap();
    let (px, py) = pointer(&client);
    assert!(
        (px - 640).abs() <= 1 && (py - 540).abs() <= 1,
        "pointer at {px},{py}"
    );
    let got = client.presses(app);
    assert!(got.contains(&Press::Button(1)), "{got:?}");
    assert!(got.contains(&Press::Key(client.keycode(0x61))), "{got:?}");
    assert!(
        got.contains(&Press::Key(client.keycode(XK_RETURN))),
        "{got:?}"
    );
    // "é" is not on Xvfb's US layout: it was typed through a key bound for the moment.
    let keys = got.iter().filter(|p| matches!(p, Press::Key(_))).count();
    assert_eq!(keys, 3, "a, é and Enter: {got:?}");
    // Wrong id, or unbounded input, is refused.
    assert!(overlay.inject(2, moved.clone()).is_err());
    assert!(overlay
        .inject(1, vec![InputEvent::Text { text: "\n".into() }])
        .is_err());

    // The helper holds Ctrl; the student ends it with Ctrl+Alt+End.
    overlay
        .inject(
            1,
            vec![InputEvent::Key {
                key: SpecialKey::Control,
                pressed: true,
            }],
        )
        .unwrap();
    let (ctrl, alt, end) = (
        client.keycode(XK_CONTROL_L),
        client.keycode(XK_ALT_L),
        client.keycode(XK_END),
    );
    use x11rb::protocol::xtest::ConnectionExt as _;
    for (t, k) in [(2, alt), (2, end), (3, end), (3, alt)] {
        client
            .conn
            .xtest_fake_input(t, k, x11rb::CURRENT_TIME, x11rb::NONE, 0, 0, 0)
            .unwrap();
    }
    client.sync();
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::Help {
            id: 1,
            step: HelpStep::Stopped
        })
    );
    assert_eq!(overlay.state().help, None);
    // Ctrl, which the helper held, was released when the help ended.
    let keymap = client.conn.query_keymap().unwrap().reply().unwrap().keys;
    assert_eq!(
        keymap[usize::from(ctrl / 8)] & (1 << (ctrl % 8)),
        0,
        "Ctrl still down"
    );
    // And nothing flows any more.
    let before = pointer(&client);
    assert!(overlay.inject(1, moved).is_err());
    assert_eq!(pointer(&client), before);
}

#[test]
fn refuser_the_timeout_and_the_banners_stop_button_each_end_it() {
    let x = Xvfb::start("1024x768x24");
    let client = Client::connect(&x.display);
    let overlay = Overlay::connect(Some(&x.display)).unwrap();
    let mut events = overlay.events();

    overlay
        .ask_help(5, "M. Durand", Duration::from_secs(30))
        .unwrap();
    wait_armed();
    let refuse = centre_of(&client, theme::CONSENT_REFUSE);
    client.click(refuse.0, refuse.1);
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::Help {
            id: 5,
            step: HelpStep::Refused
        })
    );
    assert!(overlay
        .inject(5, vec![InputEvent::Scroll { steps: 1 }])
        .is_err());

    let asked = Instant::now();
    overlay
        .ask_help(6, "M. Durand", Duration::from_secs(2))
        .unwrap();
    assert_eq!(
        next_event(&mut events, 10),
        Some(OverlayEvent::Help {
            id: 6,
            step: HelpStep::TimedOut
        })
    );
    assert!(asked.elapsed() >= Duration::from_secs(2));
    assert_eq!(overlay.state().help, None);

    // Withdrawn by the agent while asking: no answer comes, the prompt goes.
    overlay
        .ask_help(7, "M. Durand", Duration::from_secs(30))
        .unwrap();
    overlay.end_help(7).unwrap();
    assert_eq!(overlay.state().help, None);
    assert!(client.screenshot().bbox_of(theme::CONSENT_ACCEPT).is_none());

    overlay
        .ask_help(8, "M. Durand", Duration::from_secs(30))
        .unwrap();
    wait_armed();
    let accept = centre_of(&client, theme::CONSENT_ACCEPT);
    client.click(accept.0, accept.1);
    assert!(matches!(
        next_event(&mut events, 5),
        Some(OverlayEvent::Help {
            id: 8,
            step: HelpStep::Accepted
        })
    ));
    let stop = centre_of(&client, theme::HELP_STOP_BUTTON);
    client.click(stop.0, stop.1);
    assert_eq!(
        next_event(&mut events, 5),
        Some(OverlayEvent::Help {
            id: 8,
            step: HelpStep::Stopped
        })
    );
    assert!(client
        .screenshot()
        .bbox_of(theme::HELP_BANNER_BACKGROUND)
        .is_none());

    overlay.set_shown_to_class(true).unwrap();
    assert!(overlay.state().shown_to_class);
    assert!(client
        .screenshot()
        .bbox_of(theme::CLASS_BANNER_BACKGROUND)
        .is_some());
    overlay.set_shown_to_class(false).unwrap();
    assert!(client
        .screenshot()
        .bbox_of(theme::CLASS_BANNER_BACKGROUND)
        .is_none());
}
