//! What each overlay window looks like, as pure functions from text and size to pixels, so
//! layout is unit-tested without an X server.

use crate::text::{self, Align, Canvas, Fonts, TextBlock};
use crate::theme::*;

/// A rectangle in window coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x
            && y >= self.y
            && x < self.x + self.width as i32
            && y < self.y + self.height as i32
    }
}

/// UI scale for a monitor: 1.0 at 720 lines, larger on big screens, never below 1.
pub fn scale_for(monitor_height: u32) -> f32 {
    (monitor_height as f32 / 720.0).clamp(1.0, 3.0)
}

/// The lock screen's content block (padlock, message, footer) for a monitor of the given
/// size, and where its top-left goes in the window. The rest of the window is the plain
/// background colour, painted by the server, so we upload only this block.
pub fn lock_block(
    fonts: &Fonts,
    monitor_w: u32,
    monitor_h: u32,
    message: &str,
) -> (Canvas, i32, i32) {
    let scale = scale_for(monitor_h);
    let width = ((monitor_w as f32) * 0.88).max(1.0);
    let icon = (monitor_h as f32 * 0.11).clamp(24.0, 200.0);
    let gap = icon * 0.45;
    let preferred = (monitor_h as f32 / 13.0).clamp(20.0, 110.0);
    let min = (16.0 * scale).min(preferred);
    let max_text_h = monitor_h as f32 * 0.5;
    let block = TextBlock::fit(
        &fonts.bold,
        message,
        preferred,
        min,
        width * 0.95,
        max_text_h,
    )
    .balanced(&fonts.bold, message, width * 0.95);
    let footer = "Lanterne · verrouillé par l'enseignant";
    let footer_size = (14.0 * scale).round();
    let footer_h = text::line_height(&fonts.regular, footer_size);
    let shackle = icon * 0.41;
    let height = shackle + icon * 0.78 + gap + block.height() + gap + footer_h;
    let fw = text::line_width(&fonts.regular, footer_size, footer);
    // As wide as the content, not the monitor: less to keep in memory and to upload.
    let text_w = block
        .lines
        .iter()
        .map(|l| text::line_width(&fonts.bold, block.size, l))
        .fold(0.0f32, f32::max);
    let content_w = (text_w.max(fw).max(icon) + 16.0 * scale).min(width);
    let mut canvas = Canvas::new(
        content_w.ceil() as u32,
        height.ceil() as u32,
        LOCK_BACKGROUND,
    );
    let cx = canvas.width as f32 / 2.0;
    canvas.draw_padlock(cx - icon / 2.0, 0.0, icon, LOCK_ICON, LOCK_BACKGROUND);
    let text_top = shackle + icon * 0.78 + gap;
    block.draw(
        &mut canvas,
        &fonts.bold,
        Align::Centre(cx),
        text_top,
        LOCK_TEXT,
    );
    let baseline = text_top + block.height() + gap + text::ascent(&fonts.regular, footer_size);
    canvas.draw_line(
        &fonts.regular,
        footer_size,
        (cx - fw / 2.0).round(),
        baseline.round(),
        footer,
        LOCK_FOOTER,
    );
    let x = (monitor_w as i32 - canvas.width as i32) / 2;
    let y = (monitor_h as i32 - canvas.height as i32) / 2;
    (canvas, x, y.max(0))
}

/// A teacher message card and the OK button's rectangle inside it.
pub fn message_card(
    fonts: &Fonts,
    monitor_w: u32,
    monitor_h: u32,
    from: &str,
    body: &str,
) -> (Canvas, Rect) {
    let scale = scale_for(monitor_h);
    let width = (560.0 * scale).min(monitor_w as f32 * 0.9).max(200.0);
    let pad = 28.0 * scale;
    let accent = 6.0 * scale;
    let title = if from.is_empty() {
        "Message de l'enseignant".to_string()
    } else {
        format!("Message de {from}")
    };
    let inner_w = width - 2.0 * pad;
    let title_block = TextBlock::fit(
        &fonts.bold,
        &title,
        22.0 * scale,
        16.0 * scale,
        inner_w,
        60.0 * scale,
    );
    let max_body_h = monitor_h as f32 * 0.6;
    let body_block = TextBlock::fit(
        &fonts.regular,
        body,
        20.0 * scale,
        15.0 * scale,
        inner_w,
        max_body_h,
    );
    let button_w = 120.0 * scale;
    let button_h = 44.0 * scale;
    let height = accent
        + pad
        + title_block.height()
        + 14.0 * scale
        + body_block.height()
        + pad
        + button_h
        + pad;
    let mut canvas = Canvas::new(width as u32, height.ceil() as u32, MESSAGE_BACKGROUND);
    canvas.fill_rounded_rect(0.0, 0.0, width, accent, 0.0, MESSAGE_ACCENT);
    let mut y = accent + pad;
    title_block.draw(&mut canvas, &fonts.bold, Align::Left(pad), y, MESSAGE_TITLE);
    y += title_block.height() + 14.0 * scale;
    body_block.draw(
        &mut canvas,
        &fonts.regular,
        Align::Left(pad),
        y,
        MESSAGE_TEXT,
    );
    y += body_block.height() + pad;
    let bx = width - pad - button_w;
    canvas.fill_rounded_rect(bx, y, button_w, button_h, 8.0 * scale, MESSAGE_BUTTON);
    let label_size = (18.0 * scale).round();
    let lw = text::line_width(&fonts.bold, label_size, "OK");
    let asc = text::ascent(&fonts.bold, label_size);
    let cap = asc * 0.72; // cap height of DejaVu is ~0.73 of its ascent
    canvas.draw_line(
        &fonts.bold,
        label_size,
        (bx + (button_w - lw) / 2.0).round(),
        (y + button_h / 2.0 + cap / 2.0).round(),
        "OK",
        MESSAGE_BUTTON_TEXT,
    );
    let ok = Rect {
        x: bx as i32,
        y: y as i32,
        width: button_w as u32,
        height: button_h as u32,
    };
    (canvas, ok)
}

/// The watched badge: a red pill with a white dot and the label.
pub fn badge(fonts: &Fonts, monitor_h: u32, label: &str) -> Canvas {
    let scale = scale_for(monitor_h);
    let size = (15.0 * scale).round();
    let pad = 10.0 * scale;
    let dot = 5.0 * scale;
    let text_w = text::line_width(&fonts.bold, size, label);
    let h = text::line_height(&fonts.bold, size) + pad;
    let w = pad + dot * 2.0 + 8.0 * scale + text_w + pad;
    let mut canvas = Canvas::new(w.ceil() as u32, h.ceil() as u32, BADGE_BACKGROUND);
    canvas.fill_disc(pad + dot, h / 2.0, dot, BADGE_TEXT);
    let asc = text::ascent(&fonts.bold, size);
    let baseline = (h - text::line_height(&fonts.bold, size)) / 2.0 + asc;
    canvas.draw_line(
        &fonts.bold,
        size,
        (pad + dot * 2.0 + 8.0 * scale).round(),
        baseline.round(),
        label,
        BADGE_TEXT,
    );
    canvas
}

/// Draws a button label centred in `(x, y, w, h)`.
fn button(
    canvas: &mut Canvas,
    fonts: &Fonts,
    r: Rect,
    size: f32,
    label: &str,
    fill: Rgb,
    ink: Rgb,
) {
    let radius = (r.height as f32 * 0.18).round();
    canvas.fill_rounded_rect(
        r.x as f32,
        r.y as f32,
        r.width as f32,
        r.height as f32,
        radius,
        fill,
    );
    let lw = text::line_width(&fonts.bold, size, label);
    let cap = text::ascent(&fonts.bold, size) * 0.72;
    canvas.draw_line(
        &fonts.bold,
        size,
        (r.x as f32 + (r.width as f32 - lw) / 2.0).round(),
        (r.y as f32 + r.height as f32 / 2.0 + cap / 2.0).round(),
        label,
        ink,
    );
}

/// The consent prompt's title and text (the same words on every platform).
pub use lanterne_wire::help_consent_text as consent_text;

/// The remote-help consent prompt: a card with who asks and what accepting means, and two
/// buttons of the same size, "Refuser" then "Accepter". Returns the card and the two
/// buttons' rectangles (refuse, accept).
pub fn consent_card(
    fonts: &Fonts,
    monitor_w: u32,
    monitor_h: u32,
    from: &str,
    timeout_s: u32,
) -> (Canvas, Rect, Rect) {
    let scale = scale_for(monitor_h);
    let width = (620.0 * scale).min(monitor_w as f32 * 0.92).max(240.0);
    let pad = 28.0 * scale;
    let accent = 8.0 * scale;
    let inner_w = width - 2.0 * pad;
    let (title, body) = consent_text(from, timeout_s);
    let title_block = TextBlock::fit(
        &fonts.bold,
        &title,
        24.0 * scale,
        16.0 * scale,
        inner_w,
        70.0 * scale,
    );
    let body_block = TextBlock::fit(
        &fonts.regular,
        &body,
        19.0 * scale,
        13.0 * scale,
        inner_w,
        monitor_h as f32 * 0.55,
    );
    let button_h = 52.0 * scale;
    let gap = 16.0 * scale;
    let button_w = ((inner_w - gap) / 2.0).min(200.0 * scale);
    let height = accent
        + pad
        + title_block.height()
        + 14.0 * scale
        + body_block.height()
        + pad
        + button_h
        + pad;
    let mut canvas = Canvas::new(width as u32, height.ceil() as u32, MESSAGE_BACKGROUND);
    canvas.fill_rounded_rect(0.0, 0.0, width, accent, 0.0, HELP_BANNER_BACKGROUND);
    let mut y = accent + pad;
    title_block.draw(&mut canvas, &fonts.bold, Align::Left(pad), y, MESSAGE_TITLE);
    y += title_block.height() + 14.0 * scale;
    body_block.draw(
        &mut canvas,
        &fonts.regular,
        Align::Left(pad),
        y,
        MESSAGE_TEXT,
    );
    y += body_block.height() + pad;
    let label = (19.0 * scale).round();
    let accept = Rect {
        x: (width - pad - button_w) as i32,
        y: y as i32,
        width: button_w as u32,
        height: button_h as u32,
    };
    let refuse = Rect {
        x: (width - pad - 2.0 * button_w - gap) as i32,
        ..accept
    };
    button(
        &mut canvas,
        fonts,
        refuse,
        label,
        "Refuser",
        CONSENT_REFUSE,
        MESSAGE_BUTTON_TEXT,
    );
    button(
        &mut canvas,
        fonts,
        accept,
        label,
        "Accepter",
        CONSENT_ACCEPT,
        MESSAGE_BUTTON_TEXT,
    );
    (canvas, refuse, accept)
}

/// The banner shown while someone controls the station: "Prise en main en cours par <from>"
/// and an "Arrêter" button (its rectangle is returned), as wide as its content.
pub fn help_banner(fonts: &Fonts, monitor_w: u32, monitor_h: u32, from: &str) -> (Canvas, Rect) {
    let scale = scale_for(monitor_h);
    let size = (17.0 * scale).round();
    let pad = 12.0 * scale;
    let label = format!("Prise en main en cours par {from} — Ctrl+Alt+Fin pour arrêter");
    let button_label = "Arrêter";
    let button_w = text::line_width(&fonts.bold, size, button_label) + 2.0 * pad;
    let button_h = text::line_height(&fonts.bold, size) + pad;
    let max_text = (monitor_w as f32 * 0.9 - button_w - 3.0 * pad).max(100.0);
    let shown = fit_line(fonts, size, &label, max_text);
    let text_w = text::line_width(&fonts.bold, size, &shown);
    let h = button_h + 2.0 * pad * 0.6;
    let w = pad + text_w + pad + button_w + pad;
    let mut canvas = Canvas::new(w.ceil() as u32, h.ceil() as u32, HELP_BANNER_BACKGROUND);
    let asc = text::ascent(&fonts.bold, size);
    let baseline = (h - text::line_height(&fonts.bold, size)) / 2.0 + asc;
    canvas.draw_line(
        &fonts.bold,
        size,
        pad.round(),
        baseline.round(),
        &shown,
        HELP_BANNER_TEXT,
    );
    let stop = Rect {
        x: (pad + text_w + pad) as i32,
        y: ((h - button_h) / 2.0) as i32,
        width: button_w as u32,
        height: button_h as u32,
    };
    button(
        &mut canvas,
        fonts,
        stop,
        size,
        button_label,
        HELP_STOP_BUTTON,
        HELP_STOP_TEXT,
    );
    (canvas, stop)
}

/// The banner of a student whose screen is shown to the whole class.
pub fn class_banner(fonts: &Fonts, monitor_h: u32) -> Canvas {
    let scale = scale_for(monitor_h);
    let size = (16.0 * scale).round();
    let pad = 12.0 * scale;
    let label = "Votre écran est montré à la classe";
    let w = pad + text::line_width(&fonts.bold, size, label) + pad;
    let h = text::line_height(&fonts.bold, size) + pad;
    let mut canvas = Canvas::new(w.ceil() as u32, h.ceil() as u32, CLASS_BANNER_BACKGROUND);
    let asc = text::ascent(&fonts.bold, size);
    let baseline = (h - text::line_height(&fonts.bold, size)) / 2.0 + asc;
    canvas.draw_line(
        &fonts.bold,
        size,
        pad.round(),
        baseline.round(),
        label,
        CLASS_BANNER_TEXT,
    );
    canvas
}

/// `line` cut with an ellipsis to fit `max_width` at `size`.
fn fit_line(fonts: &Fonts, size: f32, line: &str, max_width: f32) -> String {
    if text::line_width(&fonts.bold, size, line) <= max_width {
        return line.to_string();
    }
    let mut chars: Vec<char> = line.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let cut: String = chars.iter().collect::<String>() + "…";
        if text::line_width(&fonts.bold, size, &cut) <= max_width {
            return cut;
        }
    }
    "…".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().expect("fonts-dejavu-core must be installed for these tests")
    }

    #[test]
    fn lock_block_is_centred_and_fits_the_monitor() {
        let f = fonts();
        for (w, h) in [(1280, 720), (1920, 1080), (800, 600), (3840, 2160)] {
            let (c, x, y) = lock_block(&f, w, h, crate::DEFAULT_LOCK_MESSAGE);
            assert!(
                c.width <= w && c.height <= h,
                "{w}x{h}: block {}x{}",
                c.width,
                c.height
            );
            assert!((x + c.width as i32 / 2 - w as i32 / 2).abs() <= 1);
            assert!((y + c.height as i32 / 2 - h as i32 / 2).abs() <= 1);
            let light = c
                .pixels
                .iter()
                .filter(|p| Rgb::from_word(**p).luma() > 160)
                .count();
            assert!(light > 1000, "{w}x{h}: only {light} light pixels");
        }
    }

    #[test]
    fn a_huge_lock_message_still_fits() {
        let f = fonts();
        let msg = crate::text::bounded(&"Attention ".repeat(100), crate::MAX_MESSAGE_CHARS, true);
        let (c, _, _) = lock_block(&f, 1024, 768, &msg);
        assert!(c.height <= 768);
    }

    #[test]
    fn message_card_has_its_ok_button_inside() {
        let f = fonts();
        let (c, ok) = message_card(
            &f,
            1280,
            720,
            "Mme Martin",
            "Rangez vos affaires, s'il vous plaît.",
        );
        assert!(ok.x >= 0 && ok.y >= 0);
        assert!(ok.x as u32 + ok.width <= c.width && ok.y as u32 + ok.height <= c.height);
        let centre = c.get(ok.x as u32 + 4, ok.y as u32 + ok.height / 2);
        assert_eq!(centre, MESSAGE_BUTTON);
        assert!(ok.contains(ok.x, ok.y) && !ok.contains(ok.x + ok.width as i32, ok.y));
    }

    #[test]
    fn badge_is_small() {
        let f = fonts();
        let c = badge(&f, 1080, crate::DEFAULT_WATCHED_LABEL);
        assert!(c.width < 400 && c.height < 80, "{}x{}", c.width, c.height);
        assert!(c.pixels.iter().any(|p| *p == BADGE_TEXT.word()));
    }

    #[test]
    fn consent_card_has_two_equal_buttons_inside_accept_on_the_right() {
        let f = fonts();
        for (w, h) in [(1280, 720), (800, 600), (3840, 2160), (320, 240)] {
            let (c, refuse, accept) = consent_card(&f, w, h, "Mme Martin (enseignante)", 30);
            assert!(c.width <= w, "{w}x{h}: card {}x{}", c.width, c.height);
            for r in [refuse, accept] {
                assert!(r.x >= 0 && r.y >= 0);
                assert!(r.x as u32 + r.width <= c.width && r.y as u32 + r.height <= c.height);
            }
            assert_eq!((refuse.width, refuse.height), (accept.width, accept.height));
            assert!(
                refuse.x + refuse.width as i32 <= accept.x,
                "no overlap, accept right"
            );
            assert_eq!(
                c.get(accept.x as u32 + 3, accept.y as u32 + accept.height / 2),
                CONSENT_ACCEPT
            );
            assert_eq!(
                c.get(refuse.x as u32 + 3, refuse.y as u32 + refuse.height / 2),
                CONSENT_REFUSE
            );
        }
        let (_, body) = consent_text("M. Durand", 30);
        assert!(
            body.contains("M. Durand")
                && body.contains("30 secondes")
                && body.contains("Ctrl+Alt+Fin")
        );
    }

    #[test]
    fn help_banner_fits_and_has_its_stop_button() {
        let f = fonts();
        for (w, h) in [(1280, 720), (640, 480)] {
            let (c, stop) = help_banner(&f, w, h, &"Quelqu'un au nom très long ".repeat(4));
            assert!(c.width <= w, "{w}: banner {} wide", c.width);
            assert!(
                stop.x as u32 + stop.width <= c.width && stop.y as u32 + stop.height <= c.height
            );
            assert_eq!(
                c.get(stop.x as u32 + 2, stop.y as u32 + stop.height / 2),
                HELP_STOP_BUTTON
            );
            assert_eq!(c.get(1, 1), HELP_BANNER_BACKGROUND);
        }
        let c = class_banner(&f, 720);
        assert!(c.width < 600 && c.pixels.iter().any(|p| *p == CLASS_BANNER_TEXT.word()));
    }
}
