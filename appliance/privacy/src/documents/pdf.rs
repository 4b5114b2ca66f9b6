//! A small PDF 1.4 writer, just enough for the A4 room poster.
//!
//! Why our own: the poster needs one or two fonts, filled rectangles, lines and wrapped
//! text; a full PDF library would bring far more code to the box than this file.
//!
//! Fonts are embedded whole as TrueType (`/FontFile2`, Flate-compressed) with the
//! `WinAnsiEncoding` simple encoding: one byte per character covers every French letter
//! (é è ê à ç œ « » …), viewers map the bytes to glyphs through the font's Unicode `cmap`,
//! and text extraction (`pdftotext`, screen readers, copy-paste) gets the real characters
//! back from the standard encoding, with no ToUnicode map to write. The cost of embedding
//! the whole DejaVu Sans instead of a subset is file size (a few hundred KB compressed),
//! which does not matter for a document printed once per term.

use std::fmt::Write as _;
use std::path::Path;

use miniz_oxide::deflate::compress_to_vec_zlib;
use ttf_parser::{name_id, Face};

use super::{keep_times_together, DocumentError, Poster};

/// Where Debian's `fonts-dejavu-core` puts the regular face.
pub const DEJAVU_SANS: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// And the bold face.
pub const DEJAVU_SANS_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// A4 in PDF points (1/72 inch).
const PAGE_W: f32 = 595.276;
const PAGE_H: f32 = 841.89;
/// 18 mm margins: inside every office printer's unprintable border.
const MARGIN: f32 = 51.0;
/// Space kept free above the bottom margin for the footer.
const FOOTER_SPACE: f32 = 28.0;

/// Windows-1252 ("WinAnsi") code points 0x80–0x9F; the rest of 0x20–0xFF is Latin-1.
const WINANSI_80_9F: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

fn winansi_char(code: u8) -> Option<char> {
    match code {
        0x20..=0x7e | 0xa0..=0xff => Some(char::from(code)),
        0x80..=0x9f => WINANSI_80_9F[usize::from(code - 0x80)],
        _ => None,
    }
}

fn winansi_code(ch: char) -> Option<u8> {
    match u32::from(ch) {
        c @ (0x20..=0x7e | 0xa0..=0xff) => u8::try_from(c).ok(),
        _ => WINANSI_80_9F
            .iter()
            .position(|c| *c == Some(ch))
            .and_then(|i| u8::try_from(0x80 + i).ok()),
    }
}

/// A TrueType font ready to embed, with the metrics the layout needs.
#[derive(Clone)]
pub struct PdfFont {
    /// PostScript name, used as `/BaseFont`.
    name: String,
    /// Size of the font file, which the PDF must state (`/Length1`).
    data_len: usize,
    /// The font file, zlib-compressed once at load so each poster is quick to produce.
    compressed: Vec<u8>,
    /// Advance widths in 1/1000 em for each WinAnsi code (0 where the font has no glyph).
    widths: [u16; 256],
    /// Whether the font has a glyph for the character of each WinAnsi code.
    present: [bool; 256],
    ascent: i32,
    descent: i32,
    cap_height: i32,
    bbox: [i32; 4],
}

impl std::fmt::Debug for PdfFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdfFont({}, {} bytes)", self.name, self.data_len)
    }
}

impl PdfFont {
    /// Reads and parses a `.ttf` file: the only I/O in this crate.
    pub fn load(path: impl AsRef<Path>) -> Result<PdfFont, DocumentError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| DocumentError::FontRead {
            path: path.display().to_string(),
            source,
        })?;
        PdfFont::from_bytes(data, &path.display().to_string())
    }

    /// Parses font bytes; `label` names the source in errors.
    pub fn from_bytes(data: Vec<u8>, label: &str) -> Result<PdfFont, DocumentError> {
        let parse_error = |reason: String| DocumentError::FontParse {
            path: label.to_owned(),
            reason,
        };
        let face = Face::parse(&data, 0).map_err(|e| parse_error(e.to_string()))?;
        // CFF-flavoured OpenType would need /FontFile3; only TrueType outlines go in FontFile2.
        if face.tables().glyf.is_none() {
            return Err(parse_error("no TrueType outlines (glyf table)".into()));
        }
        let upem = i32::from(face.units_per_em());
        let scale = |v: i32| v * 1000 / upem;
        let mut widths = [0u16; 256];
        let mut present = [false; 256];
        for code in 0u8..=255 {
            let Some(ch) = winansi_char(code) else {
                continue;
            };
            let Some(glyph) = face.glyph_index(ch) else {
                continue;
            };
            let advance = i32::from(face.glyph_hor_advance(glyph).unwrap_or(0));
            widths[usize::from(code)] = u16::try_from(scale(advance)).unwrap_or(u16::MAX);
            present[usize::from(code)] = true;
        }
        if !present[usize::from(b'a')] || !present[usize::from(b' ')] {
            return Err(parse_error("no glyphs for basic Latin letters".into()));
        }
        // The PostScript name is ASCII by specification; Macintosh-platform records hold it
        // as plain bytes, Unicode ones as UTF-16 (which `to_string` decodes).
        let name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == name_id::POST_SCRIPT_NAME)
            .find_map(|n| {
                n.to_string().or_else(|| {
                    n.name
                        .is_ascii()
                        .then(|| String::from_utf8_lossy(n.name).into_owned())
                })
            })
            .unwrap_or_else(|| "EmbeddedFont".to_owned());
        // A PDF name may not contain delimiters or spaces.
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
            .collect();
        let bb = face.global_bounding_box();
        let ascent = scale(i32::from(face.ascender()));
        let descent = scale(i32::from(face.descender()));
        let cap_height = face
            .capital_height()
            .map(|c| scale(i32::from(c)))
            .unwrap_or(ascent);
        let bbox = [
            scale(i32::from(bb.x_min)),
            scale(i32::from(bb.y_min)),
            scale(i32::from(bb.x_max)),
            scale(i32::from(bb.y_max)),
        ];
        Ok(PdfFont {
            name,
            data_len: data.len(),
            compressed: compress_to_vec_zlib(&data, 6),
            widths,
            present,
            ascent,
            descent,
            cap_height,
            bbox,
        })
    }

    /// The font's PostScript name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `text` as WinAnsi bytes, refusing characters the encoding or the font lacks.
    fn encode(&self, field: &str, text: &str) -> Result<Vec<u8>, DocumentError> {
        text.chars()
            .map(|ch| {
                // Line breaks and tabs never reach here from the layout; map stray ones to a
                // space rather than refusing a room name pasted with a trailing newline.
                let ch = if ch.is_whitespace() && ch != '\u{a0}' {
                    ' '
                } else {
                    ch
                };
                winansi_code(ch)
                    .filter(|code| self.present[usize::from(*code)])
                    .ok_or(DocumentError::Unprintable {
                        field: field.to_owned(),
                        ch,
                    })
            })
            .collect()
    }

    fn width(&self, bytes: &[u8], size: f32) -> f32 {
        bytes
            .iter()
            .map(|b| f32::from(self.widths[usize::from(*b)]))
            .sum::<f32>()
            * size
            / 1000.0
    }
}

/// The faces the poster uses; without a bold face, headings use the regular one.
#[derive(Debug, Clone)]
pub struct PosterFonts {
    /// Body text.
    pub regular: PdfFont,
    /// Title, statement, hours and headings.
    pub bold: Option<PdfFont>,
}

impl PosterFonts {
    /// DejaVu Sans from `fonts-dejavu-core`; the bold face is used when installed.
    pub fn dejavu() -> Result<PosterFonts, DocumentError> {
        Ok(PosterFonts {
            regular: PdfFont::load(DEJAVU_SANS)?,
            bold: PdfFont::load(DEJAVU_SANS_BOLD).ok(),
        })
    }

    fn get(&self, style: Style) -> &PdfFont {
        match style {
            Style::Regular => &self.regular,
            Style::Bold => self.bold.as_ref().unwrap_or(&self.regular),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Regular,
    Bold,
}

impl Style {
    fn resource(self) -> &'static str {
        match self {
            Style::Regular => "F1",
            Style::Bold => "F2",
        }
    }
}

type Rgb = (f32, f32, f32);
const INK: Rgb = (0.10, 0.10, 0.10);
const NAVY: Rgb = (0.122, 0.227, 0.373);
const WHITE: Rgb = (1.0, 1.0, 1.0);
const AMBER: Rgb = (0.878, 0.631, 0.0);
const CREAM: Rgb = (1.0, 0.957, 0.839);
const GREY: Rgb = (0.40, 0.40, 0.40);

/// Lays text out top to bottom, starting a new page when the current one is full.
struct Layout<'a> {
    fonts: &'a PosterFonts,
    pages: Vec<String>,
    ops: String,
    /// Baseline cursor, from the bottom of the page.
    y: f32,
    footer: Option<(String, String)>,
    /// Multiplies every size and gap, so a long schedule can shrink to fit one page.
    scale: f32,
}

impl<'a> Layout<'a> {
    fn new(fonts: &'a PosterFonts, scale: f32) -> Self {
        Layout {
            fonts,
            pages: Vec::new(),
            ops: String::new(),
            y: PAGE_H - MARGIN,
            footer: None,
            scale,
        }
    }

    fn finish_page(&mut self) -> Result<(), DocumentError> {
        if let Some((field, text)) = self.footer.clone() {
            let size = 8.5;
            for (i, line) in self
                .wrap(Style::Regular, &field, &text, size, PAGE_W - 2.0 * MARGIN)?
                .iter()
                .enumerate()
            {
                let y = MARGIN + 4.0 - i as f32 * size * 1.3;
                self.text(Style::Regular, size, GREY, MARGIN, y, line);
            }
        }
        self.pages.push(std::mem::take(&mut self.ops));
        self.y = PAGE_H - MARGIN;
        Ok(())
    }

    /// Makes room for `height` points below the cursor, turning the page if needed.
    fn need(&mut self, height: f32) -> Result<(), DocumentError> {
        if self.y - height < MARGIN + FOOTER_SPACE {
            self.finish_page()?;
        }
        Ok(())
    }

    fn fill_rect(&mut self, color: Rgb, x: f32, y: f32, w: f32, h: f32) {
        let _ = writeln!(
            self.ops,
            "{:.3} {:.3} {:.3} rg {x:.2} {y:.2} {w:.2} {h:.2} re f",
            color.0, color.1, color.2
        );
    }

    fn rule(&mut self, color: Rgb, x: f32, y: f32, w: f32, thickness: f32) {
        let _ = writeln!(
            self.ops,
            "{:.3} {:.3} {:.3} RG {thickness:.2} w {x:.2} {y:.2} m {:.2} {y:.2} l S",
            color.0,
            color.1,
            color.2,
            x + w
        );
    }

    /// Draws already-encoded bytes at a baseline position.
    fn text(&mut self, style: Style, size: f32, color: Rgb, x: f32, y: f32, bytes: &[u8]) {
        let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        let _ = writeln!(
            self.ops,
            "BT /{} {size:.2} Tf {:.3} {:.3} {:.3} rg 1 0 0 1 {x:.2} {y:.2} Tm <{hex}> Tj ET",
            style.resource(),
            color.0,
            color.1,
            color.2
        );
    }

    /// Greedy word wrap into lines no wider than `width`; each line comes back encoded.
    fn wrap(
        &self,
        style: Style,
        field: &str,
        text: &str,
        size: f32,
        width: f32,
    ) -> Result<Vec<Vec<u8>>, DocumentError> {
        let font = self.fonts.get(style);
        let space = font.width(b" ", size);
        let mut lines = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        let mut line_width = 0.0;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let encoded = font.encode(field, word)?;
            let w = font.width(&encoded, size);
            if !line.is_empty() && line_width + space + w > width {
                lines.push(std::mem::take(&mut line));
                line_width = 0.0;
            }
            if !line.is_empty() {
                line.push(b' ');
                line_width += space;
            }
            line.extend_from_slice(&encoded);
            line_width += w;
        }
        if !line.is_empty() {
            lines.push(line);
        }
        Ok(lines)
    }

    /// A wrapped paragraph at the cursor, with an optional bullet hanging in the margin.
    fn paragraph(
        &mut self,
        style: Style,
        field: &str,
        text: &str,
        size: f32,
        color: Rgb,
        bullet: bool,
    ) -> Result<(), DocumentError> {
        let size = size * self.scale;
        let indent = if bullet { 18.0 } else { 0.0 };
        let leading = size * 1.32;
        let lines = self.wrap(
            style,
            field,
            text,
            size,
            PAGE_W - 2.0 * MARGIN - indent - 6.0,
        )?;
        for (i, line) in lines.iter().enumerate() {
            self.need(leading)?;
            self.y -= leading;
            if bullet && i == 0 {
                self.fill_rect(
                    AMBER,
                    MARGIN + 5.0,
                    self.y + size * 0.28,
                    size * 0.32,
                    size * 0.32,
                );
            }
            self.text(style, size, color, MARGIN + indent, self.y, line);
        }
        Ok(())
    }

    fn heading(&mut self, text: &str) -> Result<(), DocumentError> {
        let k = self.scale;
        // Keep a heading with at least its first item.
        self.need((13.0 * 1.4 + 40.0) * k)?;
        self.y -= 12.0 * k;
        self.paragraph(Style::Bold, "heading", text, 13.0, NAVY, false)?;
        self.y -= 4.0 * k;
        self.rule(NAVY, MARGIN, self.y, PAGE_W - 2.0 * MARGIN, 1.0);
        self.y -= 2.0 * k;
        Ok(())
    }

    fn poster(&mut self, poster: &Poster) -> Result<(), DocumentError> {
        self.footer = Some(("footer".to_owned(), poster.footer.clone()));
        let content_w = PAGE_W - 2.0 * MARGIN;

        // Title band.
        let band_h = 92.0;
        let top = PAGE_H - MARGIN;
        self.fill_rect(NAVY, MARGIN, top - band_h, content_w, band_h);
        self.fill_rect(AMBER, MARGIN, top - band_h, 8.0, band_h);
        let title = self.fonts.get(Style::Bold).encode("title", &poster.title)?;
        self.text(Style::Bold, 28.0, WHITE, MARGIN + 26.0, top - 44.0, &title);
        let subtitle = self
            .fonts
            .get(Style::Regular)
            .encode("subtitle", &poster.subtitle)?;
        self.text(
            Style::Regular,
            15.0,
            WHITE,
            MARGIN + 26.0,
            top - 72.0,
            &subtitle,
        );
        let k = self.scale;
        self.y = top - band_h - 10.0 * k;

        self.paragraph(Style::Bold, "place", &poster.place, 13.0, INK, false)?;
        self.y -= 14.0 * k;

        // The policy statement in a tinted box with an amber bar, quoted as the school's text.
        let quoted = match poster.lang {
            crate::Lang::Fr => format!("«\u{a0}{}\u{a0}»", poster.statement),
            crate::Lang::En => format!("“{}”", poster.statement),
        };
        let size = 16.0 * k;
        let leading = size * 1.35;
        let pad = 14.0 * k;
        let lines = self.wrap(
            Style::Bold,
            "statement",
            &quoted,
            size,
            content_w - 2.0 * pad - 10.0,
        )?;
        let box_h = lines.len() as f32 * leading + 2.0 * pad - (leading - size);
        self.need(box_h + 8.0)?;
        self.fill_rect(CREAM, MARGIN, self.y - box_h, content_w, box_h);
        self.fill_rect(AMBER, MARGIN, self.y - box_h, 8.0, box_h);
        let mut baseline = self.y - pad - size * 0.8;
        for line in &lines {
            self.text(Style::Bold, size, INK, MARGIN + pad + 10.0, baseline, line);
            baseline -= leading;
        }
        self.y -= box_h + 6.0 * k;

        if let Some(heading) = &poster.hours_heading {
            self.heading(heading)?;
        }
        self.y -= 2.0 * k;
        for line in &poster.monitoring_hours {
            let line = keep_times_together(line);
            self.paragraph(Style::Bold, "schedule", &line, 15.0, INK, true)?;
            self.y -= 2.0 * k;
        }

        for section in &poster.sections {
            self.heading(&section.heading)?;
            for item in &section.items {
                let item = keep_times_together(item);
                self.paragraph(Style::Regular, "poster", &item, 11.0, INK, true)?;
                self.y -= 1.5 * k;
            }
        }
        self.finish_page()
    }
}

fn pdf_utf16_string(text: &str) -> String {
    // Document info strings: UTF-16BE with a byte-order mark, as hex, so any name is fine.
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

/// Collects numbered objects and writes the file with its cross-reference table.
struct PdfWriter {
    objects: Vec<Vec<u8>>,
}

impl PdfWriter {
    fn reserve(&mut self) -> usize {
        self.objects.push(Vec::new());
        self.objects.len()
    }

    fn set(&mut self, id: usize, body: Vec<u8>) {
        self.objects[id - 1] = body;
    }

    fn add(&mut self, body: Vec<u8>) -> usize {
        let id = self.reserve();
        self.set(id, body);
        id
    }

    fn stream(dict_extra: &str, data: &[u8]) -> Vec<u8> {
        PdfWriter::compressed_stream(dict_extra, &compress_to_vec_zlib(data, 6))
    }

    fn compressed_stream(dict_extra: &str, compressed: &[u8]) -> Vec<u8> {
        let mut body = format!(
            "<< /Length {} /Filter /FlateDecode{dict_extra} >>\nstream\n",
            compressed.len()
        )
        .into_bytes();
        body.extend_from_slice(compressed);
        body.extend_from_slice(b"\nendstream");
        body
    }

    fn finish(self, root: usize, info: usize) -> Vec<u8> {
        // The second line's high bytes tell transfer tools the file is binary.
        let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
        let mut offsets = Vec::with_capacity(self.objects.len());
        for (i, body) in self.objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", self.objects.len() + 1);
        for offset in offsets {
            let _ = writeln!(table, "{offset:010} 00000 n ");
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {} /Root {root} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            self.objects.len() + 1
        );
        out.extend_from_slice(table.as_bytes());
        out
    }
}

/// Embeds one font: dictionary, descriptor and font file. Returns the dictionary's id.
fn embed_font(writer: &mut PdfWriter, font: &PdfFont) -> usize {
    let file = writer.add(PdfWriter::compressed_stream(
        &format!(" /Length1 {}", font.data_len),
        &font.compressed,
    ));
    let descriptor = writer.add(
        format!(
            "<< /Type /FontDescriptor /FontName /{} /Flags 32 /FontBBox [{} {} {} {}] \
             /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV 80 /FontFile2 {file} 0 R >>",
            font.name,
            font.bbox[0],
            font.bbox[1],
            font.bbox[2],
            font.bbox[3],
            font.ascent,
            font.descent,
            font.cap_height
        )
        .into_bytes(),
    );
    let widths: Vec<String> = font.widths[32..].iter().map(|w| w.to_string()).collect();
    writer.add(
        format!(
            "<< /Type /Font /Subtype /TrueType /BaseFont /{} /FirstChar 32 /LastChar 255 \
             /Widths [{}] /Encoding /WinAnsiEncoding /FontDescriptor {descriptor} 0 R >>",
            font.name,
            widths.join(" ")
        )
        .into_bytes(),
    )
}

/// Renders each poster from the top of a new page and assembles the PDF file.
pub(super) fn render_posters(
    posters: &[Poster],
    fonts: &PosterFonts,
    room_name: &str,
) -> Result<Vec<u8>, DocumentError> {
    let mut pages = Vec::new();
    for poster in posters {
        // A notice is best on one sheet: shrink step by step (down to 70 %) until it fits;
        // a schedule too long even then continues on a second page rather than being cut.
        let mut scale = 1.0;
        loop {
            let mut layout = Layout::new(fonts, scale);
            layout.poster(poster)?;
            if layout.pages.len() == 1 || scale <= 0.7 {
                pages.extend(layout.pages);
                break;
            }
            scale -= 0.05;
        }
    }

    let mut writer = PdfWriter {
        objects: Vec::new(),
    };
    let catalog = writer.reserve();
    let pages_id = writer.reserve();
    let info = writer.add(
        format!(
            "<< /Title {} /Producer (Lanterne) /Creator (lanterne-privacy) >>",
            pdf_utf16_string(&format!("Information des usagers — {}", room_name.trim()))
        )
        .into_bytes(),
    );
    let regular = embed_font(&mut writer, &fonts.regular);
    let bold = match &fonts.bold {
        Some(font) => embed_font(&mut writer, font),
        None => regular,
    };
    let mut kids = Vec::new();
    for ops in &pages {
        let content = writer.add(PdfWriter::stream("", ops.as_bytes()));
        kids.push(writer.add(
            format!(
                "<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] \
                 /Resources << /Font << /F1 {regular} 0 R /F2 {bold} 0 R >> >> /Contents {content} 0 R >>"
            )
            .into_bytes(),
        ));
    }
    let kid_refs: Vec<String> = kids.iter().map(|k| format!("{k} 0 R")).collect();
    writer.set(
        pages_id,
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kid_refs.join(" "),
            kids.len()
        )
        .into_bytes(),
    );
    writer.set(
        catalog,
        format!("<< /Type /Catalog /Pages {pages_id} 0 R >>").into_bytes(),
    );
    Ok(writer.finish(catalog, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winansi_round_trips_french_letters() {
        for ch in "éèêëàâçîïôùûüÿœŒÉÀÇ«»’–—€ ".chars() {
            let code = winansi_code(ch).unwrap_or_else(|| panic!("{ch:?} has no code"));
            assert_eq!(winansi_char(code), Some(ch));
        }
        assert_eq!(winansi_code('ł'), None);
        assert_eq!(winansi_code('\u{81}'), None);
    }

    #[test]
    fn font_refuses_unencodable_text_naming_the_field() {
        let font = PdfFont::load(DEJAVU_SANS).expect("fonts-dejavu-core is installed");
        assert_eq!(font.name(), "DejaVuSans");
        assert_eq!(
            font.encode("room_name", "Salle é").unwrap(),
            b"Salle \xE9".to_vec()
        );
        let err = font.encode("room_name", "Salle 🙂").unwrap_err();
        assert!(
            matches!(&err, DocumentError::Unprintable { field, ch: '🙂' } if field == "room_name"),
            "{err}"
        );
        // Widths come from the font: 'W' is wider than 'i'.
        assert!(font.width(b"W", 10.0) > 2.0 * font.width(b"i", 10.0));
    }

    #[test]
    fn not_a_font_is_refused() {
        let err = PdfFont::from_bytes(b"not a font".to_vec(), "bogus.ttf").unwrap_err();
        assert!(err.to_string().contains("bogus.ttf"), "{err}");
        let err = PdfFont::load("/nonexistent/font.ttf").unwrap_err();
        assert!(matches!(err, DocumentError::FontRead { .. }));
    }
}
