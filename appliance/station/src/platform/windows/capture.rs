//! The live screen's capture on Windows: DXGI Desktop Duplication where Windows allows it
//! (`lanterne_winsys::dxgi`), GDI where it does not (`lanterne_winsys::capture`). Both give
//! the same picture of the whole virtual desktop, so nothing after the capture knows which
//! one made it; only the box is told ([`ScreenCapture::kind`], in the station's
//! capabilities).
//!
//! Duplication is refused in places GDI works (Wine, a disconnected session, some
//! hybrid-graphics laptops, rotated monitors) and can be lost at run time: a switch to the
//! secure desktop (UAC, Ctrl+Alt+Del), a display mode change. Then the capture goes on with
//! GDI in the same grab (no frame is missed) and tries duplication again later: 30 s after
//! the first failure, twice as long after each further one, up to 10 minutes, and back to
//! 30 s once duplication has worked for 10 minutes. So a PC where duplication never works
//! tries it a handful of times an hour, and one where it keeps breaking does not flap
//! between the two. Each switch is logged once; a retry that fails again is logged at
//! debug level only. Where duplication is not implemented at all (E_NOTIMPL: Wine), it is
//! never tried again.

use std::time::{Duration, Instant};

use lanterne_winsys::capture::{Bgra, DesktopCapture};
use lanterne_winsys::dxgi::{DuplicationCapture, DxgiError};
use lanterne_winsys::Win32Error;

/// The wait before duplication is tried again after its first failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// The longest wait between two tries.
pub const LAST_RETRY: Duration = Duration::from_secs(10 * 60);
/// Duplication that worked this long before it failed starts the waits afresh.
pub const STEADY: Duration = Duration::from_secs(10 * 60);

/// When to try duplication again: each failure doubles the wait, up to [`LAST_RETRY`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { wait: FIRST_RETRY }
    }
}

impl Backoff {
    /// Duplication failed at `now` after working for `worked_for` (zero: it did not even
    /// open): when to try it again.
    pub fn next_try(&mut self, now: Instant, worked_for: Duration) -> Instant {
        if worked_for >= STEADY {
            self.wait = FIRST_RETRY;
        }
        let at = now + self.wait;
        self.wait = (self.wait * 2).min(LAST_RETRY);
        at
    }
}

/// Duplication in use.
#[derive(Debug)]
pub struct Duplicating {
    capture: DuplicationCapture,
    since: Instant,
    backoff: Backoff,
}

/// GDI in use, and why.
#[derive(Debug)]
pub struct Fallback {
    capture: DesktopCapture,
    reason: String,
    /// When to try duplication again; None: GDI was asked for, duplication is never tried.
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl Fallback {
    /// Duplication failed at run time after `worked_for`: GDI until the next try.
    fn after(e: DxgiError, mut backoff: Backoff, worked_for: Duration, now: Instant) -> Self {
        // The first failure (or the first after long steady work) is news; later ones are
        // the same story going on.
        let first = worked_for >= STEADY || backoff == Backoff::default();
        let retry_at = backoff.next_try(now, worked_for);
        let wait = retry_at.saturating_duration_since(now).as_secs();
        if first {
            tracing::warn!(
                "screen capture: DXGI Desktop Duplication failed ({e}); GDI for {wait} s"
            );
        } else {
            tracing::info!(
                "screen capture: DXGI Desktop Duplication failed again ({e}); GDI for {wait} s"
            );
        }
        Fallback {
            capture: DesktopCapture::new(),
            reason: e.to_string(),
            retry_at: Some(retry_at),
            backoff,
        }
    }
}

/// The desktop's capture, by duplication or by GDI.
#[derive(Debug)]
pub enum ScreenCapture {
    Dxgi(Duplicating),
    Gdi(Fallback),
}

impl ScreenCapture {
    /// Duplication if Windows allows it, else GDI (saying why, once).
    pub fn open() -> Self {
        Self::open_with(DuplicationCapture::new, Instant::now())
    }

    /// GDI only, never duplication.
    pub fn gdi_only() -> Self {
        ScreenCapture::Gdi(Fallback {
            capture: DesktopCapture::new(),
            reason: "GDI was asked for".into(),
            retry_at: None,
            backoff: Backoff::default(),
        })
    }

    /// [`ScreenCapture::open`] with duplication opened by `dxgi`, at `now`.
    fn open_with(
        dxgi: impl FnOnce() -> Result<DuplicationCapture, DxgiError>,
        now: Instant,
    ) -> Self {
        match dxgi() {
            Ok(capture) => {
                tracing::info!(
                    displays = capture.outputs(),
                    "screen capture: DXGI Desktop Duplication"
                );
                ScreenCapture::Dxgi(Duplicating {
                    capture,
                    since: now,
                    backoff: Backoff::default(),
                })
            }
            Err(e) => {
                let mut backoff = Backoff::default();
                // Not implemented here (Wine): never tried again.
                let retry_at = (!e.is_permanent()).then(|| backoff.next_try(now, Duration::ZERO));
                tracing::info!("screen capture: GDI, as DXGI Desktop Duplication is refused: {e}");
                ScreenCapture::Gdi(Fallback {
                    capture: DesktopCapture::new(),
                    reason: e.to_string(),
                    retry_at,
                    backoff,
                })
            }
        }
    }

    /// "dxgi" or "gdi", as the box is told.
    pub fn kind(&self) -> &'static str {
        match self {
            ScreenCapture::Dxgi(_) => "dxgi",
            ScreenCapture::Gdi(_) => "gdi",
        }
    }

    /// Why GDI is in use; None while duplication is.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ScreenCapture::Dxgi(_) => None,
            ScreenCapture::Gdi(f) => Some(&f.reason),
        }
    }

    /// The desktop as it is now. Fails only when GDI fails: a failed duplication hands over
    /// to GDI within the same grab.
    pub fn grab(&mut self) -> Result<Bgra, Win32Error> {
        self.grab_with(DuplicationCapture::new, Instant::now())
    }

    fn grab_with(
        &mut self,
        dxgi: impl FnOnce() -> Result<DuplicationCapture, DxgiError>,
        now: Instant,
    ) -> Result<Bgra, Win32Error> {
        if let ScreenCapture::Gdi(f) = self {
            if f.retry_at.is_some_and(|at| now >= at) {
                match dxgi() {
                    Ok(capture) => {
                        tracing::info!("screen capture: back to DXGI Desktop Duplication");
                        *self = ScreenCapture::Dxgi(Duplicating {
                            capture,
                            since: now,
                            backoff: f.backoff.clone(),
                        });
                    }
                    Err(e) => {
                        f.retry_at =
                            (!e.is_permanent()).then(|| f.backoff.next_try(now, Duration::ZERO));
                        tracing::debug!("DXGI Desktop Duplication still refused: {e}");
                        f.reason = e.to_string();
                    }
                }
            }
        }
        match self {
            ScreenCapture::Dxgi(d) => match d.capture.grab() {
                Ok(picture) => Ok(picture),
                Err(e) => {
                    let worked_for = now.saturating_duration_since(d.since);
                    let mut fallback = Fallback::after(e, d.backoff.clone(), worked_for, now);
                    let picture = fallback.capture.grab();
                    *self = ScreenCapture::Gdi(fallback);
                    picture
                }
            },
            ScreenCapture::Gdi(f) => f.capture.grab(),
        }
    }

    /// When duplication is tried next, if GDI is in use and it is tried at all.
    pub fn retry_at(&self) -> Option<Instant> {
        match self {
            ScreenCapture::Dxgi(_) => None,
            ScreenCapture::Gdi(f) => f.retry_at,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The backend-independent test runs under Wine on Xvfb (scripts/test-windows.sh), where
    //! duplication is refused and GDI is used, and on a real PC, where duplication is.

    use super::*;
    use lanterne_winsys::capture::desktop_rect;
    use lanterne_winsys::window::ColourWindow;

    const ORANGE: [u8; 3] = [230, 120, 20];

    fn refused() -> Result<DuplicationCapture, DxgiError> {
        Err(DxgiError::Rotated {
            output: r"\\.\DISPLAY1".into(),
            degrees: 90,
        })
    }

    #[test]
    fn refused_duplication_falls_back_to_gdi_and_keeps_the_reason() {
        let t0 = Instant::now();
        let capture = ScreenCapture::open_with(refused, t0);
        assert_eq!(capture.kind(), "gdi");
        let reason = capture.reason().expect("a reason for GDI");
        assert!(
            reason.contains(r"\\.\DISPLAY1") && reason.contains("90"),
            "{reason}"
        );
        assert_eq!(capture.retry_at(), Some(t0 + FIRST_RETRY));
    }

    #[test]
    fn duplication_not_implemented_is_never_tried_again() {
        let t0 = Instant::now();
        let not_implemented = || {
            Err(DxgiError::Call {
                call: "DuplicateOutput",
                source: windows_core::Error::from_hresult(windows_core::HRESULT(
                    0x8000_4001_u32 as i32,
                )),
            })
        };
        let mut capture = ScreenCapture::open_with(not_implemented, t0);
        assert_eq!(capture.kind(), "gdi");
        assert_eq!(capture.retry_at(), None);
        capture
            .grab_with(|| panic!("tried again"), t0 + LAST_RETRY * 10)
            .expect("GDI copies the desktop");
        assert_eq!(capture.kind(), "gdi");
    }

    #[test]
    fn gdi_asked_for_never_tries_duplication() {
        let capture = ScreenCapture::gdi_only();
        assert_eq!(capture.kind(), "gdi");
        assert_eq!(capture.retry_at(), None);
    }

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_a_limit_and_start_afresh_after_steady_work() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| b.next_try(t0, Duration::ZERO).duration_since(t0).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600, 600]);
        // Back for a minute only, then lost again: no shorter wait (no flapping).
        assert_eq!(b.next_try(t0, Duration::from_secs(60)), t0 + LAST_RETRY);
        // Worked for a long while: a new failure is a new story.
        assert_eq!(b.next_try(t0, STEADY), t0 + FIRST_RETRY);
    }

    #[test]
    fn a_retry_that_is_refused_again_keeps_gdi_and_waits_longer() {
        let t0 = Instant::now();
        let mut capture = ScreenCapture::open_with(refused, t0);
        // Before the retry is due, duplication is not even tried.
        capture
            .grab_with(|| panic!("tried before its time"), t0 + FIRST_RETRY / 2)
            .expect("GDI copies the desktop");
        assert_eq!(capture.retry_at(), Some(t0 + FIRST_RETRY));
        let t1 = t0 + FIRST_RETRY;
        capture
            .grab_with(|| Err(DxgiError::NoOutput), t1)
            .expect("GDI copies the desktop");
        assert_eq!(capture.kind(), "gdi");
        assert_eq!(capture.retry_at(), Some(t1 + FIRST_RETRY * 2));
        assert_eq!(
            capture.reason(),
            Some(DxgiError::NoOutput.to_string().as_str())
        );
    }

    #[test]
    fn the_box_is_told_which_capture_the_live_source_uses() {
        use crate::platform::windows::media::{init, CaptureSource, LiveSource};
        use crate::sources::VideoSource;
        let probe = init().expect("OpenH264 starts");
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let gdi = LiveSource::start(CaptureSource::Gdi, &probe, tx.clone()).unwrap();
        assert_eq!(gdi.capabilities().capture, "gdi");
        let desktop = LiveSource::start(CaptureSource::Desktop, &probe, tx).unwrap();
        let told = desktop.capabilities().capture;
        if lanterne_winsys::wine::detected() {
            // Wine refuses duplication (E_NOTIMPL): the fallback is what the box hears of.
            assert_eq!(told, "gdi");
        } else {
            assert!(told == "dxgi" || told == "gdi", "{told}");
        }
    }

    /// Whichever capture Windows allows here (GDI under Wine, duplication on a real PC), the
    /// picture is the whole desktop and shows what a window painted on it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_capture_opened_shows_a_window_of_a_known_colour() {
        let _turn = crate::platform::windows::DESKTOP.lock().await;
        let (_, _, width, height) = desktop_rect();
        let _window = ColourWindow::cover_desktop(ORANGE).expect("a window over the desktop");
        let mut capture = ScreenCapture::open();
        if lanterne_winsys::wine::detected() {
            // What Wine 8 returns for DuplicateOutput: E_NOTIMPL.
            assert_eq!(capture.kind(), "gdi");
            let reason = capture.reason().unwrap_or_default();
            assert!(reason.contains("DuplicateOutput"), "{reason}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let picture = capture.grab().expect("the desktop is copied");
            let size = (picture.width, picture.height);
            match capture.kind() {
                "gdi" => assert_eq!(size, (width, height)),
                // Physical pixels: larger than GDI's with display scaling.
                _ => assert!(size.0 >= width && size.1 >= height, "{size:?}"),
            }
            let centre = picture.rgb_at(size.0 / 2, size.1 / 2);
            if centre == Some(ORANGE) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} capture: the centre stayed {centre:?}",
                capture.kind()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
