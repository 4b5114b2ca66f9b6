//! The overlay thread: owns the X connection's windows, grabs and state, and applies
//! commands from [`crate::Overlay`] handles and events from the reader thread in order.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc as tmpsc, watch};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConfigureWindowAux, ConnectionExt as _, CreateGCAux,
    CreateWindowAux, EventMask, GrabMode, GrabStatus, ImageFormat, InputFocus, KeyButMask, ModMask,
    PropMode, StackMode, Visibility, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use crate::pixels::PixelFormat;
use crate::scene::{self, Rect};
use crate::text::{Canvas, Fonts};
use crate::{OverlayError, OverlayEvent, OverlayState, MAX_OPEN_MESSAGES};

pub type Reply = mpsc::SyncSender<Result<(), OverlayError>>;

pub enum Command {
    Lock {
        message: String,
        reply: Reply,
    },
    Unlock {
        reply: Reply,
    },
    ShowMessage {
        id: u64,
        from: String,
        text: String,
        reply: Reply,
    },
    SetWatched {
        on: bool,
        label: String,
        reply: Reply,
    },
    BlockInput {
        on: bool,
        reply: Reply,
    },
    AskHelp {
        id: u64,
        from: String,
        timeout: Duration,
        reply: Reply,
    },
    EndHelp {
        id: u64,
        reply: Reply,
    },
    Inject {
        id: u64,
        events: Vec<lanterne_wire::InputEvent>,
        reply: Reply,
    },
    ShownToClass {
        on: bool,
        reply: Reply,
    },
}

pub enum Input {
    Command(Command),
    Subscribe(tmpsc::UnboundedSender<OverlayEvent>),
    Event(Event),
    Lost(String),
    Shutdown,
}

/// How long lock() keeps retrying grabs another client holds.
const GRAB_RETRY_FOR: Duration = Duration::from_secs(1);
const GRAB_RETRY_EVERY: Duration = Duration::from_millis(20);
/// While locked, grabs are re-asserted this often: a grab silently ends if our window stops
/// being viewable, and re-grabbing a grab we hold is harmless.
const REGRAB_EVERY: Duration = Duration::from_secs(1);
/// Two always-on-top programs re-raising over each other would spin; restack at most this often.
const RESTACK_MIN_INTERVAL: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(250);
/// A hot-plug arrives as a burst of RandR events; rebuild once the burst has settled.
const LAYOUT_SETTLE: Duration = Duration::from_millis(100);
/// Rendered lock blocks kept (each the size of the text block: ~1 MB at 1080p).
const LOCK_IMAGE_CACHE: usize = 4;

const XK_RETURN: u32 = 0xff0d;
const XK_KP_ENTER: u32 = 0xff8d;
const XK_END: u32 = 0xff57;
const XK_KP_END: u32 = 0xff9c;
/// A click on the consent prompt this soon after it appeared is ignored: it was aimed at
/// whatever was there before, not at "Accepter".
const CONSENT_ARMING: Duration = Duration::from_millis(700);
/// Control and Mod1 (Alt): with End, the student's key combination that ends remote help.
const STOP_MODS: u16 = 0x04 | 0x08;
const XK_LOWER_H: u32 = 0x68;
const XK_UPPER_H: u32 = 0x48;

/// Connects, prepares everything that can fail early (font, visual), and starts the threads.
pub fn start(
    display: Option<&str>,
) -> Result<(mpsc::Sender<Input>, watch::Receiver<OverlayState>), OverlayError> {
    // The environment describes the session's own display only; a display named
    // explicitly (a test's Xvfb, a kiosk's second server) is judged by the server probe below.
    if display.is_none() {
        if let Some(why) = wayland_session(|k| std::env::var(k).ok()) {
            return Err(OverlayError::Wayland(why));
        }
    }
    let (conn, screen_num) =
        RustConnection::connect(display).map_err(|source| OverlayError::Connect {
            display: display
                .map(str::to_string)
                .or_else(|| std::env::var("DISPLAY").ok())
                .unwrap_or_default(),
            source,
        })?;
    let conn = Arc::new(conn);
    if conn.extension_information("XWAYLAND")?.is_some() {
        return Err(OverlayError::Wayland(
            "the X server is Xwayland (it advertises the XWAYLAND extension)".into(),
        ));
    }
    let fonts = Fonts::load()?;
    let format = PixelFormat::for_root_visual(conn.setup(), screen_num)?;
    let screen = &conn.setup().roots[screen_num];
    let root = screen.root;
    let visual = screen.root_visual;

    let has_randr = match conn.extension_information(randr::X11_EXTENSION_NAME)? {
        Some(_) => {
            // RandR answers GetMonitors only to clients that announced ≥ 1.5.
            let v = conn.randr_query_version(1, 5)?.reply()?;
            let ok = (v.major_version, v.minor_version) >= (1, 5);
            if ok {
                conn.randr_select_input(
                    root,
                    randr::NotifyMask::SCREEN_CHANGE
                        | randr::NotifyMask::CRTC_CHANGE
                        | randr::NotifyMask::OUTPUT_CHANGE,
                )?;
            } else {
                tracing::info!(
                    major = v.major_version,
                    minor = v.minor_version,
                    "RandR older than 1.5: the lock spans the whole root window"
                );
            }
            ok
        }
        None => false,
    };
    if has_randr {
        // Older Xwayland has no XWAYLAND extension but names its outputs XWAYLAND<n>.
        let res = conn.randr_get_screen_resources_current(root)?.reply()?;
        for output in res.outputs {
            let info = conn
                .randr_get_output_info(output, res.config_timestamp)?
                .reply()?;
            if info.name.starts_with(b"XWAYLAND") {
                return Err(OverlayError::Wayland(format!(
                    "the X server is Xwayland (RandR output {})",
                    String::from_utf8_lossy(&info.name)
                )));
            }
        }
    }
    let has_shape = conn
        .extension_information(shape::X11_EXTENSION_NAME)?
        .is_some();
    // Other clients' restacking and mapping tell us when to re-raise.
    conn.change_window_attributes(
        root,
        &x11rb::protocol::xproto::ChangeWindowAttributesAux::new()
            .event_mask(EventMask::SUBSTRUCTURE_NOTIFY | EventMask::STRUCTURE_NOTIFY),
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, root, &CreateGCAux::new().graphics_exposures(0))?;
    // An unmapped InputOnly window we send ourselves a ClientMessage on, to wake the reader
    // thread out of wait_for_event at shutdown.
    let wake = conn.generate_id()?;
    conn.create_window(
        0,
        wake,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )?;
    let enter_keycodes = enter_keycodes(&conn)?;
    let injector = crate::inject::Injector::new(conn.clone(), root);
    let hand_keycodes = keycodes_of(&conn, &[XK_LOWER_H, XK_UPPER_H])?;
    grab_hand_key(&conn, root, &hand_keycodes)?;
    conn.flush()?;
    tracing::info!(
        screen = screen_num,
        depth = format.depth,
        bpp = format.bits_per_pixel,
        has_randr,
        has_shape,
        "overlay connected to X display"
    );

    let (tx, rx) = mpsc::channel();
    let (state_tx, state_rx) = watch::channel(OverlayState::default());
    let reader_conn = conn.clone();
    let reader_tx = tx.clone();
    std::thread::Builder::new()
        .name("overlay-x11-reader".into())
        .spawn(move || read_events(reader_conn, reader_tx))
        .map_err(|e| OverlayError::DisplayLost(format!("cannot start reader thread: {e}")))?;
    let mut worker = Worker {
        conn,
        root,
        visual,
        format,
        gc,
        wake,
        fonts,
        enter_keycodes,
        hand_keycodes,
        has_randr,
        has_shape,
        lock: None,
        shield: None,
        messages: Vec::new(),
        badges: Vec::new(),
        watched_label: None,
        subscribers: Vec::new(),
        state: state_tx,
        restack_pending: false,
        last_restack: Instant::now() - RESTACK_MIN_INTERVAL,
        last_grab: Instant::now(),
        input_captured: false,
        focus_before: None,
        lock_images: Vec::new(),
        badge_monitors: Vec::new(),
        layout_dirty_since: None,
        help_prompt: None,
        help_banner: None,
        stop_grabs: Vec::new(),
        class_banners: Vec::new(),
        injector,
    };
    std::thread::Builder::new()
        .name("overlay-x11".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| OverlayError::DisplayLost(format!("cannot start overlay thread: {e}")))?;
    Ok((tx, state_rx))
}

/// Why this looks like a Wayland session, if it does. Under Xwayland our windows would only
/// sit above other X clients and our grabs would not stop native Wayland applications: a
/// lock that looks locked but is not. Refusing is the honest answer until a Wayland backend
/// exists (README.md).
pub(crate) fn wayland_session(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(w) = env("WAYLAND_DISPLAY").filter(|w| !w.is_empty()) {
        return Some(format!("WAYLAND_DISPLAY is set ({w})"));
    }
    if env("XDG_SESSION_TYPE").is_some_and(|t| t.eq_ignore_ascii_case("wayland")) {
        return Some("XDG_SESSION_TYPE is wayland".into());
    }
    None
}

fn read_events(conn: Arc<RustConnection>, tx: mpsc::Sender<Input>) {
    loop {
        match conn.wait_for_event() {
            Ok(event) => {
                if tx.send(Input::Event(event)).is_err() {
                    return; // the overlay thread has shut down
                }
            }
            Err(e) => {
                let _ = tx.send(Input::Lost(e.to_string()));
                return;
            }
        }
    }
}

/// Ctrl+Alt+H, grabbed on the root window so it reaches the overlay from any application:
/// the student raises or withdraws their hand. Also grabbed with Caps Lock and Num Lock on,
/// which X counts as modifiers. Another client holding the same combination makes the
/// server refuse the grab (an X error, logged): the student then has no shortcut.
fn grab_hand_key(conn: &RustConnection, root: Window, keycodes: &[u8]) -> Result<(), OverlayError> {
    let chord = ModMask::CONTROL | ModMask::M1;
    for &key in keycodes {
        for extra in [
            ModMask::from(0u16),
            ModMask::LOCK,
            ModMask::M2,
            ModMask::LOCK | ModMask::M2,
        ] {
            conn.grab_key(
                true,
                root,
                chord | extra,
                key,
                GrabMode::ASYNC,
                GrabMode::ASYNC,
            )?;
        }
    }
    Ok(())
}

/// Keycodes whose keysyms include any of `syms`, whatever the layout.
fn keycodes_of(conn: &RustConnection, syms: &[u32]) -> Result<Vec<u8>, OverlayError> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = map.keysyms_per_keycode.max(1) as usize;
    Ok(map
        .keysyms
        .chunks(per)
        .enumerate()
        .filter(|(_, ks)| ks.iter().any(|s| syms.contains(s)))
        .map(|(i, _)| min + i as u8)
        .collect())
}

/// Keycodes whose first keysyms include Return or keypad Enter, whatever the layout.
fn enter_keycodes(conn: &RustConnection) -> Result<Vec<u8>, OverlayError> {
    keycodes_of(conn, &[XK_RETURN, XK_KP_ENTER])
}

/// The consent prompt of one remote-help request: a card on every monitor.
struct HelpPrompt {
    id: u64,
    from: String,
    timeout_s: u32,
    /// Each card with its "Refuser" and "Accepter" buttons.
    cards: Vec<(Panel, Rect, Rect)>,
    shown_at: Instant,
    deadline: Instant,
    /// The card and button ("accept": true) a press started on.
    pressed: Option<(Window, bool)>,
}

/// The banner of a running remote help: one per monitor, with its "Arrêter" button.
struct HelpBanner {
    id: u64,
    from: String,
    panels: Vec<(Panel, Rect)>,
    pressed: Option<Window>,
    monitors: Vec<Monitor>,
}

/// One window with the pixels we paint into it on every Expose.
struct Panel {
    window: Window,
    /// Shared with the lock-image cache, hence the Arc.
    image: Arc<Canvas>,
    image_x: i16,
    image_y: i16,
}

/// (message, monitor width, monitor height).
type LockKey = (String, u32, u32);
/// The rendered block and where it goes in the monitor's window.
type LockImage = (Arc<Canvas>, i32, i32);

struct LockScreen {
    message: String,
    monitors: Vec<Monitor>,
    panels: Vec<Panel>,
}

struct MessageBox {
    id: u64,
    panel: Panel,
    ok: Rect,
    pressed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Monitor {
    x: i16,
    y: i16,
    width: u16,
    height: u16,
    primary: bool,
}

struct Worker {
    conn: Arc<RustConnection>,
    root: Window,
    visual: u32,
    format: PixelFormat,
    gc: u32,
    wake: Window,
    fonts: Fonts,
    enter_keycodes: Vec<u8>,
    /// Keycodes of H, for Ctrl+Alt+H (raise or withdraw a hand).
    hand_keycodes: Vec<u8>,
    has_randr: bool,
    has_shape: bool,
    lock: Option<LockScreen>,
    /// The input-only window that blocks input without a lock screen (full-screen demo).
    shield: Option<Window>,
    messages: Vec<MessageBox>,
    badges: Vec<Panel>,
    watched_label: Option<String>,
    subscribers: Vec<tmpsc::UnboundedSender<OverlayEvent>>,
    state: watch::Sender<OverlayState>,
    restack_pending: bool,
    last_restack: Instant,
    last_grab: Instant,
    input_captured: bool,
    /// Lock blocks already rendered, by (message, monitor width, height); bounded.
    lock_images: Vec<(LockKey, LockImage)>,
    /// Who had the keyboard focus before we took it, given back when our windows close so
    /// the student's text field does not lose its focus to a lock or a message.
    focus_before: Option<Window>,
    /// Monitors the badges were laid out for.
    badge_monitors: Vec<Monitor>,
    /// When a RandR or root-size event was first seen since the last layout check.
    layout_dirty_since: Option<Instant>,
    /// Remote help: the consent prompt, or the banner once the student accepted. At most
    /// one of the two is up.
    help_prompt: Option<HelpPrompt>,
    help_banner: Option<HelpBanner>,
    /// (keycode, modifiers) of the Ctrl+Alt+End grabs held while help runs.
    stop_grabs: Vec<(u8, u16)>,
    class_banners: Vec<Panel>,
    injector: crate::inject::Injector,
}

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Input>) {
        // The screen's size is known before anything is shown.
        self.publish();
        // Lock latency is what the room notices: render the default lock for the current
        // monitors now, so the usual lock only has to create windows and upload pixels.
        match self.monitors() {
            Ok(monitors) => {
                for m in monitors {
                    let message = crate::DEFAULT_LOCK_MESSAGE;
                    self.lock_image(message, m.width as u32, m.height as u32);
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot pre-render the lock screen"),
        }
        loop {
            let input = if self.lock.is_some()
                || self.shield.is_some()
                || self.help_prompt.is_some()
                || self.restack_pending
                || self.layout_dirty_since.is_some()
            {
                match rx.recv_timeout(TICK) {
                    Ok(input) => Some(input),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(input) => Some(input),
                    Err(_) => return,
                }
            };
            match input {
                Some(Input::Command(cmd)) => self.command(cmd),
                Some(Input::Subscribe(tx)) => self.subscribers.push(tx),
                Some(Input::Event(ev)) => {
                    if let Err(e) = self.event(ev) {
                        tracing::warn!(error = %e, "overlay: handling an X event failed");
                    }
                }
                Some(Input::Lost(reason)) => {
                    self.display_lost(reason);
                    return;
                }
                Some(Input::Shutdown) => {
                    self.shutdown();
                    return;
                }
                None => {}
            }
            if let Err(e) = self.tick() {
                tracing::warn!(error = %e, "overlay: periodic upkeep failed");
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let (result, reply) = match cmd {
            Command::Lock { message, reply } => (self.lock(message), reply),
            Command::Unlock { reply } => (self.unlock(), reply),
            Command::ShowMessage {
                id,
                from,
                text,
                reply,
            } => (self.show_message(id, &from, &text), reply),
            Command::SetWatched { on, label, reply } => (self.set_watched(on, label), reply),
            Command::BlockInput { on, reply } => (self.block_input(on), reply),
            Command::AskHelp {
                id,
                from,
                timeout,
                reply,
            } => (self.ask_help(id, from, timeout), reply),
            Command::EndHelp { id, reply } => (self.end_help(id), reply),
            Command::Inject { id, events, reply } => (self.inject(id, &events), reply),
            Command::ShownToClass { on, reply } => (self.shown_to_class(on), reply),
        };
        self.publish();
        if let Err(e) = &result {
            tracing::warn!(error = %e, "overlay command failed");
        }
        // The caller may have timed out and gone; nothing to do then.
        let _ = reply.try_send(result);
    }

    fn publish(&self) {
        let state = OverlayState {
            locked: self.lock.is_some(),
            input_captured: self.lock.is_some() && self.input_captured,
            input_blocked: self.shield.is_some() && self.input_captured,
            screen_size: {
                let root = &self.conn.setup().roots[0];
                (root.width_in_pixels, root.height_in_pixels)
            },
            lock_message: self.lock.as_ref().map(|l| l.message.clone()),
            lock_monitors: self.lock.as_ref().map_or(0, |l| l.panels.len()),
            open_messages: self.messages.iter().map(|m| m.id).collect(),
            watched: !self.badges.is_empty(),
            watched_label: self.watched_label.clone(),
            display_lost: None,
            help: match (&self.help_prompt, &self.help_banner) {
                (Some(p), _) => Some(crate::HelpShown::Asking { id: p.id }),
                (None, Some(b)) => Some(crate::HelpShown::Active { id: b.id }),
                (None, None) => None,
            },
            shown_to_class: !self.class_banners.is_empty(),
        };
        self.state.send_replace(state);
    }

    fn emit(&mut self, event: OverlayEvent) {
        self.subscribers.retain(|s| s.send(event.clone()).is_ok());
    }

    /// Every monitor RandR reports (clipped to the root), or the whole root when RandR is
    /// missing or reports none (e.g. a bare Xvfb without RandR).
    fn monitors(&self) -> Result<Vec<Monitor>, OverlayError> {
        let geo = self.conn.get_geometry(self.root)?.reply()?;
        let whole = Monitor {
            x: 0,
            y: 0,
            width: geo.width,
            height: geo.height,
            primary: true,
        };
        if !self.has_randr {
            return Ok(vec![whole]);
        }
        let reply = self.conn.randr_get_monitors(self.root, true)?.reply()?;
        let mut monitors: Vec<Monitor> = reply
            .monitors
            .iter()
            .filter_map(|m| {
                let x0 = m.x.max(0);
                let y0 = m.y.max(0);
                let x1 = (m.x as i32 + m.width as i32).min(geo.width as i32);
                let y1 = (m.y as i32 + m.height as i32).min(geo.height as i32);
                (x1 > x0 as i32 && y1 > y0 as i32).then_some(Monitor {
                    x: x0,
                    y: y0,
                    width: (x1 - x0 as i32) as u16,
                    height: (y1 - y0 as i32) as u16,
                    primary: m.primary,
                })
            })
            .collect();
        monitors.dedup();
        if monitors.is_empty() {
            monitors.push(whole);
        }
        Ok(monitors)
    }

    fn primary_monitor(&self) -> Result<Monitor, OverlayError> {
        let monitors = self.monitors()?;
        Ok(monitors
            .iter()
            .copied()
            .find(|m| m.primary)
            .unwrap_or(monitors[0]))
    }

    fn create_window(
        &self,
        (x, y, width, height): (i16, i16, u16, u16),
        background: crate::theme::Rgb,
        events: EventMask,
        name: &str,
    ) -> Result<Window, OverlayError> {
        let win = self.conn.generate_id()?;
        self.conn.create_window(
            self.format.depth,
            win,
            self.root,
            x,
            y,
            width.max(1),
            height.max(1),
            0,
            WindowClass::INPUT_OUTPUT,
            self.visual,
            &CreateWindowAux::new()
                .background_pixel(self.format.pixel(background))
                .border_pixel(0)
                // No window manager may move, decorate, minimise or restack these.
                .override_redirect(1)
                .event_mask(events),
        )?;
        // Names let compositors' rules and a person with xwininfo recognise our windows.
        self.conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_CLASS,
            AtomEnum::STRING,
            b"lanterne-overlay\0Lanterne\0",
        )?;
        self.conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            name.as_bytes(),
        )?;
        Ok(win)
    }

    /// Uploads a panel's image, in slices that fit the server's maximum request size.
    fn paint(&self, panel: &Panel) -> Result<(), OverlayError> {
        let stride = self.format.stride(panel.image.width);
        let budget = self
            .conn
            .maximum_request_bytes()
            .saturating_sub(64)
            .max(stride);
        let rows_per_request = ((budget / stride) as u32).clamp(1, panel.image.height);
        let mut first = 0;
        while first < panel.image.height {
            let rows = rows_per_request.min(panel.image.height - first);
            let data = self.format.encode_rows(&panel.image, first, rows);
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                panel.window,
                self.gc,
                panel.image.width as u16,
                rows as u16,
                panel.image_x,
                panel.image_y + first as i16,
                0,
                self.format.depth,
                &data,
            )?;
            first += rows;
        }
        Ok(())
    }

    /// Waits until the server has processed everything we sent, so a reply means "done".
    fn sync(&self) -> Result<(), OverlayError> {
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    fn lock(&mut self, message: String) -> Result<(), OverlayError> {
        let message = if message.is_empty() {
            crate::DEFAULT_LOCK_MESSAGE.to_string()
        } else {
            message
        };
        if let Some(old) = self.lock.take() {
            // Re-lock: build the new windows first, then drop the old ones, so the screen is
            // never uncovered in between.
            let result = self.build_lock(message);
            self.destroy_panels(&old.panels)?;
            return result;
        }
        self.build_lock(message)
    }

    fn build_lock(&mut self, message: String) -> Result<(), OverlayError> {
        self.remember_focus()?;
        let monitors = self.monitors()?;
        let mut panels = Vec::with_capacity(monitors.len());
        let events = EventMask::EXPOSURE
            | EventMask::KEY_PRESS
            | EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::VISIBILITY_CHANGE
            | EventMask::STRUCTURE_NOTIFY
            | EventMask::FOCUS_CHANGE;
        for m in &monitors {
            let (image, ix, iy) = self.lock_image(&message, m.width as u32, m.height as u32);
            let window = self.create_window(
                (m.x, m.y, m.width, m.height),
                crate::theme::LOCK_BACKGROUND,
                events,
                "Lanterne — écran verrouillé",
            )?;
            panels.push(Panel {
                window,
                image,
                image_x: ix as i16,
                image_y: iy as i16,
            });
        }
        for p in &panels {
            self.conn.map_window(p.window)?;
        }
        tracing::info!(monitors = monitors.len(), "lock screen shown");
        self.lock = Some(LockScreen {
            message,
            monitors,
            panels,
        });
        self.restack()?;
        // Paint after the final stacking so the call returns with the pixels in place.
        if let Some(lock) = &self.lock {
            for p in &lock.panels {
                self.paint(p)?;
            }
        }
        self.sync()?;
        self.grab_with_retry()
    }

    /// The lock block for `message` on a monitor of this size, rendered once and reused.
    fn lock_image(&mut self, message: &str, width: u32, height: u32) -> LockImage {
        let key = (message.to_string(), width, height);
        if let Some((_, found)) = self.lock_images.iter().find(|(k, _)| *k == key) {
            return found.clone();
        }
        let started = Instant::now();
        let (canvas, x, y) = scene::lock_block(&self.fonts, width, height, message);
        let rendered = (Arc::new(canvas), x, y);
        tracing::debug!(width, height, took = ?started.elapsed(), "lock screen rendered");
        // A few entries cover the default and the last custom message on every monitor.
        if self.lock_images.len() >= LOCK_IMAGE_CACHE {
            self.lock_images.remove(0);
        }
        self.lock_images.push((key, rendered.clone()));
        rendered
    }

    fn grab_window(&self) -> Option<Window> {
        self.lock
            .as_ref()
            .and_then(|l| l.panels.first())
            .map(|p| p.window)
            .or(self.shield)
    }

    /// The input shield: an input-only window over the whole screen, below our other windows,
    /// holding the grabs while nothing visible of ours is shown.
    fn block_input(&mut self, on: bool) -> Result<(), OverlayError> {
        match (on, self.shield) {
            (true, Some(_)) | (false, None) => Ok(()),
            (true, None) => {
                if self.lock.is_none() {
                    self.remember_focus()?;
                }
                let setup = self.conn.setup();
                let screen = &setup.roots[0];
                let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
                let win = self.conn.generate_id()?;
                self.conn.create_window(
                    0,
                    win,
                    self.root,
                    0,
                    0,
                    width,
                    height,
                    0,
                    WindowClass::INPUT_ONLY,
                    0,
                    &CreateWindowAux::new()
                        .override_redirect(1)
                        .event_mask(EventMask::KEY_PRESS | EventMask::BUTTON_PRESS),
                )?;
                self.conn.change_property8(
                    PropMode::REPLACE,
                    win,
                    AtomEnum::WM_NAME,
                    AtomEnum::STRING,
                    "Lanterne — clavier et souris bloqués".as_bytes(),
                )?;
                self.conn.map_window(win)?;
                self.shield = Some(win);
                self.restack()?;
                self.sync()?;
                tracing::info!("student input blocked");
                self.grab_with_retry()
            }
            (false, Some(win)) => {
                self.shield = None;
                self.conn.destroy_window(win)?;
                if self.lock.is_none() {
                    self.input_captured = false;
                    self.conn.ungrab_keyboard(CURRENT_TIME)?;
                    self.conn.ungrab_pointer(CURRENT_TIME)?;
                    self.restore_focus()?;
                }
                self.sync()?;
                tracing::info!("student input given back");
                Ok(())
            }
        }
    }

    /// One attempt at both grabs. `owner_events` is true so our own message cards still get
    /// their clicks and keys while locked; every other client gets nothing.
    fn try_grab(&self, window: Window) -> Result<Option<(&'static str, GrabStatus)>, OverlayError> {
        let kb = self
            .conn
            .grab_keyboard(true, window, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC)?
            .reply()?
            .status;
        if kb != GrabStatus::SUCCESS {
            return Ok(Some(("keyboard", kb)));
        }
        let ptr = self
            .conn
            .grab_pointer(
                true,
                window,
                EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE,
                GrabMode::ASYNC,
                GrabMode::ASYNC,
                NONE,
                NONE,
                CURRENT_TIME,
            )?
            .reply()?
            .status;
        if ptr != GrabStatus::SUCCESS {
            return Ok(Some(("pointer", ptr)));
        }
        Ok(None)
    }

    fn grab_with_retry(&mut self) -> Result<(), OverlayError> {
        let Some(window) = self.grab_window() else {
            return Ok(());
        };
        let start = Instant::now();
        loop {
            match self.try_grab(window)? {
                None => {
                    self.input_captured = true;
                    self.last_grab = Instant::now();
                    // Focus too, so that when a grab is briefly broken keys still come to us.
                    self.conn
                        .set_input_focus(InputFocus::POINTER_ROOT, window, CURRENT_TIME)?;
                    self.sync()?;
                    tracing::debug!(waited = ?start.elapsed(), "keyboard and pointer grabbed");
                    return Ok(());
                }
                Some((device, status)) if start.elapsed() >= GRAB_RETRY_FOR => {
                    self.input_captured = false;
                    self.last_grab = Instant::now();
                    return Err(OverlayError::GrabFailed {
                        device,
                        status: format!("{status:?}"),
                        waited_ms: start.elapsed().as_millis(),
                    });
                }
                Some(_) => std::thread::sleep(GRAB_RETRY_EVERY),
            }
        }
    }

    fn unlock(&mut self) -> Result<(), OverlayError> {
        let Some(lock) = self.lock.take() else {
            return Ok(());
        };
        self.input_captured = false;
        if self.shield.is_none() {
            self.conn.ungrab_keyboard(CURRENT_TIME)?;
            self.conn.ungrab_pointer(CURRENT_TIME)?;
        }
        self.destroy_panels(&lock.panels)?;
        if self.shield.is_some() {
            // Input stays blocked (a full-screen demo): the shield takes the grabs over.
            self.sync()?;
            self.grab_with_retry()?;
            tracing::info!("lock screen removed; input stays blocked");
            return Ok(());
        }
        match self.messages.last() {
            Some(m) => {
                let w = m.panel.window;
                self.conn
                    .set_input_focus(InputFocus::POINTER_ROOT, w, CURRENT_TIME)?;
            }
            None => self.restore_focus()?,
        }
        self.sync()?;
        tracing::info!("lock screen removed");
        Ok(())
    }

    fn destroy_panels(&self, panels: &[Panel]) -> Result<(), OverlayError> {
        for p in panels {
            self.conn.destroy_window(p.window)?;
        }
        Ok(())
    }

    fn show_message(&mut self, id: u64, from: &str, text: &str) -> Result<(), OverlayError> {
        if let Some(pos) = self.messages.iter().position(|m| m.id == id) {
            let old = self.messages.remove(pos);
            self.conn.destroy_window(old.panel.window)?;
        }
        if self.messages.len() >= MAX_OPEN_MESSAGES {
            let oldest = self.messages.remove(0);
            tracing::warn!(
                id = oldest.id,
                "too many open messages: closing the oldest unread"
            );
            self.conn.destroy_window(oldest.panel.window)?;
        }
        let m = self.primary_monitor()?;
        let (image, ok) =
            scene::message_card(&self.fonts, m.width as u32, m.height as u32, from, text);
        // Each further open card is offset so the ones below stay visible.
        let offset = (self.messages.len() as i32 * 28).min(m.height as i32 / 4);
        let x = m.x as i32 + (m.width as i32 - image.width as i32) / 2 + offset;
        let y = m.y as i32 + (m.height as i32 - image.height as i32) / 2 + offset;
        let window = self.create_window(
            (x as i16, y as i16, image.width as u16, image.height as u16),
            crate::theme::MESSAGE_BACKGROUND,
            EventMask::EXPOSURE
                | EventMask::KEY_PRESS
                | EventMask::BUTTON_PRESS
                | EventMask::BUTTON_RELEASE
                | EventMask::VISIBILITY_CHANGE
                | EventMask::STRUCTURE_NOTIFY,
            "Lanterne — message",
        )?;
        self.conn
            .configure_window(window, &ConfigureWindowAux::new().border_width(1))?;
        self.conn.change_window_attributes(
            window,
            &x11rb::protocol::xproto::ChangeWindowAttributesAux::new()
                .border_pixel(self.format.pixel(crate::theme::MESSAGE_BORDER)),
        )?;
        self.conn.map_window(window)?;
        let panel = Panel {
            window,
            image: Arc::new(image),
            image_x: 0,
            image_y: 0,
        };
        self.messages.push(MessageBox {
            id,
            panel,
            ok,
            pressed: false,
        });
        self.restack()?;
        if let Some(m) = self.messages.last() {
            self.paint(&m.panel)?;
        }
        if self.lock.is_none() {
            // Focus the card so Enter reads it; while locked the keyboard grab already
            // routes keys to us.
            self.remember_focus()?;
            self.conn
                .set_input_focus(InputFocus::POINTER_ROOT, window, CURRENT_TIME)?;
        }
        self.sync()?;
        tracing::info!(id, "message shown");
        Ok(())
    }

    fn dismiss(&mut self, index: usize) -> Result<(), OverlayError> {
        let m = self.messages.remove(index);
        self.conn.destroy_window(m.panel.window)?;
        if self.lock.is_none() {
            match self.messages.last() {
                Some(next) => {
                    let w = next.panel.window;
                    self.conn
                        .set_input_focus(InputFocus::POINTER_ROOT, w, CURRENT_TIME)?;
                }
                None => self.restore_focus()?,
            }
        }
        // A round trip, not just a flush: whoever reacts to the event must find the card
        // gone and the focus back where it was.
        self.sync()?;
        tracing::info!(id = m.id, "message dismissed by the student");
        self.publish();
        self.emit(OverlayEvent::MessageDismissed { id: m.id });
        Ok(())
    }

    fn set_watched(&mut self, on: bool, label: String) -> Result<(), OverlayError> {
        let old = std::mem::take(&mut self.badges);
        self.destroy_panels(&old)?;
        self.watched_label = None;
        self.badge_monitors.clear();
        if !on {
            self.sync()?;
            return Ok(());
        }
        let label = if label.is_empty() {
            crate::DEFAULT_WATCHED_LABEL.to_string()
        } else {
            label
        };
        let monitors = self.monitors()?;
        for m in &monitors {
            let image = scene::badge(&self.fonts, m.height as u32, &label);
            let margin = (12.0 * scene::scale_for(m.height as u32)) as i32;
            let x = m.x as i32 + m.width as i32 - image.width as i32 - margin;
            let y = m.y as i32 + margin;
            let window = self.create_window(
                (
                    x.max(m.x as i32) as i16,
                    y as i16,
                    image.width as u16,
                    image.height as u16,
                ),
                crate::theme::BADGE_BACKGROUND,
                EventMask::EXPOSURE | EventMask::VISIBILITY_CHANGE | EventMask::STRUCTURE_NOTIFY,
                "Lanterne — écran observé",
            )?;
            if self.has_shape {
                // An empty input region: clicks fall through to whatever is below.
                self.conn.shape_rectangles(
                    shape::SO::SET,
                    shape::SK::INPUT,
                    x11rb::protocol::xproto::ClipOrdering::UNSORTED,
                    window,
                    0,
                    0,
                    &[],
                )?;
            }
            self.conn.map_window(window)?;
            self.badges.push(Panel {
                window,
                image: Arc::new(image),
                image_x: 0,
                image_y: 0,
            });
        }
        self.watched_label = Some(label);
        self.badge_monitors = monitors;
        self.restack()?;
        for b in &self.badges {
            self.paint(b)?;
        }
        self.sync()?;
        tracing::info!(monitors = self.badges.len(), "watched badge shown");
        Ok(())
    }

    fn help_window(&self, window: Window) -> bool {
        self.help_prompt
            .as_ref()
            .is_some_and(|p| p.cards.iter().any(|(c, _, _)| c.window == window))
            || self
                .help_banner
                .as_ref()
                .is_some_and(|b| b.panels.iter().any(|(p, _)| p.window == window))
    }

    fn ask_help(&mut self, id: u64, from: String, timeout: Duration) -> Result<(), OverlayError> {
        if let Some(open) = self
            .help_prompt
            .as_ref()
            .map(|p| p.id)
            .or(self.help_banner.as_ref().map(|b| b.id))
        {
            return Err(OverlayError::Help(format!(
                "remote help {open} is already open on this screen"
            )));
        }
        let timeout_s = timeout.as_secs().clamp(1, 3600) as u32;
        self.show_prompt(id, from, timeout_s, Instant::now() + timeout)?;
        tracing::info!(id, "remote-help consent prompt shown");
        Ok(())
    }

    /// Puts the prompt's cards up on every monitor (replacing cards already up for it).
    fn show_prompt(
        &mut self,
        id: u64,
        from: String,
        timeout_s: u32,
        deadline: Instant,
    ) -> Result<(), OverlayError> {
        let shown_at = match self.help_prompt.take() {
            Some(old) => {
                for (c, _, _) in &old.cards {
                    self.conn.destroy_window(c.window)?;
                }
                old.shown_at
            }
            None => Instant::now(),
        };
        let mut cards = Vec::new();
        for m in self.monitors()? {
            let (image, refuse, accept) = scene::consent_card(
                &self.fonts,
                m.width as u32,
                m.height as u32,
                &from,
                timeout_s,
            );
            let x = m.x as i32 + (m.width as i32 - image.width as i32) / 2;
            let y = m.y as i32 + (m.height as i32 - image.height as i32) / 2;
            let window = self.create_window(
                (
                    x as i16,
                    y.max(m.y as i32) as i16,
                    image.width as u16,
                    image.height as u16,
                ),
                crate::theme::MESSAGE_BACKGROUND,
                EventMask::EXPOSURE
                    | EventMask::BUTTON_PRESS
                    | EventMask::BUTTON_RELEASE
                    | EventMask::VISIBILITY_CHANGE
                    | EventMask::STRUCTURE_NOTIFY,
                "Lanterne — demande de prise en main",
            )?;
            self.conn
                .configure_window(window, &ConfigureWindowAux::new().border_width(2))?;
            self.conn.change_window_attributes(
                window,
                &x11rb::protocol::xproto::ChangeWindowAttributesAux::new()
                    .border_pixel(self.format.pixel(crate::theme::HELP_BANNER_BACKGROUND)),
            )?;
            self.conn.map_window(window)?;
            cards.push((
                Panel {
                    window,
                    image: Arc::new(image),
                    image_x: 0,
                    image_y: 0,
                },
                refuse,
                accept,
            ));
        }
        self.help_prompt = Some(HelpPrompt {
            id,
            from,
            timeout_s,
            cards,
            shown_at,
            deadline,
            pressed: None,
        });
        self.restack()?;
        if let Some(p) = &self.help_prompt {
            for (c, _, _) in &p.cards {
                self.paint(c)?;
            }
        }
        self.sync()
    }

    /// Takes the prompt down with the student's answer (or the timeout); an acceptance puts
    /// the banner up before anyone hears of it.
    fn close_prompt(&mut self, step: crate::HelpStep) -> Result<(), OverlayError> {
        let Some(p) = self.help_prompt.take() else {
            return Ok(());
        };
        if step == crate::HelpStep::Accepted {
            // Banner first, then the cards go: the screen never shows neither.
            self.show_help_banner(p.id, p.from.clone())?;
        }
        for (c, _, _) in &p.cards {
            self.conn.destroy_window(c.window)?;
        }
        self.sync()?;
        tracing::info!(id = p.id, ?step, "remote-help prompt answered");
        self.publish();
        self.emit(OverlayEvent::Help { id: p.id, step });
        Ok(())
    }

    fn help_press(&mut self, window: Window, x: i32, y: i32) {
        if let Some(p) = self.help_prompt.as_mut() {
            // Early clicks were meant for what was under the prompt.
            let armed = p.shown_at.elapsed() >= CONSENT_ARMING;
            p.pressed = p
                .cards
                .iter()
                .find(|(c, _, _)| c.window == window)
                .and_then(|(_, refuse, accept)| {
                    if accept.contains(x, y) && armed {
                        Some((window, true))
                    } else if refuse.contains(x, y) {
                        Some((window, false))
                    } else {
                        None
                    }
                });
        }
        if let Some(b) = self.help_banner.as_mut() {
            b.pressed = b
                .panels
                .iter()
                .find(|(p, stop)| p.window == window && stop.contains(x, y))
                .map(|_| window);
        }
    }

    /// A press and its release on the same button is a click.
    fn help_release(&mut self, window: Window, x: i32, y: i32) -> Result<(), OverlayError> {
        if let Some(p) = self.help_prompt.as_mut() {
            let pressed = p.pressed.take();
            let hit = p
                .cards
                .iter()
                .find(|(c, _, _)| c.window == window)
                .and_then(|(_, refuse, accept)| match pressed {
                    Some((w, true)) if w == window && accept.contains(x, y) => {
                        Some(crate::HelpStep::Accepted)
                    }
                    Some((w, false)) if w == window && refuse.contains(x, y) => {
                        Some(crate::HelpStep::Refused)
                    }
                    _ => None,
                });
            if let Some(step) = hit {
                return self.close_prompt(step);
            }
            return Ok(());
        }
        let stop = self.help_banner.as_mut().is_some_and(|b| {
            let pressed = b.pressed.take();
            pressed == Some(window)
                && b.panels
                    .iter()
                    .any(|(p, stop)| p.window == window && stop.contains(x, y))
        });
        if stop {
            self.student_stopped_help()?;
        }
        Ok(())
    }

    fn student_stopped_help(&mut self) -> Result<(), OverlayError> {
        let Some(id) = self.help_banner.as_ref().map(|b| b.id) else {
            return Ok(());
        };
        self.take_down_banner()?;
        tracing::info!(id, "the student ended remote help");
        self.publish();
        self.emit(OverlayEvent::Help {
            id,
            step: crate::HelpStep::Stopped,
        });
        Ok(())
    }

    /// The banner across the top of every monitor, and Ctrl+Alt+End grabbed on the root.
    fn show_help_banner(&mut self, id: u64, from: String) -> Result<(), OverlayError> {
        let old = self.help_banner.take();
        if let Some(old) = &old {
            for (p, _) in &old.panels {
                self.conn.destroy_window(p.window)?;
            }
        } else {
            self.injector.refresh_mapping()?;
        }
        let monitors = self.monitors()?;
        let mut panels = Vec::new();
        for m in &monitors {
            let (image, stop) =
                scene::help_banner(&self.fonts, m.width as u32, m.height as u32, &from);
            let x = m.x as i32 + (m.width as i32 - image.width as i32) / 2;
            let window = self.create_window(
                (
                    x.max(m.x as i32) as i16,
                    m.y,
                    image.width as u16,
                    image.height as u16,
                ),
                crate::theme::HELP_BANNER_BACKGROUND,
                EventMask::EXPOSURE
                    | EventMask::BUTTON_PRESS
                    | EventMask::BUTTON_RELEASE
                    | EventMask::VISIBILITY_CHANGE
                    | EventMask::STRUCTURE_NOTIFY,
                "Lanterne — prise en main en cours",
            )?;
            self.conn.map_window(window)?;
            panels.push((
                Panel {
                    window,
                    image: Arc::new(image),
                    image_x: 0,
                    image_y: 0,
                },
                stop,
            ));
        }
        self.help_banner = Some(HelpBanner {
            id,
            from,
            panels,
            pressed: None,
            monitors,
        });
        if self.stop_grabs.is_empty() {
            self.grab_stop_keys()?;
        }
        self.restack()?;
        if let Some(b) = &self.help_banner {
            for (p, _) in &b.panels {
                self.paint(p)?;
            }
        }
        self.sync()
    }

    /// Ctrl+Alt+End ends the help from any window: a passive grab on the root, with and
    /// without Caps Lock and Num Lock (Lock, Mod2), which would otherwise change the match.
    fn grab_stop_keys(&mut self) -> Result<(), OverlayError> {
        use x11rb::protocol::xproto::ModMask;
        let base = u16::from(ModMask::CONTROL | ModMask::M1);
        let extras = [
            0,
            u16::from(ModMask::LOCK),
            u16::from(ModMask::M2),
            u16::from(ModMask::LOCK | ModMask::M2),
        ];
        for code in keycodes_of(&self.conn, &[XK_END, XK_KP_END])? {
            for extra in extras {
                let mods = base | extra;
                self.conn.grab_key(
                    true,
                    self.root,
                    mods.into(),
                    code,
                    GrabMode::ASYNC,
                    GrabMode::ASYNC,
                )?;
                self.stop_grabs.push((code, mods));
            }
        }
        // The root's own key events reach us only through these grabs.
        Ok(())
    }

    fn take_down_banner(&mut self) -> Result<(), OverlayError> {
        let Some(b) = self.help_banner.take() else {
            return Ok(());
        };
        // Input stops first: nothing the helper still holds outlives the help.
        let released = self.injector.finish();
        for (p, _) in &b.panels {
            self.conn.destroy_window(p.window)?;
        }
        for (code, mods) in std::mem::take(&mut self.stop_grabs) {
            self.conn.ungrab_key(code, self.root, mods.into())?;
        }
        self.sync()?;
        released
    }

    fn end_help(&mut self, id: u64) -> Result<(), OverlayError> {
        if let Some(p) = self.help_prompt.take_if(|p| p.id == id) {
            for (c, _, _) in &p.cards {
                self.conn.destroy_window(c.window)?;
            }
            self.sync()?;
            tracing::info!(id, "remote-help request withdrawn");
        }
        if self.help_banner.as_ref().is_some_and(|b| b.id == id) {
            self.take_down_banner()?;
            tracing::info!(id, "remote help ended by the helper");
        }
        Ok(())
    }

    fn inject(
        &mut self,
        id: u64,
        events: &[lanterne_wire::InputEvent],
    ) -> Result<(), OverlayError> {
        match &self.help_banner {
            Some(b) if b.id == id => {}
            _ => {
                return Err(OverlayError::Help(format!(
                "input for remote help {id} refused: the student has not accepted it, or ended it"
            )))
            }
        }
        lanterne_wire::validate_input(events).map_err(OverlayError::Help)?;
        let skipped = self.injector.play(events)?;
        if skipped > 0 {
            tracing::debug!(skipped, "remote-help keys with no keycode to type them");
        }
        Ok(())
    }

    fn shown_to_class(&mut self, on: bool) -> Result<(), OverlayError> {
        for p in std::mem::take(&mut self.class_banners) {
            self.conn.destroy_window(p.window)?;
        }
        if on {
            for m in self.monitors()? {
                let image = scene::class_banner(&self.fonts, m.height as u32);
                let margin = (12.0 * scene::scale_for(m.height as u32)) as i32;
                let x = m.x as i32 + margin;
                let y = m.y as i32 + margin;
                let window = self.create_window(
                    (x as i16, y as i16, image.width as u16, image.height as u16),
                    crate::theme::CLASS_BANNER_BACKGROUND,
                    EventMask::EXPOSURE
                        | EventMask::VISIBILITY_CHANGE
                        | EventMask::STRUCTURE_NOTIFY,
                    "Lanterne — écran montré à la classe",
                )?;
                if self.has_shape {
                    // Clicks go through, as with the watched badge.
                    self.conn.shape_rectangles(
                        shape::SO::SET,
                        shape::SK::INPUT,
                        x11rb::protocol::xproto::ClipOrdering::UNSORTED,
                        window,
                        0,
                        0,
                        &[],
                    )?;
                }
                self.conn.map_window(window)?;
                self.class_banners.push(Panel {
                    window,
                    image: Arc::new(image),
                    image_x: 0,
                    image_y: 0,
                });
            }
            self.restack()?;
            for p in &self.class_banners {
                self.paint(p)?;
            }
        }
        self.sync()
    }

    fn remember_focus(&mut self) -> Result<(), OverlayError> {
        let focus = self.conn.get_input_focus()?.reply()?.focus;
        // Only a real client window is worth restoring (not None/PointerRoot, not ours).
        if focus > 1 && focus != self.root && !self.is_ours(focus) {
            self.focus_before = Some(focus);
        }
        Ok(())
    }

    fn restore_focus(&mut self) -> Result<(), OverlayError> {
        if let Some(w) = self.focus_before.take() {
            // The window may have been closed meanwhile: the server then answers with an
            // error event, which we only log.
            self.conn
                .set_input_focus(InputFocus::POINTER_ROOT, w, CURRENT_TIME)?;
        }
        Ok(())
    }

    fn is_ours(&self, window: Window) -> bool {
        self.all_windows().any(|w| w == window) || window == self.wake
    }

    fn all_windows(&self) -> impl Iterator<Item = Window> + '_ {
        self.shield
            .iter()
            .copied()
            .chain(
                self.lock
                    .iter()
                    .flat_map(|l| l.panels.iter().map(|p| p.window)),
            )
            .chain(self.messages.iter().map(|m| m.panel.window))
            .chain(self.badges.iter().map(|b| b.window))
            .chain(self.class_banners.iter().map(|b| b.window))
            .chain(
                self.help_banner
                    .iter()
                    .flat_map(|b| b.panels.iter().map(|(p, _)| p.window)),
            )
            .chain(
                self.help_prompt
                    .iter()
                    .flat_map(|p| p.cards.iter().map(|(c, _, _)| c.window)),
            )
    }

    /// Puts our windows on top in order: badge, then messages, then the lock. Done top-down
    /// (the top one raised, each next one placed just below the previous) so our windows
    /// never pass over each other on the way: raising the lock first would cover the cards
    /// for a moment and wipe their pixels, which only come back after an Expose round.
    fn restack(&mut self) -> Result<(), OverlayError> {
        let mut top_down: Vec<Window> = self.all_windows().collect();
        top_down.reverse();
        let mut above: Option<Window> = None;
        for w in top_down {
            let aux = match above {
                None => ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                Some(sibling) => ConfigureWindowAux::new()
                    .sibling(sibling)
                    .stack_mode(StackMode::BELOW),
            };
            self.conn.configure_window(w, &aux)?;
            above = Some(w);
        }
        self.conn.flush()?;
        self.last_restack = Instant::now();
        self.restack_pending = false;
        Ok(())
    }

    fn request_restack(&mut self) -> Result<(), OverlayError> {
        if self.all_windows().next().is_none() {
            return Ok(());
        }
        if self.last_restack.elapsed() >= RESTACK_MIN_INTERVAL {
            self.restack()
        } else {
            self.restack_pending = true;
            Ok(())
        }
    }

    fn tick(&mut self) -> Result<(), OverlayError> {
        if self
            .help_prompt
            .as_ref()
            .is_some_and(|p| Instant::now() >= p.deadline)
        {
            self.close_prompt(crate::HelpStep::TimedOut)?;
        }
        if self.restack_pending && self.last_restack.elapsed() >= RESTACK_MIN_INTERVAL {
            self.restack()?;
        }
        if (self.lock.is_some() || self.shield.is_some())
            && self.last_grab.elapsed() >= REGRAB_EVERY
        {
            self.regrab()?;
        }
        if self
            .layout_dirty_since
            .is_some_and(|t| t.elapsed() >= LAYOUT_SETTLE)
        {
            self.layout_dirty_since = None;
            self.monitors_changed()?;
        }
        Ok(())
    }

    fn regrab(&mut self) -> Result<(), OverlayError> {
        let Some(window) = self.grab_window() else {
            return Ok(());
        };
        self.last_grab = Instant::now();
        let captured = self.try_grab(window)?.is_none();
        if captured != self.input_captured {
            if captured {
                tracing::info!("lock regained the keyboard and pointer grabs");
            } else {
                tracing::warn!("lock lost its input grab; retrying");
            }
            self.input_captured = captured;
            self.publish();
        }
        Ok(())
    }

    fn panel(&self, window: Window) -> Option<&Panel> {
        self.lock
            .iter()
            .flat_map(|l| l.panels.iter())
            .chain(self.messages.iter().map(|m| &m.panel))
            .chain(self.badges.iter())
            .chain(self.class_banners.iter())
            .chain(
                self.help_banner
                    .iter()
                    .flat_map(|b| b.panels.iter().map(|(p, _)| p)),
            )
            .chain(
                self.help_prompt
                    .iter()
                    .flat_map(|p| p.cards.iter().map(|(c, _, _)| c)),
            )
            .find(|p| p.window == window)
    }

    fn event(&mut self, event: Event) -> Result<(), OverlayError> {
        match event {
            Event::Expose(e) if e.count == 0 => {
                if let Some(p) = self.panel(e.window) {
                    self.paint(p)?;
                    self.conn.flush()?;
                }
            }
            Event::KeyPress(e)
                if self.hand_keycodes.contains(&e.detail)
                    && e.state.contains(KeyButMask::CONTROL)
                    && e.state.contains(KeyButMask::MOD1) =>
            {
                self.emit(OverlayEvent::HandKey);
            }
            Event::KeyPress(e) if self.enter_keycodes.contains(&e.detail) => {
                // The card that got the key, else (keys routed to the lock window) the newest.
                let index = self
                    .messages
                    .iter()
                    .position(|m| m.panel.window == e.event)
                    .or_else(|| self.messages.len().checked_sub(1));
                if let Some(i) = index {
                    self.dismiss(i)?;
                }
            }
            // Through the root grab, or through the lock's keyboard grab while locked.
            Event::KeyPress(e)
                if self.stop_grabs.iter().any(|(k, _)| *k == e.detail)
                    && u16::from(e.state) & STOP_MODS == STOP_MODS
                    && self.help_banner.is_some() =>
            {
                self.student_stopped_help()?;
            }
            Event::ButtonPress(e) if e.detail == 1 && self.help_window(e.event) => {
                self.help_press(e.event, e.event_x as i32, e.event_y as i32);
            }
            Event::ButtonRelease(e) if e.detail == 1 && self.help_window(e.event) => {
                self.help_release(e.event, e.event_x as i32, e.event_y as i32)?;
            }
            Event::ButtonPress(e) if e.detail == 1 => {
                if let Some(m) = self.messages.iter_mut().find(|m| m.panel.window == e.event) {
                    m.pressed = m.ok.contains(e.event_x as i32, e.event_y as i32);
                }
            }
            Event::ButtonRelease(e) if e.detail == 1 => {
                let hit = self.messages.iter().position(|m| {
                    m.panel.window == e.event
                        && m.pressed
                        && m.ok.contains(e.event_x as i32, e.event_y as i32)
                });
                for m in &mut self.messages {
                    m.pressed = false;
                }
                if let Some(i) = hit {
                    self.dismiss(i)?;
                }
            }
            Event::VisibilityNotify(e)
                if e.state != Visibility::UNOBSCURED && self.is_ours(e.window) =>
            {
                self.request_restack()?;
            }
            Event::ConfigureNotify(e) if e.event == self.root && e.window == self.root => {
                self.layout_dirty_since.get_or_insert_with(Instant::now);
            }
            Event::ConfigureNotify(e) if e.event == self.root && !self.is_ours(e.window) => {
                self.request_restack()?;
            }
            Event::MapNotify(e) if e.event == self.root && !self.is_ours(e.window) => {
                self.request_restack()?;
            }
            Event::UnmapNotify(e) if e.event == e.window && self.is_ours(e.window) => {
                // Another client unmapped one of our windows (X has no access control
                // between clients): put it back, and the grab that ended with it.
                tracing::warn!(
                    window = e.window,
                    "an overlay window was unmapped by someone else"
                );
                self.conn.map_window(e.window)?;
                if let Some(p) = self.panel(e.window) {
                    self.paint(p)?;
                }
                self.restack()?;
                if self.lock.is_some() {
                    self.regrab()?;
                }
            }
            // Rate-limited: should re-grabbing itself ever produce such an event, we must
            // not spin; the periodic re-grab catches anything skipped here.
            Event::FocusOut(e)
                if self.grab_window() == Some(e.event)
                    && e.mode == x11rb::protocol::xproto::NotifyMode::UNGRAB
                    && self.last_grab.elapsed() >= RESTACK_MIN_INTERVAL =>
            {
                self.regrab()?;
            }
            Event::RandrScreenChangeNotify(_) | Event::RandrNotify(_) => {
                self.layout_dirty_since.get_or_insert_with(Instant::now);
            }
            Event::MappingNotify(_) => {
                // The keyboard layout changed: Enter and H may sit on other keycodes now. (Our
                // own remote-help typing changes the mapping too; the injector keeps its copy.)
                self.enter_keycodes = enter_keycodes(&self.conn)?;
                let hand = keycodes_of(&self.conn, &[XK_LOWER_H, XK_UPPER_H])?;
                if hand != self.hand_keycodes {
                    self.conn.ungrab_key(0u8, self.root, ModMask::ANY)?;
                    grab_hand_key(&self.conn, self.root, &hand)?;
                    self.hand_keycodes = hand;
                }
            }
            Event::Error(e) => {
                // Mostly a focus request on a window that just went away; worth a trace.
                tracing::debug!(error = ?e, "X error on an overlay request");
            }
            _ => {}
        }
        Ok(())
    }

    /// A monitor was plugged, unplugged or resized: rebuild what covers monitors, if the
    /// layout really differs from the one it was built for.
    fn monitors_changed(&mut self) -> Result<(), OverlayError> {
        let now = self.monitors()?;
        if let Some(lock) = self.lock.as_ref().filter(|l| l.monitors != now) {
            tracing::info!(
                monitors = now.len(),
                "monitor layout changed: rebuilding the lock"
            );
            let message = lock.message.clone();
            if let Err(e) = self.lock(message) {
                tracing::warn!(error = %e, "re-lock after a monitor change");
            }
        }
        if let Some(label) = self.watched_label.clone() {
            if self.badge_monitors != now {
                self.set_watched(true, label)?;
            }
        }
        if let Some(b) = self.help_banner.as_ref().filter(|b| b.monitors != now) {
            let (id, from) = (b.id, b.from.clone());
            self.show_help_banner(id, from)?;
        }
        if let Some(p) = self.help_prompt.as_ref() {
            let (id, from, timeout_s, deadline) = (p.id, p.from.clone(), p.timeout_s, p.deadline);
            // A new layout gets new cards; the time left does not start again.
            self.show_prompt(id, from, timeout_s, deadline)?;
        }
        if !self.class_banners.is_empty() {
            self.shown_to_class(true)?;
        }
        self.publish();
        Ok(())
    }

    fn display_lost(&mut self, reason: String) {
        tracing::error!(%reason, "X display lost: overlays are gone");
        self.lock = None;
        self.shield = None;
        self.messages.clear();
        self.badges.clear();
        self.watched_label = None;
        self.help_prompt = None;
        self.help_banner = None;
        self.class_banners.clear();
        // State first: a subscriber reacting to the event must already see it.
        self.state.send_replace(OverlayState {
            display_lost: Some(reason.clone()),
            ..OverlayState::default()
        });
        self.emit(OverlayEvent::DisplayLost { reason });
    }

    fn shutdown(&mut self) {
        let windows: Vec<Window> = self.all_windows().collect();
        let result = (|| -> Result<(), OverlayError> {
            // Windows first: once another client can grab again, nothing of ours is left.
            for w in windows {
                self.conn.destroy_window(w)?;
            }
            if self.lock.is_some() || self.shield.is_some() {
                self.conn.ungrab_keyboard(CURRENT_TIME)?;
                self.conn.ungrab_pointer(CURRENT_TIME)?;
            }
            let wake = ClientMessageEvent::new(32, self.wake, AtomEnum::NOTICE, [0u32; 5]);
            self.conn
                .send_event(false, self.wake, EventMask::NO_EVENT, wake)?;
            self.conn.flush()?;
            Ok(())
        })();
        if let Err(e) = result {
            tracing::debug!(error = %e, "overlay shutdown on a broken connection");
        }
        if self.help_banner.take().is_some() {
            if let Err(e) = self.injector.finish() {
                tracing::debug!(error = %e, "releasing remote-help input at shutdown");
            }
        }
        self.lock = None;
        self.shield = None;
        self.messages.clear();
        self.badges.clear();
        self.help_prompt = None;
        self.class_banners.clear();
        tracing::debug!("overlay thread stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wayland_sessions_are_recognised() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(wayland_session(env(&[("WAYLAND_DISPLAY", "wayland-0")])).is_some());
        assert!(wayland_session(env(&[("XDG_SESSION_TYPE", "wayland")])).is_some());
        assert!(wayland_session(env(&[("XDG_SESSION_TYPE", "x11"), ("DISPLAY", ":0")])).is_none());
        assert!(wayland_session(env(&[("WAYLAND_DISPLAY", "")])).is_none());
    }
}
