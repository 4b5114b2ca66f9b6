//! The X screen of a station under test, as a student (or a camera) sees it: read pixels,
//! find an on-screen button by its colour, and click it with the XTEST extension, the way a
//! real mouse would.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::{CURRENT_TIME, NONE};

const BUTTON_PRESS: u8 = 4;
const BUTTON_RELEASE: u8 = 5;
const MOTION_NOTIFY: u8 = 6;

pub struct XScreen {
    pub conn: RustConnection,
    pub root: Window,
    pub width: u16,
    pub height: u16,
}

impl XScreen {
    pub fn connect(display: &str) -> anyhow::Result<XScreen> {
        let (conn, screen) = RustConnection::connect(Some(display))?;
        let s = &conn.setup().roots[screen];
        let (root, width, height) = (s.root, s.width_in_pixels, s.height_in_pixels);
        anyhow::ensure!(s.root_depth == 24, "expected a depth-24 screen");
        anyhow::ensure!(
            conn.setup().image_byte_order == ImageOrder::LSB_FIRST,
            "expected an LSB-first server"
        );
        Ok(XScreen {
            conn,
            root,
            width,
            height,
        })
    }

    /// RGB of a rectangle, row by row.
    pub fn grab(&self, x: i16, y: i16, w: u16, h: u16) -> anyhow::Result<Vec<[u8; 3]>> {
        let img = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)?
            .reply()?;
        // 32 bits per pixel, B G R x in memory on an LSB-first depth-24 server.
        Ok(img
            .data
            .chunks_exact(4)
            .map(|p| [p[2], p[1], p[0]])
            .collect())
    }

    pub fn pixel(&self, x: i16, y: i16) -> anyhow::Result<[u8; 3]> {
        Ok(self.grab(x, y, 1, 1)?[0])
    }

    /// Bounding box (x0, y0, x1, y1) of the pixels of exactly `rgb`.
    pub fn bbox_of(&self, rgb: [u8; 3]) -> anyhow::Result<Option<(u32, u32, u32, u32)>> {
        let px = self.grab(0, 0, self.width, self.height)?;
        let mut b: Option<(u32, u32, u32, u32)> = None;
        for (i, p) in px.iter().enumerate() {
            if *p == rgb {
                let (x, y) = (
                    (i % self.width as usize) as u32,
                    (i / self.width as usize) as u32,
                );
                b = Some(match b {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
        Ok(b)
    }

    /// Waits up to `timeout` for something of colour `rgb` on screen; its centre.
    pub fn wait_for(&self, rgb: [u8; 3], timeout: Duration) -> anyhow::Result<(i16, i16)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((x0, y0, x1, y1)) = self.bbox_of(rgb)? {
                return Ok((((x0 + x1) / 2) as i16, ((y0 + y1) / 2) as i16));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "no {rgb:?} on screen within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Moves the pointer to (x, y) and clicks the left button, as a person would.
    pub fn click(&self, x: i16, y: i16) -> anyhow::Result<()> {
        self.conn
            .xtest_fake_input(MOTION_NOTIFY, 0, CURRENT_TIME, self.root, x, y, 0)?;
        for t in [BUTTON_PRESS, BUTTON_RELEASE] {
            self.conn
                .xtest_fake_input(t, 1, CURRENT_TIME, NONE, 0, 0, 0)?;
        }
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }

    pub fn pointer(&self) -> anyhow::Result<(i16, i16)> {
        let p = self.conn.query_pointer(self.root)?.reply()?;
        Ok((p.root_x, p.root_y))
    }
}
