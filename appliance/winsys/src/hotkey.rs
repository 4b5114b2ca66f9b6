//! System-wide key combinations (`RegisterHotKey`) on a thread of their own: Ctrl+Alt+H
//! raises or lowers the student's hand from whatever application has the keyboard,
//! Ctrl+Alt+End ends remote help.
//!
//! Windows gives a combination to the first program that registers it: when another one
//! holds it, [`HotKeys::register`] fails and says which. While the lock screen's low-level
//! hook swallows the keyboard, no combination fires.

use std::ptr::null_mut;

use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    RegisterHotKey, UnregisterHotKey, HOT_KEY_MODIFIERS, MOD_ALT, MOD_CONTROL, MOD_NOREPEAT,
    MOD_SHIFT,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    GetMessageW, PeekMessageW, MSG, PM_NOREMOVE, WM_HOTKEY, WM_USER,
};

use crate::Win32Error;

/// A key combination: modifiers and a virtual-key code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combo {
    pub ctrl: bool,
    pub alt: bool,
    pub shift: bool,
    pub vk: u16,
}

/// Registered combinations; unregistered (and their thread ended) on drop.
#[derive(Debug)]
pub struct HotKeys {
    _ui: crate::ui_thread::UiThread,
}

/// Most combinations one [`HotKeys`] holds.
pub const MAX_COMBOS: usize = 8;

impl HotKeys {
    /// Registers `combos`; `on_press` runs on their thread with the index of the one pressed.
    /// Fails (registering none) when any is taken by another program.
    pub fn register(
        combos: &[Combo],
        on_press: Box<dyn FnMut(usize) + Send>,
    ) -> Result<HotKeys, Win32Error> {
        if combos.len() > MAX_COMBOS {
            return Err(Win32Error {
                call: "HotKeys::register (too many combinations)",
                code: 0,
            });
        }
        let combos = combos.to_vec();
        let (ui, _) = crate::ui_thread::UiThread::start(
            "hot keys",
            "spawning the hot-key thread",
            "the hot-key thread ended early",
            |id| *id,
            move |ready_tx| run(&combos, on_press, ready_tx),
        )?;
        Ok(HotKeys { _ui: ui })
    }
}

/// First id this thread registers (ids are per thread; any small number will do).
const FIRST_ID: i32 = 1;

fn run(
    combos: &[Combo],
    mut on_press: Box<dyn FnMut(usize) + Send>,
    ready: std::sync::mpsc::Sender<Result<u32, Win32Error>>,
) {
    // SAFETY: registration and the message loop run on this one thread, which owns the hot
    // keys (a null window sends WM_HOTKEY to the thread's queue); `msg` is a valid MSG.
    unsafe {
        let mut msg: MSG = std::mem::zeroed();
        // Makes the thread's message queue before anyone posts to it.
        PeekMessageW(&mut msg, null_mut(), WM_USER, WM_USER, PM_NOREMOVE);
        let mut registered = Vec::new();
        for (i, c) in combos.iter().enumerate() {
            let mut mods: HOT_KEY_MODIFIERS = MOD_NOREPEAT;
            if c.ctrl {
                mods |= MOD_CONTROL;
            }
            if c.alt {
                mods |= MOD_ALT;
            }
            if c.shift {
                mods |= MOD_SHIFT;
            }
            let id = FIRST_ID + i as i32;
            if RegisterHotKey(null_mut(), id, mods, u32::from(c.vk)) == 0 {
                let e = Win32Error::last("RegisterHotKey");
                for id in registered {
                    UnregisterHotKey(null_mut(), id);
                }
                let _ = ready.send(Err(e));
                return;
            }
            registered.push(id);
        }
        let _ = ready.send(Ok(GetCurrentThreadId()));
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            if msg.message == WM_HOTKEY {
                let id = msg.wParam as i32;
                if id >= FIRST_ID && ((id - FIRST_ID) as usize) < combos.len() {
                    on_press((id - FIRST_ID) as usize);
                }
            }
        }
        for id in registered {
            UnregisterHotKey(null_mut(), id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{send, Synth};

    /// Ctrl+Alt+`vk` typed with synthetic input, as a keyboard would.
    fn type_combo(vk: u16) {
        let (ctrl, alt) = (0x11, 0x12);
        send(&[
            Synth::Key {
                vk: ctrl,
                down: true,
            },
            Synth::Key {
                vk: alt,
                down: true,
            },
            Synth::Key { vk, down: true },
            Synth::Key { vk, down: false },
            Synth::Key {
                vk: alt,
                down: false,
            },
            Synth::Key {
                vk: ctrl,
                down: false,
            },
        ])
        .unwrap();
    }

    #[test]
    fn a_combination_typed_anywhere_reaches_its_owner() {
        let _turn = crate::input::desktop_turn();
        let (tx, rx) = std::sync::mpsc::channel();
        let keys = HotKeys::register(
            &[
                Combo {
                    ctrl: true,
                    alt: true,
                    shift: false,
                    vk: u16::from(b'J'),
                },
                Combo {
                    ctrl: true,
                    alt: true,
                    shift: false,
                    vk: u16::from(b'K'),
                },
            ],
            Box::new(move |i| {
                let _ = tx.send(i);
            }),
        )
        .unwrap();
        type_combo(u16::from(b'K'));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the combination within 10 s");
        assert_eq!(got, 1);
        type_combo(u16::from(b'J'));
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(),
            0
        );
        drop(keys);
    }
}
