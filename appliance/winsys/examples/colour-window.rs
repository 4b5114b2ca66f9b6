//! `colour-window RRGGBB [RRGGBB]`: covers the whole desktop with one colour until its
//! standard input closes. The Windows scenario (tests/scenarios/tests/windows_agent.rs) runs
//! it under Wine to put a known colour on the screen the agent captures. With a second
//! colour, a square of that colour (a quarter of the desktop's width and height) also
//! crosses the desktop, bouncing off its edges, 8 pixels a step at 25 steps a second: the
//! moving picture of the Windows benchmark (scripts/bench-windows.sh). Prints `shown` once
//! the windows are up.

#[cfg(windows)]
fn main() {
    use lanterne_winsys::capture::desktop_rect;
    use lanterne_winsys::window::{ColourWindow, Rect};
    use std::io::{Read, Write};

    fn parse(hex: &str) -> Option<[u8; 3]> {
        match u32::from_str_radix(hex, 16) {
            Ok(v) if hex.len() == 6 => Some([(v >> 16) as u8, (v >> 8) as u8, v as u8]),
            _ => None,
        }
    }
    fn fail(what: impl std::fmt::Display) -> ! {
        eprintln!("colour-window: {what}");
        std::process::exit(1);
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rgb, moving) = match args.as_slice() {
        [a] => (parse(a), None),
        [a, b] => (parse(a), Some(parse(b))),
        _ => (None, None),
    };
    let (Some(rgb), None | Some(Some(_))) = (rgb, moving) else {
        eprintln!("usage: colour-window RRGGBB [RRGGBB]");
        std::process::exit(2);
    };
    let (x, y, width, height) = desktop_rect();
    let desktop = Rect {
        x,
        y,
        width,
        height,
    };
    let window = ColourWindow::open(desktop, rgb).unwrap_or_else(|e| fail(e));
    let square = moving.flatten().map(|c| {
        let rect = Rect {
            x,
            y,
            width: (width / 4).max(1),
            height: (height / 4).max(1),
        };
        ColourWindow::open(rect, c).unwrap_or_else(|e| fail(e))
    });
    println!("shown");
    let _ = std::io::stdout().flush();
    let Some(square) = square else {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        drop(window);
        return;
    };
    let stdin_closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closed = stdin_closed.clone();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        closed.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let (max_x, max_y) = (
        (width - (width / 4).max(1)) as i32,
        (height - (height / 4).max(1)) as i32,
    );
    let (mut px, mut py, mut dx, mut dy) = (0i32, 0i32, 8i32, 8i32);
    while !stdin_closed.load(std::sync::atomic::Ordering::Relaxed) {
        // The animation's own clock: one step every 40 ms.
        std::thread::sleep(std::time::Duration::from_millis(40));
        if !(0..=max_x).contains(&(px + dx)) {
            dx = -dx;
        }
        if !(0..=max_y).contains(&(py + dy)) {
            dy = -dy;
        }
        px += dx;
        py += dy;
        if let Err(e) = square.move_first(x + px, y + py) {
            fail(e);
        }
    }
    drop(square);
    drop(window);
}

#[cfg(not(windows))]
fn main() {
    eprintln!("colour-window runs on Windows only");
    std::process::exit(2);
}
