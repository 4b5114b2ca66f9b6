//! Test helpers: decoding H.264 back to RGB to check what a stream shows.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// One decoded RGB picture.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "({x},{y}) outside {}x{}",
            self.width,
            self.height
        );
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The most common colour (quantised to 8 levels per channel, then averaged) of a region:
    /// robust against a ball, text or compression noise covering part of it.
    pub fn dominant(&self, x0: usize, y0: usize, w: usize, h: usize) -> [u8; 3] {
        let mut buckets: std::collections::HashMap<[u8; 3], (u64, [u64; 3])> = Default::default();
        for y in (y0..y0 + h).step_by(2) {
            for x in (x0..x0 + w).step_by(2) {
                let p = self.pixel(x, y);
                let e = buckets
                    .entry([p[0] >> 5, p[1] >> 5, p[2] >> 5])
                    .or_default();
                e.0 += 1;
                for (sum, v) in e.1.iter_mut().zip(p) {
                    *sum += v as u64;
                }
            }
        }
        let (n, sum) = buckets
            .values()
            .max_by_key(|(n, _)| *n)
            .copied()
            .expect("empty region");
        [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
    }
}

/// True when every channel is within `tol` of the expected colour.
pub fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x.abs_diff(*y) <= tol)
}

/// Decodes a sequence of Annex B access units (first one a keyframe) and returns every picture.
pub fn decode(aus: &[bytes::Bytes]) -> Vec<Picture> {
    crate::init().expect("gstreamer");
    let pipeline = gst::parse::launch(
        "appsrc name=src format=time caps=video/x-h264,stream-format=byte-stream,alignment=au \
         ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
    )
    .expect("test decode pipeline")
    .downcast::<gst::Pipeline>()
    .expect("a pipeline");
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).expect("playing");
    for (i, au) in aus.iter().enumerate() {
        let mut buf = gst::Buffer::from_slice(au.clone());
        buf.get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_mseconds(40 * i as u64));
        src.push_buffer(buf).expect("push");
    }
    src.end_of_stream().expect("eos");
    let mut out = Vec::new();
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        let caps = sample.caps().expect("caps");
        let s = caps.structure(0).unwrap();
        let width = s.get::<i32>("width").unwrap() as usize;
        let height = s.get::<i32>("height").unwrap() as usize;
        let map = sample.buffer().unwrap().map_readable().unwrap();
        // RGB rows are padded to 4 bytes.
        let stride = (width * 3).div_ceil(4) * 4;
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            rgb.extend_from_slice(&map[y * stride..y * stride + width * 3]);
        }
        out.push(Picture { width, height, rgb });
        if sink.is_eos() {
            break;
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    out
}

/// Receives the next item or fails the test after `secs`.
pub async fn recv_within<T>(rx: &mut tokio::sync::mpsc::Receiver<T>, secs: u64, what: &str) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), rx.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("{what}: channel closed"),
        Err(_) => panic!("{what}: nothing within {secs} s"),
    }
}

pub fn tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// A private X server for one test, stopped on drop.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
    /// This process's one X display at a time (see [`ONE_DISPLAY`]); released after the
    /// server is gone.
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// X clients of two displays on two threads of one process (`ximagesrc` capturing one,
/// a video sink drawing on the other) can deadlock inside libXext's process-wide display
/// list; the tests that start an Xvfb take turns.
static ONE_DISPLAY: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Xvfb {
    /// Starts `Xvfb` on a display number it picks itself (`-displayfd`: printed once the
    /// server accepts connections, so tests running at the same time never share a display).
    /// Fails loudly when Xvfb is not installed: this test must not pass by skipping.
    /// `-noreset`: otherwise the server resets (and forgets the root colour) when xsetroot,
    /// its only client, disconnects.
    pub fn start() -> Xvfb {
        use std::io::BufRead;
        let turn = ONE_DISPLAY.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = match std::process::Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x720x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("Xvfb is not installed (apt-get install xvfb, see scripts/setup.sh): the X11 capture test needs it")
            }
            Err(e) => panic!("starting Xvfb: {e}"),
        };
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Xvfb reported no display within 30 s");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb failed to start (printed {line:?})"));
        Xvfb {
            child,
            display: format!(":{n}"),
            _turn: turn,
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
