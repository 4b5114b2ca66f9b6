//! Text that comes from the network, and the software canvas we draw it on.
//!
//! Core X11 fonts are bitmap fonts that may lack accented glyphs and look dated, so we
//! rasterise a TrueType font ourselves (ab_glyph) into an RGB [`Canvas`] and the X side only
//! uploads finished pixels. Every string that reaches this module is bounded first
//! ([`bounded`]): lock messages, teacher messages and sender names come from the box over
//! the network and must never make us allocate or draw without limit.

use std::path::Path;

use ab_glyph::{point, Font, FontArc, GlyphId, PxScale, ScaleFont};

use crate::theme::Rgb;
use crate::OverlayError;

/// Where Debian (fonts-dejavu-core), Fedora, Arch and Noto/Liberation installs keep a
/// sans-serif face with full Latin-1 coverage, in order of preference.
const REGULAR_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
const BOLD_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
];

const ELLIPSIS: char = '…';

/// Cuts untrusted text down to at most `max_chars` characters (ending with `…` when cut),
/// drops control characters (a newline survives only when `keep_newlines`), turns tabs into
/// spaces and trims. Counting characters, not bytes, keeps French text from being cut
/// mid-character.
pub fn bounded(text: &str, max_chars: usize, keep_newlines: bool) -> String {
    let mut cleaned = String::with_capacity(text.len().min(max_chars * 4 + 4));
    let mut count = 0usize;
    let mut truncated = false;
    let mut blank_lines = 0usize;
    for c in text.chars() {
        let c = match c {
            '\t' => ' ',
            '\n' if keep_newlines => '\n',
            '\n' | '\r' if !keep_newlines => ' ',
            c if c.is_control() => continue,
            c => c,
        };
        // More than one empty line in a row only pushes the text off the screen.
        if c == '\n' {
            blank_lines += 1;
            if blank_lines > 2 {
                continue;
            }
        } else if !c.is_whitespace() {
            blank_lines = 0;
        }
        if count == max_chars {
            truncated = true;
            break;
        }
        cleaned.push(c);
        count += 1;
    }
    let mut out = cleaned.trim().to_string();
    if truncated && max_chars > 0 {
        // Make room for the ellipsis so the result still respects `max_chars`.
        while out.chars().count() >= max_chars {
            out.pop();
        }
        out = out.trim_end().to_string();
        out.push(ELLIPSIS);
    }
    out
}

/// The two faces we draw with, loaded once at connect time.
#[derive(Clone)]
pub struct Fonts {
    pub regular: FontArc,
    pub bold: FontArc,
}

impl Fonts {
    /// Loads the first readable candidate of each face. A missing bold face falls back to
    /// the regular one; a missing regular face is an error naming every path tried.
    pub fn load() -> Result<Fonts, OverlayError> {
        let regular = load_first(REGULAR_CANDIDATES)?;
        let bold = load_first(BOLD_CANDIDATES).unwrap_or_else(|_| regular.clone());
        Ok(Fonts { regular, bold })
    }
}

fn load_first(candidates: &[&str]) -> Result<FontArc, OverlayError> {
    let mut problems = Vec::new();
    for path in candidates {
        match load_font(Path::new(path)) {
            Ok(font) => {
                tracing::debug!(path, "overlay font loaded");
                return Ok(font);
            }
            Err(e) => problems.push(format!("{path} ({e})")),
        }
    }
    Err(OverlayError::FontNotFound {
        tried: problems.join(", "),
    })
}

fn load_font(path: &Path) -> Result<FontArc, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    FontArc::try_from_vec(bytes).map_err(|e| format!("not a usable font: {e}"))
}

/// An RGB drawing surface (one `0x00RRGGBB` word per pixel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u32>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        let width = width.max(1);
        let height = height.max(1);
        Canvas {
            width,
            height,
            pixels: vec![background.word(); (width * height) as usize],
        }
    }

    pub fn get(&self, x: u32, y: u32) -> Rgb {
        Rgb::from_word(self.pixels[(y * self.width + x) as usize])
    }

    /// Mixes `colour` into one pixel with coverage `alpha` (0..=1); outside pixels are
    /// ignored so callers may draw partly off the canvas.
    pub fn blend(&mut self, x: i32, y: i32, colour: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        if a <= 0.0 {
            return;
        }
        let i = (y as u32 * self.width + x as u32) as usize;
        let below = Rgb::from_word(self.pixels[i]);
        self.pixels[i] = below.mix(colour, a).word();
    }

    /// An anti-aliased filled rectangle with rounded corners of `radius` pixels.
    pub fn fill_rounded_rect(&mut self, x: f32, y: f32, w: f32, h: f32, radius: f32, c: Rgb) {
        let r = radius.min(w / 2.0).min(h / 2.0).max(0.0);
        let (x0, y0) = (x.floor() as i32, y.floor() as i32);
        let (x1, y1) = ((x + w).ceil() as i32, (y + h).ceil() as i32);
        for py in y0..y1 {
            for px in x0..x1 {
                let cov = coverage(px, py, |sx, sy| {
                    // Distance from the rectangle shrunk by r, minus r: a rounded box.
                    let dx = (x + r - sx).max(sx - (x + w - r)).max(0.0);
                    let dy = (y + r - sy).max(sy - (y + h - r)).max(0.0);
                    let inside_x = sx >= x && sx <= x + w;
                    let inside_y = sy >= y && sy <= y + h;
                    inside_x && inside_y && dx * dx + dy * dy <= r * r
                });
                self.blend(px, py, c, cov);
            }
        }
    }

    /// A padlock pictogram whose body is `size` wide, top-left at (x, y); the shackle sits
    /// above the body. Drawn from geometry so it needs no icon font.
    pub fn draw_padlock(&mut self, x: f32, y: f32, size: f32, c: Rgb, background: Rgb) {
        let body_h = size * 0.78;
        let shackle_r = size * 0.30;
        let thick = size * 0.11;
        let cx = x + size / 2.0;
        let body_y = y + shackle_r + thick;
        // Shackle: a half ring on two legs going down into the body.
        let (x0, x1) = (
            (cx - shackle_r - thick) as i32,
            (cx + shackle_r + thick) as i32 + 1,
        );
        let (y0, y1) = (y as i32, (body_y + thick) as i32 + 1);
        for py in y0..y1 {
            for px in x0..x1 {
                let cov = coverage(px, py, |sx, sy| {
                    let centre_y = y + shackle_r + thick / 2.0;
                    if sy <= centre_y {
                        let d = ((sx - cx).powi(2) + (sy - centre_y).powi(2)).sqrt();
                        (d - shackle_r).abs() <= thick / 2.0
                    } else {
                        (sx - (cx - shackle_r)).abs() <= thick / 2.0
                            || (sx - (cx + shackle_r)).abs() <= thick / 2.0
                    }
                });
                self.blend(px, py, c, cov);
            }
        }
        self.fill_rounded_rect(x, body_y, size, body_h, size * 0.12, c);
        // Keyhole in the background colour so it reads as a hole.
        let kh_r = size * 0.09;
        let kh_cy = body_y + body_h * 0.42;
        self.fill_rounded_rect(
            cx - kh_r,
            kh_cy - kh_r,
            kh_r * 2.0,
            kh_r * 2.0,
            kh_r,
            background,
        );
        self.fill_rounded_rect(
            cx - kh_r * 0.45,
            kh_cy,
            kh_r * 0.9,
            body_h * 0.30,
            kh_r * 0.3,
            background,
        );
    }

    /// A filled anti-aliased disc (the badge's "recording" dot).
    pub fn fill_disc(&mut self, cx: f32, cy: f32, r: f32, c: Rgb) {
        self.fill_rounded_rect(cx - r, cy - r, r * 2.0, r * 2.0, r, c);
    }

    /// Draws one line of text with its baseline at `baseline`, starting at `x`.
    pub fn draw_line(
        &mut self,
        font: &FontArc,
        size: f32,
        x: f32,
        baseline: f32,
        text: &str,
        c: Rgb,
    ) {
        let scaled = font.as_scaled(PxScale::from(size));
        let mut caret = x;
        let mut previous: Option<GlyphId> = None;
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(size, point(caret, baseline));
            caret += scaled.h_advance(id);
            previous = Some(id);
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, cov| {
                    self.blend(
                        bounds.min.x as i32 + gx as i32,
                        bounds.min.y as i32 + gy as i32,
                        c,
                        cov,
                    );
                });
            }
        }
    }
}

/// 4×4 supersampled coverage of pixel (px, py) by the shape `inside`.
fn coverage(px: i32, py: i32, inside: impl Fn(f32, f32) -> bool) -> f32 {
    let mut hits = 0;
    for j in 0..4 {
        for i in 0..4 {
            let sx = px as f32 + (i as f32 + 0.5) / 4.0;
            let sy = py as f32 + (j as f32 + 0.5) / 4.0;
            if inside(sx, sy) {
                hits += 1;
            }
        }
    }
    hits as f32 / 16.0
}

/// Width in pixels of `text` on one line.
pub fn line_width(font: &FontArc, size: f32, text: &str) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut previous: Option<GlyphId> = None;
    for ch in text.chars() {
        let id = scaled.glyph_id(ch);
        if let Some(p) = previous {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// Distance between baselines for `size`.
pub fn line_height(font: &FontArc, size: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(size));
    scaled.height() + scaled.line_gap()
}

/// Ascent for `size` (baseline offset of the first line).
pub fn ascent(font: &FontArc, size: f32) -> f32 {
    font.as_scaled(PxScale::from(size)).ascent()
}

/// Greedy word wrap to `max_width`; newlines start new lines and words wider than a line are
/// broken between characters so nothing is ever drawn outside the box.
pub fn wrap(font: &FontArc, size: f32, text: &str, max_width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if line_width(font, size, &candidate) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone may still be too wide: cut it into pieces that fit.
            for ch in word.chars() {
                line.push(ch);
                if line_width(font, size, &line) > max_width && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    line.push(ch);
                }
            }
        }
        lines.push(line);
    }
    lines
}

/// A block of wrapped text chosen to fit a box: the largest size from `preferred` down to
/// `min` whose wrapped lines fit `max_height`; at `min` the overflow is cut with `…`.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBlock {
    pub size: f32,
    pub lines: Vec<String>,
    pub line_height: f32,
}

impl TextBlock {
    pub fn fit(
        font: &FontArc,
        text: &str,
        preferred: f32,
        min: f32,
        max_width: f32,
        max_height: f32,
    ) -> TextBlock {
        let mut size = preferred.max(min);
        loop {
            let lines = wrap(font, size, text, max_width);
            let lh = line_height(font, size);
            if lines.len() as f32 * lh <= max_height || size <= min {
                let max_lines = ((max_height / lh).floor() as usize).max(1);
                let lines = cut_lines(font, size, lines, max_lines, max_width);
                return TextBlock {
                    size,
                    lines,
                    line_height: lh,
                };
            }
            size = (size * 0.88).max(min);
        }
    }

    /// Re-wraps to the narrowest width that keeps the same number of lines, so a centred
    /// two-line title splits near the middle instead of leaving one orphan word below.
    pub fn balanced(mut self, font: &FontArc, text: &str, max_width: f32) -> TextBlock {
        let n = self.lines.len();
        if n < 2 || self.lines.last().is_some_and(|l| l.ends_with(ELLIPSIS)) {
            return self;
        }
        let (mut lo, mut hi) = (max_width / n as f32, max_width);
        for _ in 0..12 {
            let mid = (lo + hi) / 2.0;
            if wrap(font, self.size, text, mid).len() <= n {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let lines = wrap(font, self.size, text, hi);
        if lines.len() == n {
            self.lines = lines;
        }
        self
    }

    pub fn height(&self) -> f32 {
        self.lines.len() as f32 * self.line_height
    }

    /// Draws the block with each line centred on `centre_x` (or left-aligned at `left`).
    pub fn draw(&self, canvas: &mut Canvas, font: &FontArc, align: Align, top: f32, c: Rgb) {
        let asc = ascent(font, self.size);
        for (i, line) in self.lines.iter().enumerate() {
            let x = match align {
                Align::Centre(cx) => cx - line_width(font, self.size, line) / 2.0,
                Align::Left(left) => left,
            };
            let baseline = top + asc + i as f32 * self.line_height;
            canvas.draw_line(font, self.size, x.round(), baseline.round(), line, c);
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Align {
    Centre(f32),
    Left(f32),
}

fn cut_lines(
    font: &FontArc,
    size: f32,
    mut lines: Vec<String>,
    max_lines: usize,
    max_width: f32,
) -> Vec<String> {
    if lines.len() <= max_lines {
        return lines;
    }
    lines.truncate(max_lines);
    if let Some(last) = lines.last_mut() {
        loop {
            let candidate = format!("{}{ELLIPSIS}", last.trim_end());
            if line_width(font, size, &candidate) <= max_width || last.is_empty() {
                *last = candidate;
                break;
            }
            last.pop();
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().expect("fonts-dejavu-core must be installed for these tests")
    }

    #[test]
    fn bounded_cuts_long_text_with_an_ellipsis_and_keeps_the_limit() {
        let long = "é".repeat(600);
        let out = bounded(&long, 500, true);
        assert_eq!(out.chars().count(), 500);
        assert!(out.ends_with('…'));
        assert_eq!(bounded("court", 500, true), "court");
    }

    #[test]
    fn bounded_drops_control_characters_and_flattens_names() {
        assert_eq!(bounded("a\u{7}b\u{1b}[31mc", 50, true), "ab[31mc");
        assert_eq!(bounded("M. Dupont\nX", 50, false), "M. Dupont X");
        assert_eq!(bounded("un\n\n\n\n\ndeux", 50, true), "un\n\ndeux");
        assert_eq!(bounded("  \t ", 50, true), "");
    }

    #[test]
    fn wrap_respects_the_width_and_breaks_overlong_words() {
        let f = fonts();
        let lines = wrap(&f.regular, 20.0, &"mot ".repeat(50), 200.0);
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(line_width(&f.regular, 20.0, l) <= 200.0, "{l:?} too wide");
        }
        let lines = wrap(&f.regular, 20.0, &"x".repeat(200), 100.0);
        assert!(lines.len() > 5);
        assert_eq!(lines.concat(), "x".repeat(200));
    }

    #[test]
    fn fit_shrinks_then_cuts_with_an_ellipsis() {
        let f = fonts();
        let short = TextBlock::fit(&f.regular, "Bonjour", 60.0, 20.0, 800.0, 400.0);
        assert_eq!(short.size, 60.0);
        assert_eq!(short.lines, vec!["Bonjour".to_string()]);
        let long = "é".repeat(500);
        let block = TextBlock::fit(&f.regular, &long, 60.0, 20.0, 300.0, 100.0);
        assert_eq!(block.size, 20.0);
        assert!(block.height() <= 100.0);
        assert!(block.lines.last().unwrap().ends_with('…'));
    }

    #[test]
    fn balanced_wrap_splits_near_the_middle() {
        let f = fonts();
        let text = "Écrans verrouillés — regardez le tableau";
        let full = line_width(&f.bold, 50.0, text);
        let block = TextBlock::fit(&f.bold, text, 50.0, 50.0, full * 0.8, 1000.0);
        assert_eq!(block.lines.len(), 2);
        let block = block.balanced(&f.bold, text, full * 0.8);
        assert_eq!(
            block.lines,
            vec!["Écrans verrouillés —", "regardez le tableau"]
        );
    }

    #[test]
    fn accented_text_puts_ink_on_the_canvas() {
        let f = fonts();
        let mut c = Canvas::new(400, 80, Rgb(0, 0, 0));
        c.draw_line(&f.regular, 40.0, 10.0, 50.0, "Écrans", Rgb(255, 255, 255));
        let lit = c.pixels.iter().filter(|p| **p != 0).count();
        assert!(lit > 300, "only {lit} pixels drawn");
        // The acute accent of É rises above the capital: its topmost ink must be well above
        // that of a plain E, which a font without the glyph (a notdef box) would not do.
        let top_ink = |word: &str| {
            let mut c = Canvas::new(400, 80, Rgb(0, 0, 0));
            c.draw_line(&f.regular, 40.0, 10.0, 60.0, word, Rgb(255, 255, 255));
            (0..80u32).find(|&y| (0..400).any(|x| c.get(x, y) != Rgb(0, 0, 0)))
        };
        let (accented, plain) = (top_ink("Écrans").unwrap(), top_ink("Ecrans").unwrap());
        assert!(accented + 4 < plain, "É top {accented}, E top {plain}");
    }

    #[test]
    fn padlock_is_drawn_inside_its_box() {
        let mut c = Canvas::new(100, 120, Rgb(0, 0, 0));
        c.draw_padlock(20.0, 10.0, 60.0, Rgb(250, 200, 40), Rgb(0, 0, 0));
        let lit = c.pixels.iter().filter(|p| **p != 0).count();
        assert!(lit > 1500, "{lit}");
        for y in 0..120 {
            for x in 0..100 {
                if c.get(x, y) != Rgb(0, 0, 0) {
                    assert!(
                        (19..=81).contains(&x) && (9..=100).contains(&y),
                        "ink at {x},{y}"
                    );
                }
            }
        }
    }

    /// A cheap fuzz: random mixes of what a hostile or broken box could send (controls,
    /// combining marks, emoji, right-to-left text, huge words, newline runs) must come out
    /// bounded and laid out inside the box.
    #[test]
    fn random_network_text_is_bounded_and_fits() {
        const POOL: &[char] = &[
            'a', 'É', 'é', ' ', ' ', '\n', '\t', '\r', '\u{0}', '\u{7}', '\u{1b}', '\u{301}',
            '\u{200f}', 'ش', '中', '😀', '—', 'W', 'i', '…', '\u{feff}',
        ];
        let f = fonts();
        let mut seed: u64 = 0x5eed_1a57_e4e0;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for round in 0..300 {
            let len = next() % 1500;
            let raw: String = (0..len).map(|_| POOL[next() % POOL.len()]).collect();
            let max = 1 + next() % 500;
            let out = bounded(&raw, max, round % 2 == 0);
            assert!(out.chars().count() <= max, "{round}: too long");
            assert!(
                out.chars()
                    .all(|c| !c.is_control() || (c == '\n' && round % 2 == 0)),
                "{round}: control character kept"
            );
            if round % 30 == 0 {
                let block = TextBlock::fit(&f.bold, &out, 60.0, 16.0, 600.0, 300.0);
                assert!(block.height() <= 300.0, "{round}: block too tall");
                for line in &block.lines {
                    assert!(
                        line_width(&f.bold, block.size, line) <= 600.0,
                        "{round}: {line:?}"
                    );
                }
            }
        }
    }
}
