//! Pictures between GDI and the encoder: a BGRA desktop scaled (area average) to a stream's
//! size and converted to I420 (BT.601 limited range, what decoders assume for H.264 without
//! colour information).

/// An I420 picture: full-size luma, then the two chroma planes at half size, no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl I420 {
    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let y = self.width * self.height;
        let c = (self.width / 2) * (self.height / 2);
        (
            &self.data[..y],
            &self.data[y..y + c],
            &self.data[y + c..y + 2 * c],
        )
    }
}

/// Averages the source pixels that fall into each output pixel: the `src_w` × `src_h` BGRA
/// picture `bgra` (4 bytes a pixel, rows packed) to `width` × `height` RGB.
fn scale_rgb(
    bgra: &[u8],
    src_w: usize,
    src_h: usize,
    width: usize,
    height: usize,
) -> Vec<[u32; 3]> {
    let mut out = Vec::with_capacity(width * height);
    for oy in 0..height {
        let y0 = oy * src_h / height;
        let y1 = ((oy + 1) * src_h / height).max(y0 + 1).min(src_h);
        for ox in 0..width {
            let x0 = ox * src_w / width;
            let x1 = ((ox + 1) * src_w / width).max(x0 + 1).min(src_w);
            let mut sum = [0u32; 3];
            for y in y0..y1 {
                let row = &bgra[(y * src_w + x0) * 4..(y * src_w + x1) * 4];
                for p in row.chunks_exact(4) {
                    sum[0] += u32::from(p[2]);
                    sum[1] += u32::from(p[1]);
                    sum[2] += u32::from(p[0]);
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            out.push([sum[0] / n, sum[1] / n, sum[2] / n]);
        }
    }
    out
}

fn luma(p: [u32; 3]) -> u8 {
    let [r, g, b] = p.map(|v| v as i32);
    ((66 * r + 129 * g + 25 * b + 128) / 256 + 16).clamp(0, 255) as u8
}

fn chroma(p: [i32; 3]) -> (u8, u8) {
    let [r, g, b] = p;
    let u = (-38 * r - 74 * g + 112 * b + 128) / 256 + 128;
    let v = (112 * r - 94 * g - 18 * b + 128) / 256 + 128;
    (u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

/// The BGRA picture scaled to `width` × `height` (both even, non-zero) as I420. None when the
/// source is empty or its buffer is not `src_w` × `src_h` × 4 bytes.
pub fn bgra_to_i420(
    bgra: &[u8],
    src_w: usize,
    src_h: usize,
    width: usize,
    height: usize,
) -> Option<I420> {
    if src_w == 0
        || src_h == 0
        || bgra.len() != src_w * src_h * 4
        || width == 0
        || height == 0
        || width % 2 != 0
        || height % 2 != 0
    {
        return None;
    }
    let rgb = scale_rgb(bgra, src_w, src_h, width, height);
    let (cw, ch) = (width / 2, height / 2);
    let mut data = vec![0u8; width * height + 2 * cw * ch];
    let (y_plane, rest) = data.split_at_mut(width * height);
    let (u_plane, v_plane) = rest.split_at_mut(cw * ch);
    for (y, p) in y_plane.iter_mut().zip(&rgb) {
        *y = luma(*p);
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let mut sum = [0i32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = rgb[(2 * cy + dy) * width + 2 * cx + dx];
                for c in 0..3 {
                    sum[c] += p[c] as i32;
                }
            }
            let (u, v) = chroma(sum.map(|s| s / 4));
            u_plane[cy * cw + cx] = u;
            v_plane[cy * cw + cx] = v;
        }
    }
    Some(I420 {
        width,
        height,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
        std::iter::repeat_n([rgb[2], rgb[1], rgb[0], 255], w * h)
            .flatten()
            .collect()
    }

    #[test]
    fn a_flat_colour_keeps_its_studio_range_values_at_any_size() {
        // White and black at the limits of the studio range; a mid colour at its BT.601 values.
        for (rgb, yuv) in [
            ([255, 255, 255], (235, 128, 128)),
            ([0, 0, 0], (16, 128, 128)),
            ([200, 40, 40], (92, 105, 198)),
        ] {
            let pic = bgra_to_i420(&flat(64, 36, rgb), 64, 36, 32, 18).unwrap();
            let (y, u, v) = pic.planes();
            assert!(y.iter().all(|&p| p == yuv.0), "{rgb:?} Y {}", y[0]);
            assert!(u.iter().all(|&p| p == yuv.1), "{rgb:?} U {}", u[0]);
            assert!(v.iter().all(|&p| p == yuv.2), "{rgb:?} V {}", v[0]);
        }
    }

    #[test]
    fn scaling_averages_each_output_pixels_area() {
        // Left half white, right half black, halved: the output splits at the same place.
        let mut src = flat(8, 4, [0, 0, 0]);
        for y in 0..4 {
            for x in 0..4 {
                src[(y * 8 + x) * 4..(y * 8 + x) * 4 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let pic = bgra_to_i420(&src, 8, 4, 4, 2).unwrap();
        assert_eq!(&pic.planes().0[..4], &[235, 235, 16, 16]);
        // Down to 2×2, each output pixel is the mean of a 4×2 area: all white, all black.
        let pic = bgra_to_i420(&src, 8, 4, 2, 2).unwrap();
        assert_eq!(pic.planes().0, &[235, 16, 235, 16]);
        // A white column a quarter wide averages to grey in the first output pixel only.
        let mut src = flat(8, 4, [0, 0, 0]);
        for y in 0..4 {
            for x in 0..2 {
                src[(y * 8 + x) * 4..(y * 8 + x) * 4 + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let pic = bgra_to_i420(&src, 8, 4, 2, 2).unwrap();
        let y = pic.planes().0;
        assert!((100..150).contains(&y[0]), "{}", y[0]);
        assert_eq!(y[1], 16);
    }

    #[test]
    fn odd_sizes_and_short_buffers_are_refused() {
        assert!(bgra_to_i420(&flat(8, 4, [1, 2, 3]), 8, 4, 3, 2).is_none());
        assert!(bgra_to_i420(&flat(8, 4, [1, 2, 3])[..100], 8, 4, 4, 2).is_none());
        assert!(bgra_to_i420(&[], 0, 0, 4, 2).is_none());
    }
}
