//! A virtual X display for the scenarios that need a real X11 screen (capture, the lock
//! overlay, the demo player, the session helper).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running Xvfb (or one of its clients, such as a test window), killed on drop.
pub struct Xvfb(pub Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb (1280×720) on a display number it picks itself (`-displayfd`: printed once the
/// server accepts connections, so parallel tests never race for a number and nothing
/// sleeps). Returns the guard and the display name (":3").
pub fn start_xvfb() -> (Xvfb, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x720x24",
            "-nolisten",
            "tcp",
            // Without it the server resets whenever its last client leaves and refuses
            // connections meanwhile: a program started while a test polled the display
            // (xwininfo) was refused and died ("the xlogo window never appeared").
            "-noreset",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb is not installed: run scripts/setup.sh");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let x = Xvfb(child);
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("Xvfb did not report a display within 30 s");
    let n: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb failed to start (printed {line:?})"));
    assert!(Path::new(&format!("/tmp/.X11-unix/X{n}")).exists());
    (x, format!(":{n}"))
}
