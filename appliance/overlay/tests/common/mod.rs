//! Test harness: a private Xvfb per test, plus a plain x11rb "other client" that plays the
//! student's applications (a window that wants keys and clicks), injects input with XTEST
//! and takes screenshots of the root window.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use lanterne_overlay::theme::Rgb;
use lanterne_overlay::OverlayEvent;
use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask, ImageFormat,
    ImageOrder, InputFocus, Window, WindowClass, BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT,
    KEY_PRESS_EVENT, KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::{CURRENT_TIME, NONE};

/// The desktop colour the tests paint on the root, to tell "overlay gone" from "overlay up".
pub const DESKTOP: Rgb = Rgb(0x2e, 0x8b, 0x57);

/// A running Xvfb, killed on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Starts `Xvfb -screen 0 <screen>`. `-displayfd` makes the server pick a free display
    /// number itself and print it only once it accepts connections, so there is neither a
    /// race between tests choosing numbers nor a sleep; we still check that the socket
    /// exists. A missing Xvfb fails the test: these tests prove behaviour on a real server.
    pub fn start(screen: &str) -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", screen, "-nolisten", "tcp"])
            .args(["+extension", "RANDR", "+extension", "XTEST", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start Xvfb ({e}): install the `xvfb` package, these tests need a real X server")
            });
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("Xvfb did not report a display within 30 s");
            }
        };
        let number: u32 = line.trim().parse().unwrap_or_else(|_| {
            let status = child.try_wait();
            panic!("Xvfb failed to start (printed {line:?}, status {status:?})")
        });
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        assert!(
            socket.exists(),
            "Xvfb reported :{number} but {socket:?} is missing"
        );
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }

    /// Kills the server now (to test losing the display).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tests' own X client.
pub struct Client {
    pub conn: RustConnection,
    pub root: Window,
    pub width: u16,
    pub height: u16,
}

impl Client {
    pub fn connect(display: &str) -> Client {
        let (conn, screen) = RustConnection::connect(Some(display)).expect("connect to Xvfb");
        let s = &conn.setup().roots[screen];
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        // Screenshots are decoded assuming the usual x86 Xvfb layout; check it, don't guess.
        assert_eq!(s.root_depth, 24, "tests expect a depth-24 Xvfb");
        let bpp = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == 24)
            .map(|f| f.bits_per_pixel);
        assert_eq!(bpp, Some(32));
        assert_eq!(conn.setup().image_byte_order, ImageOrder::LSB_FIRST);
        Client {
            conn,
            root,
            width,
            height,
        }
    }

    pub fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }

    /// Paints the root ("desktop") a solid colour, like `xsetroot -solid`.
    pub fn set_desktop(&self, c: Rgb) {
        self.conn
            .change_window_attributes(
                self.root,
                &ChangeWindowAttributesAux::new().background_pixel(c.word()),
            )
            .unwrap();
        self.conn.clear_area(false, self.root, 0, 0, 0, 0).unwrap();
        self.sync();
    }

    /// Splits the screen into two RandR monitors side by side (left one primary), as
    /// `xrandr --setmonitor` would. The left monitor claims Xvfb's only output so the
    /// server drops its automatic whole-screen monitor.
    pub fn two_monitors(&self) {
        let v = self
            .conn
            .randr_query_version(1, 5)
            .unwrap()
            .reply()
            .unwrap();
        assert!(
            (v.major_version, v.minor_version) >= (1, 5),
            "Xvfb lacks RandR 1.5"
        );
        let res = self
            .conn
            .randr_get_screen_resources(self.root)
            .unwrap()
            .reply()
            .unwrap();
        let half = self.width / 2;
        for (i, name) in ["LEFT", "RIGHT"].iter().enumerate() {
            let atom = self
                .conn
                .intern_atom(false, name.as_bytes())
                .unwrap()
                .reply()
                .unwrap()
                .atom;
            let outputs = if i == 0 {
                res.outputs.first().copied().into_iter().collect()
            } else {
                vec![]
            };
            self.conn
                .randr_set_monitor(
                    self.root,
                    randr::MonitorInfo {
                        name: atom,
                        primary: i == 0,
                        automatic: false,
                        x: (i as u16 * half) as i16,
                        y: 0,
                        width: half,
                        height: self.height,
                        width_in_millimeters: 340,
                        height_in_millimeters: 190,
                        outputs,
                    },
                )
                .unwrap()
                .check()
                .expect("RandR SetMonitor");
        }
        let monitors = self
            .conn
            .randr_get_monitors(self.root, true)
            .unwrap()
            .reply()
            .unwrap()
            .monitors;
        let mut geo: Vec<_> = monitors
            .iter()
            .map(|m| (m.x, m.y, m.width, m.height))
            .collect();
        geo.sort();
        assert_eq!(
            geo,
            vec![
                (0, 0, half, self.height),
                (half as i16, 0, half, self.height)
            ],
            "Xvfb did not accept the two-monitor layout"
        );
    }

    /// The root window's pixels as RGB, row-major.
    pub fn screenshot(&self) -> Shot {
        let img = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                self.width,
                self.height,
                !0,
            )
            .unwrap()
            .reply()
            .unwrap();
        let pixels = img
            .data
            .chunks_exact(4)
            .map(|p| Rgb(p[2], p[1], p[0]))
            .collect::<Vec<_>>();
        assert_eq!(pixels.len(), self.width as usize * self.height as usize);
        Shot {
            width: self.width as u32,
            height: self.height as u32,
            pixels,
        }
    }

    /// A plain top-level window standing for a student's application; it is focused and
    /// asks for keys and clicks.
    pub fn app_window(&self, x: i16, y: i16, w: u16, h: u16) -> Window {
        let win = self.conn.generate_id().unwrap();
        self.conn
            .create_window(
                24,
                win,
                self.root,
                x,
                y,
                w,
                h,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new()
                    .background_pixel(Rgb(0xee, 0xee, 0xee).word())
                    .event_mask(EventMask::KEY_PRESS | EventMask::BUTTON_PRESS),
            )
            .unwrap();
        self.conn.map_window(win).unwrap();
        self.sync();
        self.conn
            .set_input_focus(InputFocus::POINTER_ROOT, win, CURRENT_TIME)
            .unwrap();
        self.sync();
        win
    }

    pub fn keycode(&self, keysym: u32) -> u8 {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = map.keysyms_per_keycode as usize;
        let index = map
            .keysyms
            .chunks(per)
            .position(|s| s.contains(&keysym))
            .unwrap_or_else(|| panic!("no keycode for keysym {keysym:#x}"));
        min + index as u8
    }

    /// Presses and releases a key through XTEST, as a real keyboard would.
    pub fn tap_key(&self, keycode: u8) {
        for t in [KEY_PRESS_EVENT, KEY_RELEASE_EVENT] {
            self.conn
                .xtest_fake_input(t, keycode, CURRENT_TIME, NONE, 0, 0, 0)
                .unwrap();
        }
        self.sync();
    }

    /// Holds `modifiers` down, taps `key`, and lets the modifiers go, through XTEST.
    pub fn chord(&self, modifiers: &[u8], key: u8) {
        for &m in modifiers {
            self.conn
                .xtest_fake_input(KEY_PRESS_EVENT, m, CURRENT_TIME, NONE, 0, 0, 0)
                .unwrap();
        }
        for t in [KEY_PRESS_EVENT, KEY_RELEASE_EVENT] {
            self.conn
                .xtest_fake_input(t, key, CURRENT_TIME, NONE, 0, 0, 0)
                .unwrap();
        }
        for &m in modifiers.iter().rev() {
            self.conn
                .xtest_fake_input(KEY_RELEASE_EVENT, m, CURRENT_TIME, NONE, 0, 0, 0)
                .unwrap();
        }
        self.sync();
    }

    /// Moves the pointer to (x, y) on the root and clicks button 1 through XTEST.
    pub fn click(&self, x: i16, y: i16) {
        self.conn
            .xtest_fake_input(MOTION_NOTIFY_EVENT, 0, CURRENT_TIME, self.root, x, y, 0)
            .unwrap();
        for t in [BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT] {
            self.conn
                .xtest_fake_input(t, 1, CURRENT_TIME, NONE, 0, 0, 0)
                .unwrap();
        }
        self.sync();
    }

    /// Key and button presses `window` received so far. XTEST input is processed when the
    /// server handles the request, and our round trip after it orders every resulting
    /// event before the reply, so nothing is still in flight when this drains the queue.
    pub fn presses(&self, window: Window) -> Vec<Press> {
        self.sync();
        let mut out = Vec::new();
        while let Some(ev) = self.conn.poll_for_event().unwrap() {
            match ev {
                Event::KeyPress(e) if e.event == window => out.push(Press::Key(e.detail)),
                Event::ButtonPress(e) if e.event == window => out.push(Press::Button(e.detail)),
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    Key(u8),
    Button(u8),
}

pub struct Shot {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<Rgb>,
}

impl Shot {
    pub fn at(&self, x: u32, y: u32) -> Rgb {
        self.pixels[(y * self.width + x) as usize]
    }

    /// How many pixels of the region match `pred`.
    pub fn count(&self, x0: u32, y0: u32, x1: u32, y1: u32, pred: impl Fn(Rgb) -> bool) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| pred(self.at(x, y)))
            .count()
    }

    /// Bounding box (x0, y0, x1, y1) of pixels exactly `c`.
    pub fn bbox_of(&self, c: Rgb) -> Option<(u32, u32, u32, u32)> {
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                if self.at(x, y) == c {
                    b = Some(match b {
                        None => (x, y, x, y),
                        Some((a, bb, cc, d)) => (a.min(x), bb.min(y), cc.max(x), d.max(y)),
                    });
                }
            }
        }
        b
    }

    /// Writes the shot to `target-shots/<name>` inside the crate (git-ignored).
    pub fn save_png(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target-shots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = self.pixels.iter().flat_map(|p| [p.0, p.1, p.2]).collect();
        w.write_image_data(&data).unwrap();
        path
    }
}

/// The next overlay event, or None after `secs` seconds.
pub fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<OverlayEvent>,
    secs: u64,
) -> Option<OverlayEvent> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(secs), rx.recv())
            .await
            .ok()
            .flatten()
    })
}
