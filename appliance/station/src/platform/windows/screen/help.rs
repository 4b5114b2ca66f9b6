//! Remote help on a Windows desktop: the consent prompt, the banner while someone helps, and
//! the helper's input played with `SendInput`. The same steps and words as the X11 overlay:
//!
//! ```text
//! ask ─▶ prompt on every monitor ─┬─ "Refuser" ─────────────▶ Refused
//!                                 ├─ nobody, timeout_s ─────▶ TimedOut
//!                                 └─ "Accepter" ─▶ banner ─┬─ "Arrêter" / Ctrl+Alt+Fin ─▶ EndedByStudent
//!                                    (armed after 0.7 s)   └─ end_help (the helper) ───▶ (the session reports Ended)
//! ```
//!
//! One thread here owns "has the student accepted, and not ended it yet": input is played
//! only while the banner that the student's own click put up is on screen. Keys and buttons
//! the helper left pressed are released when the help ends, so a held Ctrl cannot outlive it.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanterne_winsys::hotkey::{Combo, HotKeys};
use lanterne_winsys::input::{send, MouseButton, Synth};
use lanterne_winsys::panel::{Panel, PanelSpec};
use lanterne_winsys::window::Rect;
use lanterne_wire::{HelpAsk, HelpState, InputEvent, PointerButton, SpecialKey};

use crate::screen::HelpEvent;

/// Clicks on "Accepter" sooner than this after the prompt appeared were meant for what was
/// under it, and do not count (the X11 overlay's rule).
pub const CONSENT_ARMING: Duration = Duration::from_millis(700);
/// The prompt's card, white with dark text, as on X11.
const PROMPT_BACKGROUND: [u8; 3] = [0xff, 0xff, 0xff];
const PROMPT_INK: [u8; 3] = [0x11, 0x18, 0x27];
/// The banner while someone helps.
pub const HELP_BANNER_RGB: [u8; 3] = [0x9a, 0x34, 0x12];
/// Signals waiting for the help thread (human clicks and keys: a few are plenty).
const SIGNALS: usize = 16;

/// Virtual-key codes (`VK_*`) of the keys the helper's special-key row sends.
fn special_vk(k: SpecialKey) -> u16 {
    match k {
        SpecialKey::Escape => 0x1B,
        SpecialKey::Tab => 0x09,
        SpecialKey::Enter => 0x0D,
        SpecialKey::Backspace => 0x08,
        SpecialKey::Delete => 0x2E,
        SpecialKey::Left => 0x25,
        SpecialKey::Up => 0x26,
        SpecialKey::Right => 0x27,
        SpecialKey::Down => 0x28,
        SpecialKey::Home => 0x24,
        SpecialKey::End => 0x23,
        SpecialKey::PageUp => 0x21,
        SpecialKey::PageDown => 0x22,
        // The left-hand modifiers, as the X11 side presses Control_L, Alt_L, Shift_L.
        SpecialKey::Control => 0xA2,
        SpecialKey::Alt => 0xA4,
        SpecialKey::Shift => 0xA0,
    }
}

const VK_END: u16 = 0x23;

fn mouse_button(b: PointerButton) -> MouseButton {
    match b {
        PointerButton::Left => MouseButton::Left,
        PointerButton::Middle => MouseButton::Middle,
        PointerButton::Right => MouseButton::Right,
    }
}

/// The consent prompt's title and text (the same words on every platform).
pub use lanterne_wire::help_consent_text as consent_text;

/// The banner's line while `from` helps.
pub fn banner_text(from: &str) -> String {
    format!("Prise en main en cours par {from} — Ctrl+Alt+Fin pour arrêter")
}

/// What the student did, as the windows and keys report it to the help thread.
enum Signal {
    /// Button `button` of prompt `id`: 0 "Refuser", 1 "Accepter".
    Prompt {
        id: u64,
        button: usize,
    },
    /// "Arrêter" or Ctrl+Alt+End during help `id`.
    Stop {
        id: u64,
    },
    /// A prompt went up: its deadline is the one to wait for.
    Wake,
    Quit,
}

enum Stage {
    Asking {
        id: u64,
        from: String,
        prompts: Vec<Panel>,
        shown_at: Instant,
        deadline: Instant,
    },
    Active {
        id: u64,
        /// Up for as long as the help lasts (dropping them closes them).
        #[cfg_attr(not(test), allow(dead_code))]
        banners: Vec<Panel>,
        /// Ctrl+Alt+End, while another program does not hold it.
        _stop_key: Option<HotKeys>,
        held_keys: BTreeSet<u16>,
        held_buttons: BTreeSet<MouseButton>,
    },
}

impl Stage {
    fn id(&self) -> u64 {
        match self {
            Stage::Asking { id, .. } | Stage::Active { id, .. } => *id,
        }
    }
}

struct Shared {
    stage: Mutex<Option<Stage>>,
    events: tokio::sync::broadcast::Sender<HelpEvent>,
    signals: SyncSender<Signal>,
}

/// Remote help's state on this desktop, and the thread that follows the student's answers.
pub struct RemoteHelp {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn scale_for(height: u32) -> f32 {
    (height as f32 / 1080.0).clamp(0.6, 2.0)
}

impl RemoteHelp {
    pub fn new(events: tokio::sync::broadcast::Sender<HelpEvent>) -> Result<Self, String> {
        let (signals, rx) = std::sync::mpsc::sync_channel(SIGNALS);
        let shared = Arc::new(Shared {
            stage: Mutex::new(None),
            events,
            signals,
        });
        let thread = std::thread::Builder::new()
            .name("remote help".into())
            .spawn({
                let shared = shared.clone();
                move || follow(&shared, &rx)
            })
            .map_err(|e| format!("cannot start the remote-help thread: {e}"))?;
        Ok(RemoteHelp {
            shared,
            thread: Some(thread),
        })
    }

    fn stage(&self) -> std::sync::MutexGuard<'_, Option<Stage>> {
        lock(&self.shared)
    }

    /// Puts the consent prompt for `ask` on every monitor of `monitors`.
    pub fn ask(&self, ask: &HelpAsk, monitors: &[Rect]) -> Result<(), String> {
        ask.validate()?;
        let mut stage = self.stage();
        if let Some(open) = stage.as_ref().map(Stage::id) {
            return Err(format!("remote help {open} is already open on this screen"));
        }
        let (title, body) = consent_text(&ask.from, ask.timeout_s);
        let mut prompts = Vec::new();
        for m in monitors {
            let s = scale_for(m.height);
            let width = ((620.0 * s) as u32).min(m.width * 92 / 100).max(240);
            let height = ((330.0 * s) as u32).min(m.height * 9 / 10).max(160);
            let spec = PanelSpec {
                rect: Rect {
                    x: m.x + (m.width as i32 - width as i32) / 2,
                    y: m.y + (m.height as i32 - height as i32) / 2,
                    width,
                    height,
                },
                background: PROMPT_BACKGROUND,
                ink: PROMPT_INK,
                text: format!("{title}\n\n{body}"),
                buttons: vec!["Refuser".into(), "Accepter".into()],
                font_px: (17.0 * s) as u32,
                title: "Lanterne — demande de prise en main".into(),
            };
            let (signals, id) = (self.shared.signals.clone(), ask.id);
            let on_click = Box::new(move |button| {
                let _ = signals.try_send(Signal::Prompt { id, button });
            });
            prompts.push(
                Panel::show(spec, on_click)
                    .map_err(|e| format!("cannot show the consent prompt: {e}"))?,
            );
        }
        if prompts.is_empty() {
            return Err("no monitor to show the consent prompt on".into());
        }
        let now = Instant::now();
        *stage = Some(Stage::Asking {
            id: ask.id,
            from: ask.from.clone(),
            prompts,
            shown_at: now,
            deadline: now + Duration::from_secs(u64::from(ask.timeout_s)),
        });
        drop(stage);
        // The help thread learns of the new deadline.
        let _ = self.shared.signals.try_send(Signal::Wake);
        tracing::info!(id = ask.id, "remote-help consent prompt shown");
        Ok(())
    }

    /// Takes help `id` down (prompt or banner) from the agent's side. Nothing open under that
    /// id is not an error: the student may have ended it a moment before.
    pub fn end(&self, id: u64) -> Result<(), String> {
        let mut stage = self.stage();
        if stage.as_ref().is_some_and(|s| s.id() == id) {
            let old = stage.take();
            drop(stage);
            take_down(old);
            tracing::info!(id, "remote help ended by the helper");
        }
        Ok(())
    }

    /// Plays the helper's input for `id`, only while the student's consent to it holds.
    pub fn inject(&self, id: u64, events: &[InputEvent]) -> Result<(), String> {
        let mut stage = self.stage();
        let Some(Stage::Active {
            id: active,
            held_keys,
            held_buttons,
            ..
        }) = stage.as_mut()
        else {
            return Err(format!(
                "input for remote help {id} refused: the student has not accepted it, or ended it"
            ));
        };
        if *active != id {
            return Err(format!(
                "input for remote help {id} refused: the student has not accepted it, or ended it"
            ));
        }
        lanterne_wire::validate_input(events)?;
        let mut synth = Vec::new();
        for e in events {
            match e {
                InputEvent::PointerMove { x, y } => synth.push(Synth::MoveTo { x: *x, y: *y }),
                InputEvent::Button { button, pressed } => {
                    let button = mouse_button(*button);
                    if *pressed {
                        held_buttons.insert(button);
                    } else {
                        held_buttons.remove(&button);
                    }
                    synth.push(Synth::Button {
                        button,
                        down: *pressed,
                    });
                }
                InputEvent::Scroll { steps } => synth.push(Synth::Wheel { notches: *steps }),
                InputEvent::Key { key, pressed } => {
                    let vk = special_vk(*key);
                    if *pressed {
                        held_keys.insert(vk);
                    } else {
                        held_keys.remove(&vk);
                    }
                    synth.push(Synth::Key { vk, down: *pressed });
                }
                InputEvent::Text { text } => {
                    for unit in text.encode_utf16() {
                        synth.push(Synth::Unicode { unit, down: true });
                        synth.push(Synth::Unicode { unit, down: false });
                    }
                }
            }
        }
        send(&synth).map_err(|e| format!("the helper's input could not be played: {e}"))
    }

    #[cfg(test)]
    /// The help open now: (id, accepted).
    pub fn open(&self) -> Option<(u64, bool)> {
        self.stage().as_ref().map(|s| match s {
            Stage::Asking { id, .. } => (*id, false),
            Stage::Active { id, .. } => (*id, true),
        })
    }

    #[cfg(test)]
    /// The buttons of the open prompt on the first monitor, (refuse, accept), where a click
    /// lands on them.
    pub fn prompt_buttons(&self) -> Option<(Rect, Rect)> {
        match self.stage().as_ref()? {
            Stage::Asking { prompts, .. } => {
                let p = prompts.first()?;
                Some((p.button_rect(0)?, p.button_rect(1)?))
            }
            Stage::Active { .. } => None,
        }
    }

    #[cfg(test)]
    /// The "Arrêter" button of the banner on the first monitor.
    pub fn stop_button(&self) -> Option<Rect> {
        match self.stage().as_ref()? {
            Stage::Active { banners, .. } => banners.first()?.button_rect(0),
            Stage::Asking { .. } => None,
        }
    }
}

impl Drop for RemoteHelp {
    fn drop(&mut self) {
        let old = self.stage().take();
        take_down(old);
        // Blocks at most until the thread takes one signal: it always drains them.
        let _ = self.shared.signals.send(Signal::Quit);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Option<Stage>> {
    shared.stage.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the windows of a help and gives back what the helper held.
fn take_down(stage: Option<Stage>) {
    if let Some(Stage::Active {
        held_keys,
        held_buttons,
        ..
    }) = &stage
    {
        let release: Vec<Synth> = held_keys
            .iter()
            .map(|&vk| Synth::Key { vk, down: false })
            .chain(held_buttons.iter().map(|&button| Synth::Button {
                button,
                down: false,
            }))
            .collect();
        if let Err(e) = send(&release) {
            tracing::warn!("cannot release the keys the helper held: {e}");
        }
    }
    // Dropping the panels closes them (each on its own thread).
    drop(stage);
}

/// The help thread: follows clicks, keys and the prompt's deadline.
fn follow(shared: &Arc<Shared>, signals: &Receiver<Signal>) {
    loop {
        let wait = match lock(shared).as_ref() {
            Some(Stage::Asking { deadline, .. }) => {
                deadline.saturating_duration_since(Instant::now())
            }
            _ => Duration::from_secs(3600),
        };
        let signal = match signals.recv_timeout(wait) {
            Ok(Signal::Quit) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(s) => Some(s),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        };
        let mut stage = lock(shared);
        let event = match (signal, stage.as_ref()) {
            // Nobody answered in time.
            (None, Some(Stage::Asking { id, deadline, .. })) if Instant::now() >= *deadline => {
                let id = *id;
                let old = stage.take();
                drop(stage);
                take_down(old);
                Some((id, HelpState::TimedOut))
            }
            (
                Some(Signal::Prompt { id, button }),
                Some(Stage::Asking {
                    id: open, shown_at, ..
                }),
            ) if id == *open => {
                if button == 0 {
                    let old = stage.take();
                    drop(stage);
                    take_down(old);
                    Some((id, HelpState::Refused))
                } else if shown_at.elapsed() >= CONSENT_ARMING {
                    let Some(Stage::Asking { from, prompts, .. }) = stage.take() else {
                        unreachable!("matched above");
                    };
                    // Banner first, then the prompt goes: the screen never shows neither.
                    match show_banners(shared, id, &from) {
                        Ok((banners, stop_key)) => {
                            *stage = Some(Stage::Active {
                                id,
                                banners,
                                _stop_key: stop_key,
                                held_keys: BTreeSet::new(),
                                held_buttons: BTreeSet::new(),
                            });
                            drop(stage);
                            drop(prompts);
                            Some((id, HelpState::Accepted))
                        }
                        Err(reason) => {
                            drop(stage);
                            drop(prompts);
                            tracing::warn!("{reason}");
                            Some((id, HelpState::Unavailable { reason }))
                        }
                    }
                } else {
                    None
                }
            }
            (Some(Signal::Stop { id }), Some(Stage::Active { id: open, .. })) if id == *open => {
                let old = stage.take();
                drop(stage);
                take_down(old);
                Some((id, HelpState::EndedByStudent))
            }
            _ => None,
        };
        if let Some((id, state)) = event {
            tracing::info!(id, state = state.name(), "remote help");
            let _ = shared.events.send((id, state));
        }
    }
}

/// The banner across the top of every monitor, and Ctrl+Alt+End.
fn show_banners(
    shared: &Arc<Shared>,
    id: u64,
    from: &str,
) -> Result<(Vec<Panel>, Option<HotKeys>), String> {
    let mut banners = Vec::new();
    for m in super::monitor_rects() {
        let s = scale_for(m.height);
        let width = ((980.0 * s) as u32).min(m.width * 95 / 100).max(200);
        let height = ((52.0 * s) as u32).max(32);
        let spec = PanelSpec {
            rect: Rect {
                x: m.x + (m.width as i32 - width as i32) / 2,
                y: m.y,
                width,
                height,
            },
            background: HELP_BANNER_RGB,
            ink: [0xff, 0xff, 0xff],
            text: banner_text(from),
            buttons: vec!["Arrêter".into()],
            font_px: (17.0 * s) as u32,
            title: "Lanterne — prise en main en cours".into(),
        };
        let signals = shared.signals.clone();
        banners.push(
            Panel::show(
                spec,
                Box::new(move |_| {
                    let _ = signals.try_send(Signal::Stop { id });
                }),
            )
            .map_err(|e| format!("cannot show the remote-help banner: {e}"))?,
        );
    }
    let signals = shared.signals.clone();
    let stop_key = HotKeys::register(
        &[Combo {
            ctrl: true,
            alt: true,
            shift: false,
            vk: VK_END,
        }],
        Box::new(move |_| {
            let _ = signals.try_send(Signal::Stop { id });
        }),
    );
    let stop_key = match stop_key {
        Ok(k) => Some(k),
        Err(e) => {
            // The banner's button still ends the help.
            tracing::warn!("Ctrl+Alt+End is held by another program: {e}");
            None
        }
    };
    Ok((banners, stop_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_keys_map_to_the_virtual_keys_windows_expects() {
        assert_eq!(special_vk(SpecialKey::Enter), 0x0D);
        assert_eq!(special_vk(SpecialKey::Left), 0x25);
        assert_eq!(special_vk(SpecialKey::PageDown), 0x22);
        assert_eq!(special_vk(SpecialKey::Control), 0xA2);
        let (title, body) = consent_text("Mme Martin", 30);
        assert_eq!(title, "Demande de prise en main");
        assert!(body.starts_with("Mme Martin demande") && body.contains("30 secondes"));
    }
}
