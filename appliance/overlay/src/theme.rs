//! Colours and proportions of everything the overlay draws, in one place so the look can be
//! tuned (and tests can find the overlay on a screenshot) without touching the X code.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `0x00RRGGBB`.
    pub const fn word(self) -> u32 {
        ((self.0 as u32) << 16) | ((self.1 as u32) << 8) | self.2 as u32
    }

    pub const fn from_word(w: u32) -> Rgb {
        Rgb((w >> 16) as u8, (w >> 8) as u8, w as u8)
    }

    /// `self` covered by `top` with opacity `alpha` (0..=1).
    pub fn mix(self, top: Rgb, alpha: f32) -> Rgb {
        let m = |a: u8, b: u8| (a as f32 + (b as f32 - a as f32) * alpha).round() as u8;
        Rgb(m(self.0, top.0), m(self.1, top.1), m(self.2, top.2))
    }

    /// Perceived brightness 0..=255 (Rec. 601 weights), used by tests to find text.
    pub fn luma(self) -> u8 {
        ((self.0 as u32 * 299 + self.1 as u32 * 587 + self.2 as u32 * 114) / 1000) as u8
    }
}

/// Lock screen: a deep night blue rather than pure black, so a locked screen is obviously
/// "Lanterne" and not a crashed or sleeping PC.
pub const LOCK_BACKGROUND: Rgb = Rgb(0x0b, 0x14, 0x26);
pub const LOCK_TEXT: Rgb = Rgb(0xf5, 0xf7, 0xfa);
/// The lantern's amber, for the padlock pictogram.
pub const LOCK_ICON: Rgb = Rgb(0xf5, 0xb0, 0x2e);
pub const LOCK_FOOTER: Rgb = Rgb(0x8a, 0x96, 0xab);

pub const MESSAGE_BACKGROUND: Rgb = Rgb(0xff, 0xff, 0xff);
pub const MESSAGE_BORDER: Rgb = Rgb(0x9a, 0xa4, 0xb5);
pub const MESSAGE_ACCENT: Rgb = Rgb(0x1d, 0x4e, 0xd8);
pub const MESSAGE_TITLE: Rgb = Rgb(0x0b, 0x14, 0x26);
pub const MESSAGE_TEXT: Rgb = Rgb(0x1f, 0x29, 0x37);
/// The OK button's fill; tests look for it on screenshots to click it.
pub const MESSAGE_BUTTON: Rgb = Rgb(0x25, 0x63, 0xeb);
pub const MESSAGE_BUTTON_TEXT: Rgb = Rgb(0xff, 0xff, 0xff);

pub const BADGE_BACKGROUND: Rgb = Rgb(0xb9, 0x1c, 0x1c);
pub const BADGE_TEXT: Rgb = Rgb(0xff, 0xff, 0xff);

/// Remote help: the consent prompt's buttons. "Accepter" is green, "Refuser" a neutral grey of
/// the same size: neither is the "default" a student clicks without reading.
pub const CONSENT_ACCEPT: Rgb = Rgb(0x15, 0x80, 0x3d);
pub const CONSENT_REFUSE: Rgb = Rgb(0x4b, 0x55, 0x63);
/// The banner shown for as long as someone controls the station: a warm dark orange that
/// reads as "something unusual is happening", with a light "Arrêter" button.
pub const HELP_BANNER_BACKGROUND: Rgb = Rgb(0x9a, 0x34, 0x12);
pub const HELP_BANNER_TEXT: Rgb = Rgb(0xff, 0xff, 0xff);
pub const HELP_STOP_BUTTON: Rgb = Rgb(0xff, 0xed, 0xd5);
pub const HELP_STOP_TEXT: Rgb = Rgb(0x9a, 0x34, 0x12);
/// The banner of a student whose screen is shown to the class.
pub const CLASS_BANNER_BACKGROUND: Rgb = Rgb(0x1d, 0x4e, 0xd8);
pub const CLASS_BANNER_TEXT: Rgb = Rgb(0xff, 0xff, 0xff);
