//! `colour-window RRGGBB`: covers the whole desktop with one colour until its standard input
//! closes. The Windows scenario (tests/scenarios/tests/windows_agent.rs) runs it under Wine
//! to put a known colour on the screen the agent captures. Prints `shown` once the window is
//! up.

#[cfg(windows)]
fn main() {
    use lanterne_winsys::capture::desktop_rect;
    use lanterne_winsys::window::{ColourWindow, Rect};
    use std::io::{Read, Write};

    let hex = std::env::args().nth(1).unwrap_or_default();
    let rgb = match u32::from_str_radix(&hex, 16) {
        Ok(v) if hex.len() == 6 => [(v >> 16) as u8, (v >> 8) as u8, v as u8],
        _ => {
            eprintln!("usage: colour-window RRGGBB");
            std::process::exit(2);
        }
    };
    let (x, y, width, height) = desktop_rect();
    let window = match ColourWindow::open(
        Rect {
            x,
            y,
            width,
            height,
        },
        rgb,
    ) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("colour-window: {e}");
            std::process::exit(1);
        }
    };
    println!("shown");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(window);
}

#[cfg(not(windows))]
fn main() {
    eprintln!("colour-window runs on Windows only");
    std::process::exit(2);
}
