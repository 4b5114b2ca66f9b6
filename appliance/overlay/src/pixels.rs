//! Turning our RGB canvas into the bytes a ZPixmap `PutImage` expects for the screen's
//! visual: channel masks, bits per pixel, scanline padding and the server's byte order all
//! vary between servers (depth 24 in 32-bit words is common, 16-bit 565 and big-endian
//! servers exist), so they are read from the connection setup instead of assumed.

use x11rb::protocol::xproto::{ImageOrder, Setup, VisualClass};

use crate::text::Canvas;
use crate::OverlayError;

/// How pixels of one visual are laid out in a ZPixmap image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelFormat {
    pub depth: u8,
    pub bits_per_pixel: u8,
    pub scanline_pad: u8,
    pub red_mask: u32,
    pub green_mask: u32,
    pub blue_mask: u32,
    pub msb_first: bool,
}

impl PixelFormat {
    /// The format of `screen`'s root visual. Only TrueColor/DirectColor visuals with 16, 24
    /// or 32 bits per pixel are supported; a palette visual would need colour allocation
    /// and is refused with an error rather than drawn wrong.
    pub fn for_root_visual(setup: &Setup, screen: usize) -> Result<PixelFormat, OverlayError> {
        let s = setup
            .roots
            .get(screen)
            .ok_or_else(|| OverlayError::UnsupportedVisual(format!("no screen {screen}")))?;
        let visual = s
            .allowed_depths
            .iter()
            .filter(|d| d.depth == s.root_depth)
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == s.root_visual)
            .ok_or_else(|| {
                OverlayError::UnsupportedVisual("root visual not listed in setup".into())
            })?;
        if visual.class != VisualClass::TRUE_COLOR && visual.class != VisualClass::DIRECT_COLOR {
            return Err(OverlayError::UnsupportedVisual(format!(
                "root visual class {:?} (only TrueColor/DirectColor)",
                visual.class
            )));
        }
        let format = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == s.root_depth)
            .ok_or_else(|| {
                OverlayError::UnsupportedVisual(format!(
                    "no pixmap format for depth {}",
                    s.root_depth
                ))
            })?;
        let pf = PixelFormat {
            depth: s.root_depth,
            bits_per_pixel: format.bits_per_pixel,
            scanline_pad: format.scanline_pad,
            red_mask: visual.red_mask,
            green_mask: visual.green_mask,
            blue_mask: visual.blue_mask,
            msb_first: setup.image_byte_order == ImageOrder::MSB_FIRST,
        };
        pf.validate()?;
        Ok(pf)
    }

    fn validate(&self) -> Result<(), OverlayError> {
        if !matches!(self.bits_per_pixel, 16 | 24 | 32) {
            return Err(OverlayError::UnsupportedVisual(format!(
                "{} bits per pixel",
                self.bits_per_pixel
            )));
        }
        if self.red_mask == 0 || self.green_mask == 0 || self.blue_mask == 0 {
            return Err(OverlayError::UnsupportedVisual("empty colour mask".into()));
        }
        if !matches!(self.scanline_pad, 8 | 16 | 32) {
            return Err(OverlayError::UnsupportedVisual(format!(
                "scanline pad {}",
                self.scanline_pad
            )));
        }
        Ok(())
    }

    /// The pixel value of an RGB colour (also what `background_pixel` takes).
    pub fn pixel(&self, rgb: crate::theme::Rgb) -> u32 {
        channel(rgb.0, self.red_mask)
            | channel(rgb.1, self.green_mask)
            | channel(rgb.2, self.blue_mask)
    }

    /// Bytes per image row including the scanline padding.
    pub fn stride(&self, width: u32) -> usize {
        let bits = width as usize * self.bits_per_pixel as usize;
        let pad = self.scanline_pad as usize;
        bits.div_ceil(pad) * pad / 8
    }

    /// Rows `first..first + rows` of `canvas` as ZPixmap data.
    pub fn encode_rows(&self, canvas: &Canvas, first: u32, rows: u32) -> Vec<u8> {
        let stride = self.stride(canvas.width);
        let bytes_pp = self.bits_per_pixel as usize / 8;
        let mut out = vec![0u8; stride * rows as usize];
        for row in 0..rows {
            let y = first + row;
            let line = &mut out[row as usize * stride..][..stride];
            for x in 0..canvas.width {
                let value = self.pixel(canvas.get(x, y));
                let dst = &mut line[x as usize * bytes_pp..][..bytes_pp];
                if self.msb_first {
                    let be = value.to_be_bytes();
                    dst.copy_from_slice(&be[4 - bytes_pp..]);
                } else {
                    dst.copy_from_slice(&value.to_le_bytes()[..bytes_pp]);
                }
            }
        }
        out
    }
}

/// Scales an 8-bit channel into the bits of `mask` (which may be narrower, as in 565).
fn channel(value: u8, mask: u32) -> u32 {
    let shift = mask.trailing_zeros();
    let bits = (mask >> shift).count_ones();
    let v = if bits >= 8 {
        (value as u32) << (bits - 8)
    } else {
        value as u32 >> (8 - bits)
    };
    (v << shift) & mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theme::Rgb;

    fn rgb888(msb_first: bool) -> PixelFormat {
        PixelFormat {
            depth: 24,
            bits_per_pixel: 32,
            scanline_pad: 32,
            red_mask: 0xff0000,
            green_mask: 0x00ff00,
            blue_mask: 0x0000ff,
            msb_first,
        }
    }

    #[test]
    fn depth24_little_endian_is_bgrx() {
        let mut c = Canvas::new(2, 1, Rgb(0x11, 0x22, 0x33));
        c.pixels[1] = Rgb(0xaa, 0xbb, 0xcc).word();
        let data = rgb888(false).encode_rows(&c, 0, 1);
        assert_eq!(data, vec![0x33, 0x22, 0x11, 0, 0xcc, 0xbb, 0xaa, 0]);
    }

    #[test]
    fn depth24_big_endian_is_xrgb() {
        let c = Canvas::new(1, 1, Rgb(0x11, 0x22, 0x33));
        assert_eq!(
            rgb888(true).encode_rows(&c, 0, 1),
            vec![0, 0x11, 0x22, 0x33]
        );
    }

    #[test]
    fn rgb565_packs_and_pads_rows() {
        let pf = PixelFormat {
            depth: 16,
            bits_per_pixel: 16,
            scanline_pad: 32,
            red_mask: 0xf800,
            green_mask: 0x07e0,
            blue_mask: 0x001f,
            msb_first: false,
        };
        let c = Canvas::new(3, 2, Rgb(0xff, 0x00, 0xff));
        let data = pf.encode_rows(&c, 0, 2);
        // 3 pixels × 2 bytes = 6, padded to 8 per row.
        assert_eq!(pf.stride(3), 8);
        assert_eq!(data.len(), 16);
        assert_eq!(&data[..2], &0xf81fu16.to_le_bytes());
        assert_eq!(&data[6..8], &[0, 0]);
    }

    #[test]
    fn thirty_bit_masks_scale_up() {
        assert_eq!(channel(0xff, 0x3ff0_0000), 0x3fc0_0000);
        assert_eq!(channel(0x80, 0x0000_00ff), 0x80);
    }
}
