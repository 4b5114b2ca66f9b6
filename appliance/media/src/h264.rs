//! Just enough H.264 bitstream reading for the box and the tests: splitting an Annex B access
//! unit into NAL units and reading the three profile/level bytes of an SPS.

/// NAL unit types this crate cares about.
#[cfg(test)]
pub(crate) const NAL_IDR: u8 = 5;
pub(crate) const NAL_SPS: u8 = 7;
#[cfg(test)]
pub(crate) const NAL_PPS: u8 = 8;

/// Iterates over the NAL units (without start codes) of an Annex B byte stream.
pub(crate) fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = next_start(data, 0).map(|(_, payload)| payload);
    std::iter::from_fn(move || {
        let start = pos?;
        let (end, next) = match next_start(data, start) {
            Some((code_at, payload)) => (code_at, Some(payload)),
            None => (data.len(), None),
        };
        pos = next;
        // Trailing zero bytes belong to the next start code (or are padding), not the NAL.
        let mut end = end;
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        Some(&data[start..end])
    })
    .filter(|nal| !nal.is_empty())
}

/// Finds the next `00 00 01` at or after `from`: (index of the code, index of the payload).
fn next_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        }
        i += 1;
    }
    None
}

/// The NAL unit types of an access unit, in order.
#[cfg(test)]
pub(crate) fn nal_types(au: &[u8]) -> Vec<u8> {
    nal_units(au).map(|n| n[0] & 0x1f).collect()
}

/// The WebCodecs codec string (`avc1.PPCCLL`, RFC 6381) for the SPS of an Annex B access
/// unit, or for a bare SPS NAL unit. `None` when there is no SPS or it is too short.
pub fn codec_string(au_or_sps: &[u8]) -> Option<String> {
    let sps = nal_units(au_or_sps)
        .find(|n| n[0] & 0x1f == NAL_SPS)
        .or_else(|| {
            // A bare SPS without a start code.
            (au_or_sps.first().map(|b| b & 0x1f) == Some(NAL_SPS)).then_some(au_or_sps)
        })?;
    // profile_idc, constraint flags and level_idc are the three bytes after the NAL header;
    // drop emulation-prevention bytes first so a `00 00 03` cannot shift them.
    let mut rbsp = Vec::with_capacity(3);
    let mut zeros = 0;
    for &b in &sps[1..] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
        if rbsp.len() == 3 {
            break;
        }
    }
    if rbsp.len() < 3 || rbsp[0] == 0 || rbsp[2] == 0 {
        return None;
    }
    Some(format!(
        "avc1.{:02x}{:02x}{:02x}",
        rbsp[0], rbsp[1], rbsp[2]
    ))
}

/// True when an access unit holds an IDR slice preceded by an SPS and a PPS.
#[cfg(test)]
pub(crate) fn idr_with_parameter_sets(au: &[u8]) -> bool {
    let types = nal_types(au);
    let idr = types.iter().position(|&t| t == NAL_IDR);
    let sps = types.iter().position(|&t| t == NAL_SPS);
    let pps = types.iter().position(|&t| t == NAL_PPS);
    matches!((idr, sps, pps), (Some(i), Some(s), Some(p)) if s < i && p < i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units_with_three_and_four_byte_start_codes() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5,
        ];
        let nals: Vec<&[u8]> = nal_units(&au).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
        assert_eq!(nal_types(&au), vec![7, 8, 5]);
        assert!(idr_with_parameter_sets(&au));
        assert!(!idr_with_parameter_sets(&[0, 0, 1, 0x65, 1]));
    }

    #[test]
    fn codec_string_from_bare_and_annex_b_sps() {
        // Constrained baseline (66, constraint 0xc0) level 3.1.
        assert_eq!(
            codec_string(&[0x67, 0x42, 0xc0, 0x1f, 0xda]).as_deref(),
            Some("avc1.42c01f")
        );
        assert_eq!(
            codec_string(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac])
                .as_deref(),
            Some("avc1.640028")
        );
        // Level 0 does not exist: a corrupt SPS gives no string rather than a wrong one.
        assert_eq!(codec_string(&[0x67, 0x42, 0x00, 0x00, 0x03, 0x01]), None);
        assert_eq!(codec_string(&[0, 0, 1, 0x65, 1, 2, 3]), None);
        assert_eq!(codec_string(&[0, 0, 1, 0x67, 0x42]), None);
        assert_eq!(codec_string(&[]), None);
    }
}
