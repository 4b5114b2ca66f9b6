//! Consistent Overhead Byte Stuffing: removes every 0x00 from a frame so that 0x00 can
//! delimit frames on the serial line. A receiver that starts mid-stream, or that sees line
//! noise, discards bytes up to the next 0x00 and is back in step.
//!
//! Both directions work on caller-provided slices and never allocate, so the firmware and the
//! box share this code and its bounds.

use thiserror::Error;

/// Why COBS encoding or decoding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CobsError {
    /// The output slice cannot hold the result.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// A 0x00 byte inside an encoded frame (the delimiter must have been stripped).
    #[error("zero byte inside an encoded frame")]
    ZeroByte,
    /// A block code points past the end of the frame.
    #[error("block runs past the end of the frame")]
    Truncated,
}

/// Worst-case encoded size of `n` raw bytes (one code byte per started 254-byte block).
pub const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// Encodes `src` into `dst` (without the trailing 0x00 delimiter); returns the encoded length.
pub fn encode(src: &[u8], dst: &mut [u8]) -> Result<usize, CobsError> {
    if dst.len() < max_encoded_len(src.len()) {
        return Err(CobsError::BufferTooSmall);
    }
    // `code_at` is where the current block's code byte goes once we know the block length.
    let mut code_at = 0;
    let mut out = 1;
    let mut code: u8 = 1;
    for &byte in src {
        if byte == 0 {
            dst[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
        } else {
            dst[out] = byte;
            out += 1;
            code += 1;
            if code == 0xFF {
                // A full block of 254 non-zero bytes carries no implicit zero.
                dst[code_at] = code;
                code_at = out;
                out += 1;
                code = 1;
            }
        }
    }
    dst[code_at] = code;
    Ok(out)
}

/// Decodes one frame (delimiter already stripped) from `src` into `dst`; returns the length.
pub fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, CobsError> {
    let mut i = 0;
    let mut out = 0;
    while i < src.len() {
        let code = src[i];
        if code == 0 {
            return Err(CobsError::ZeroByte);
        }
        i += 1;
        let run = usize::from(code) - 1;
        let block = src.get(i..i + run).ok_or(CobsError::Truncated)?;
        if block.contains(&0) {
            return Err(CobsError::ZeroByte);
        }
        dst.get_mut(out..out + run)
            .ok_or(CobsError::BufferTooSmall)?
            .copy_from_slice(block);
        out += run;
        i += run;
        // Every block except a full one and the last stands for "these bytes, then a zero".
        if code != 0xFF && i < src.len() {
            *dst.get_mut(out).ok_or(CobsError::BufferTooSmall)? = 0;
            out += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &[u8]) {
        let mut enc = [0u8; 700];
        let n = encode(raw, &mut enc).unwrap();
        assert!(n <= max_encoded_len(raw.len()));
        assert!(!enc[..n].contains(&0), "encoded frame contains a delimiter");
        let mut dec = [0u8; 600];
        let m = decode(&enc[..n], &mut dec).unwrap();
        assert_eq!(&dec[..m], raw);
    }

    #[test]
    fn known_vectors() {
        let mut enc = [0u8; 16];
        let n = encode(&[0x11, 0x22, 0x00, 0x33], &mut enc).unwrap();
        assert_eq!(&enc[..n], &[0x03, 0x11, 0x22, 0x02, 0x33]);
        let n = encode(&[0x00], &mut enc).unwrap();
        assert_eq!(&enc[..n], &[0x01, 0x01]);
        let n = encode(&[], &mut enc).unwrap();
        assert_eq!(&enc[..n], &[0x01]);
    }

    #[test]
    fn round_trips_including_block_boundaries() {
        let mut data = [0u8; 600];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i % 251) as u8 + 1;
        }
        for len in [0, 1, 2, 253, 254, 255, 508, 509, 600] {
            round_trip(&data[..len]);
        }
        data[254] = 0;
        data[0] = 0;
        for len in [1, 254, 255, 256, 600] {
            round_trip(&data[..len]);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let mut dst = [0u8; 8];
        assert_eq!(decode(&[0x05, 1, 2], &mut dst), Err(CobsError::Truncated));
        assert_eq!(decode(&[0x02, 0x00], &mut dst), Err(CobsError::ZeroByte));
        assert_eq!(decode(&[0x03, 1, 0], &mut dst), Err(CobsError::ZeroByte));
        assert_eq!(
            decode(&[0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9], &mut dst),
            Err(CobsError::BufferTooSmall)
        );
        assert_eq!(
            encode(&[1, 2, 3], &mut dst[..3]),
            Err(CobsError::BufferTooSmall)
        );
    }
}
