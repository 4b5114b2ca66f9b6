//! Remote-help input: the helper's pointer and keys, played into the X server with the XTEST
//! extension (the same requests `xdotool` uses), on the overlay's own connection.
//!
//! It lives here, with the consent prompt and the banner, because the overlay thread is the
//! one owner of "has the student accepted, and not ended it yet": input is played only while
//! the banner that the student's own click put up is on screen, and nothing else in the agent
//! can make it so.
//!
//! Text is typed character by character. A character that no key of the current layout
//! produces (an "é" on a US layout) is bound for the moment to a key that has no symbol, the
//! way a compose key would type it; those keys are given back when the help ends. Keys and
//! buttons the helper left pressed are released when the help ends, so a held Ctrl cannot
//! outlive the session.

use std::collections::BTreeSet;
use std::sync::Arc;

use lanterne_wire::{InputEvent, PointerButton, SpecialKey};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{ConnectionExt as _, Keycode, Keysym, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::CURRENT_TIME;

use crate::OverlayError;

// Core protocol event types that XTEST fakes.
const KEY_PRESS: u8 = 2;
const KEY_RELEASE: u8 = 3;
const BUTTON_PRESS: u8 = 4;
const BUTTON_RELEASE: u8 = 5;
const MOTION_NOTIFY: u8 = 6;

const XK_SHIFT_L: Keysym = 0xffe1;

/// Keysym of a special key.
fn special_keysym(k: SpecialKey) -> Keysym {
    match k {
        SpecialKey::Escape => 0xff1b,
        SpecialKey::Tab => 0xff09,
        SpecialKey::Enter => 0xff0d,
        SpecialKey::Backspace => 0xff08,
        SpecialKey::Delete => 0xffff,
        SpecialKey::Left => 0xff51,
        SpecialKey::Up => 0xff52,
        SpecialKey::Right => 0xff53,
        SpecialKey::Down => 0xff54,
        SpecialKey::Home => 0xff50,
        SpecialKey::End => 0xff57,
        SpecialKey::PageUp => 0xff55,
        SpecialKey::PageDown => 0xff56,
        SpecialKey::Control => 0xffe3,
        SpecialKey::Alt => 0xffe9,
        SpecialKey::Shift => XK_SHIFT_L,
    }
}

/// Keysym of a printable character: Latin-1 keysyms are the code point itself; every other
/// Unicode character is 0x01000000 + its code point (X11 keysym encoding, Appendix A of the
/// X protocol's keysym table).
pub(crate) fn char_keysym(c: char) -> Keysym {
    let cp = c as u32;
    if (0x20..=0x7e).contains(&cp) || (0xa0..=0xff).contains(&cp) {
        cp
    } else {
        0x0100_0000 + cp
    }
}

fn button_number(b: PointerButton) -> u8 {
    match b {
        PointerButton::Left => 1,
        PointerButton::Middle => 2,
        PointerButton::Right => 3,
    }
}

/// Plays input into one X server.
pub(crate) struct Injector {
    conn: Arc<RustConnection>,
    root: Window,
    min_keycode: Keycode,
    /// The keyboard mapping: `per` keysyms for each keycode from `min_keycode`.
    keysyms: Vec<Keysym>,
    per: usize,
    /// Keycodes with no symbol, free to bind a character to; and those we bound.
    spare: Vec<Keycode>,
    bound: BTreeSet<Keycode>,
    next_spare: usize,
    held_keys: BTreeSet<Keycode>,
    held_buttons: BTreeSet<u8>,
    checked_extension: Option<bool>,
}

impl Injector {
    pub(crate) fn new(conn: Arc<RustConnection>, root: Window) -> Self {
        let min_keycode = conn.setup().min_keycode;
        Injector {
            conn,
            root,
            min_keycode,
            keysyms: Vec::new(),
            per: 1,
            spare: Vec::new(),
            bound: BTreeSet::new(),
            next_spare: 0,
            held_keys: BTreeSet::new(),
            held_buttons: BTreeSet::new(),
            checked_extension: None,
        }
    }

    /// Reads the keyboard mapping again (at the start of a help session, and when the layout
    /// changes).
    pub(crate) fn refresh_mapping(&mut self) -> Result<(), OverlayError> {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)?
            .reply()?;
        self.per = usize::from(map.keysyms_per_keycode.max(1));
        self.keysyms = map.keysyms;
        self.spare = self
            .keysyms
            .chunks(self.per)
            .enumerate()
            .filter(|(_, syms)| syms.iter().all(|s| *s == 0))
            .map(|(i, _)| self.min_keycode + i as u8)
            .collect();
        self.spare.retain(|k| !self.bound.contains(k));
        Ok(())
    }

    fn ensure_extension(&mut self) -> Result<(), OverlayError> {
        let present = match self.checked_extension {
            Some(p) => p,
            None => {
                let p = self
                    .conn
                    .extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)?
                    .is_some();
                self.checked_extension = Some(p);
                p
            }
        };
        if present {
            Ok(())
        } else {
            Err(OverlayError::NoXTest)
        }
    }

    /// Where `keysym` is: (keycode, needs Shift).
    fn find(&self, keysym: Keysym) -> Option<(Keycode, bool)> {
        self.keysyms
            .chunks(self.per)
            .enumerate()
            .find_map(|(i, syms)| {
                let code = self.min_keycode + i as u8;
                syms.iter()
                    .take(2)
                    .position(|s| *s == keysym)
                    .map(|level| (code, level == 1))
            })
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), OverlayError> {
        self.conn
            .xtest_fake_input(kind, detail, CURRENT_TIME, self.root, x, y, 0)?;
        Ok(())
    }

    fn key(&mut self, code: Keycode, pressed: bool) -> Result<(), OverlayError> {
        self.fake(if pressed { KEY_PRESS } else { KEY_RELEASE }, code, 0, 0)?;
        if pressed {
            self.held_keys.insert(code);
        } else {
            self.held_keys.remove(&code);
        }
        Ok(())
    }

    /// A keycode that types `keysym`, binding a spare key to it when none does.
    fn keycode_for(&mut self, keysym: Keysym) -> Result<Option<(Keycode, bool)>, OverlayError> {
        if let Some(found) = self.find(keysym) {
            return Ok(Some(found));
        }
        if self.spare.is_empty() {
            return Ok(None);
        }
        let code = self.spare[self.next_spare % self.spare.len()];
        self.next_spare += 1;
        let mut syms = vec![0; self.per];
        syms[0] = keysym;
        if self.per > 1 {
            syms[1] = keysym;
        }
        self.conn
            .change_keyboard_mapping(1, code, self.per as u8, &syms)?;
        let at = usize::from(code - self.min_keycode) * self.per;
        self.keysyms[at..at + self.per].copy_from_slice(&syms);
        self.bound.insert(code);
        // Clients learn the new mapping (MappingNotify) before the key event that follows.
        self.conn.get_input_focus()?.reply()?;
        Ok(Some((code, false)))
    }

    /// Plays `events`, in order. Text characters no key can type are skipped and counted in
    /// the returned number.
    pub(crate) fn play(&mut self, events: &[InputEvent]) -> Result<usize, OverlayError> {
        self.ensure_extension()?;
        if self.keysyms.is_empty() {
            self.refresh_mapping()?;
        }
        let mut skipped = 0;
        for e in events {
            match e {
                InputEvent::PointerMove { x, y } => {
                    let root = &self.conn.setup().roots[0];
                    let scale = |v: u16, size: u16| -> i16 {
                        let max = u32::from(size.max(1) - 1);
                        ((u32::from(v) * max + 32767) / 65535) as i16
                    };
                    let (px, py) = (
                        scale(*x, root.width_in_pixels),
                        scale(*y, root.height_in_pixels),
                    );
                    self.fake(MOTION_NOTIFY, 0, px, py)?;
                }
                InputEvent::Button { button, pressed } => {
                    let b = button_number(*button);
                    self.fake(
                        if *pressed {
                            BUTTON_PRESS
                        } else {
                            BUTTON_RELEASE
                        },
                        b,
                        0,
                        0,
                    )?;
                    if *pressed {
                        self.held_buttons.insert(b);
                    } else {
                        self.held_buttons.remove(&b);
                    }
                }
                InputEvent::Scroll { steps } => {
                    let b = if *steps > 0 { 5 } else { 4 };
                    for _ in 0..steps.unsigned_abs() {
                        self.fake(BUTTON_PRESS, b, 0, 0)?;
                        self.fake(BUTTON_RELEASE, b, 0, 0)?;
                    }
                }
                InputEvent::Key { key, pressed } => {
                    match self.keycode_for(special_keysym(*key))? {
                        Some((code, _)) => self.key(code, *pressed)?,
                        None => skipped += 1,
                    }
                }
                InputEvent::Text { text } => {
                    for c in text.chars() {
                        let Some((code, shift)) = self.keycode_for(char_keysym(c))? else {
                            skipped += 1;
                            continue;
                        };
                        let shift_code = if shift {
                            self.find(XK_SHIFT_L).map(|(k, _)| k)
                        } else {
                            None
                        };
                        if let Some(s) = shift_code {
                            self.key(s, true)?;
                        }
                        self.key(code, true)?;
                        self.key(code, false)?;
                        if let Some(s) = shift_code {
                            self.key(s, false)?;
                        }
                    }
                }
            }
        }
        // A round trip: when this returns, the server has played every event.
        self.conn.get_input_focus()?.reply()?;
        Ok(skipped)
    }

    /// The help ended: release what the helper held and give back the keys we bound.
    pub(crate) fn finish(&mut self) -> Result<(), OverlayError> {
        for code in std::mem::take(&mut self.held_keys) {
            self.fake(KEY_RELEASE, code, 0, 0)?;
        }
        for b in std::mem::take(&mut self.held_buttons) {
            self.fake(BUTTON_RELEASE, b, 0, 0)?;
        }
        let zeros = vec![0; self.per];
        for code in std::mem::take(&mut self.bound) {
            self.conn
                .change_keyboard_mapping(1, code, self.per as u8, &zeros)?;
        }
        self.keysyms.clear();
        self.conn.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_map_to_x11_keysyms() {
        assert_eq!(char_keysym('a'), 0x61);
        assert_eq!(char_keysym('é'), 0xe9);
        assert_eq!(char_keysym(' '), 0x20);
        assert_eq!(char_keysym('€'), 0x0100_20ac);
        assert_eq!(char_keysym('œ'), 0x0100_0153);
    }
}
