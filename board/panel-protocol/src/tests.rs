//! Host tests for framing: round trips, bounds, and recovery from every kind of bad input.

extern crate std;

use std::vec::Vec;

use super::*;

fn box_messages() -> [BoxToPanel; 8] {
    [
        BoxToPanel::SetLeds {
            lock: LedPattern::Steady,
            status: LedPattern::Off,
        },
        BoxToPanel::SetLeds {
            lock: LedPattern::Blink {
                on_ms: u16::MAX,
                off_ms: u16::MAX,
            },
            status: LedPattern::Blink {
                on_ms: u16::MAX,
                off_ms: u16::MAX,
            },
        },
        BoxToPanel::SetLeds {
            lock: LedPattern::Breathe { period_ms: 3000 },
            status: LedPattern::Fault,
        },
        BoxToPanel::Heartbeat { seq: 0 },
        BoxToPanel::Heartbeat { seq: u16::MAX },
        BoxToPanel::Identify { duration_ms: 5000 },
        BoxToPanel::Identify {
            duration_ms: u16::MAX,
        },
        BoxToPanel::QueryVersion,
    ]
}

fn panel_messages() -> [PanelToBox; 7] {
    [
        PanelToBox::Hello {
            protocol: PROTOCOL_VERSION,
            firmware: FirmwareVersion {
                major: u8::MAX,
                minor: u8::MAX,
                patch: u8::MAX,
            },
        },
        PanelToBox::ButtonPressed,
        PanelToBox::ButtonLongPressed,
        PanelToBox::HeartbeatReply { seq: u16::MAX },
        PanelToBox::Fault {
            code: FaultCode::HeartbeatLost,
            count: 1,
        },
        PanelToBox::Fault {
            code: FaultCode::BadFrames,
            count: u16::MAX,
        },
        PanelToBox::Fault {
            code: FaultCode::WatchdogReset,
            count: 0,
        },
    ]
}

fn decode_all<M: Message>(dec: &mut FrameDecoder<M>, bytes: &[u8]) -> Vec<Result<M, DecodeError>> {
    dec.feed(bytes).collect()
}

#[test]
fn every_message_round_trips_and_fits_the_bounds() {
    for msg in box_messages() {
        let frame = encode(&msg).unwrap();
        assert!(frame.len() <= MAX_FRAME_LEN);
        assert_eq!(*frame.last().unwrap(), DELIMITER);
        assert!(!frame[..frame.len() - 1].contains(&DELIMITER));
        let mut dec = FrameDecoder::<BoxToPanel>::new();
        assert_eq!(decode_all(&mut dec, &frame), [Ok(msg)]);
        let mut body = [0u8; 64];
        assert!(postcard::to_slice(&msg, &mut body).unwrap().len() <= MAX_MESSAGE_LEN);
    }
    for msg in panel_messages() {
        let frame = encode(&msg).unwrap();
        assert!(frame.len() <= MAX_FRAME_LEN);
        let mut dec = FrameDecoder::<PanelToBox>::new();
        assert_eq!(decode_all(&mut dec, &frame), [Ok(msg)]);
    }
}

#[test]
fn frames_split_across_reads_and_batched_in_one_read() {
    let mut stream = Vec::new();
    for msg in box_messages() {
        stream.extend_from_slice(&encode(&msg).unwrap());
    }
    // One byte at a time.
    let mut dec = FrameDecoder::<BoxToPanel>::new();
    let mut got = Vec::new();
    for &b in &stream {
        if let Some(item) = dec.push(b) {
            got.push(item.unwrap());
        }
    }
    assert_eq!(got, box_messages());
    // All at once.
    let got: Vec<_> = decode_all(&mut dec, &stream)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, box_messages());
    assert_eq!(dec.pending(), 0);
}

#[test]
fn repeated_delimiters_are_silent() {
    let mut dec = FrameDecoder::<PanelToBox>::new();
    assert!(decode_all(&mut dec, &[0, 0, 0, 0]).is_empty());
}

#[test]
fn truncated_frame_is_rejected_and_the_next_frame_decodes() {
    let good = encode(&BoxToPanel::Heartbeat { seq: 7 }).unwrap();
    let full = encode(&BoxToPanel::SetLeds {
        lock: LedPattern::Steady,
        status: LedPattern::Breathe { period_ms: 2000 },
    })
    .unwrap();
    for cut in 1..full.len() - 1 {
        let mut stream = Vec::from(&full[..cut]);
        stream.push(DELIMITER);
        stream.extend_from_slice(&good);
        let mut dec = FrameDecoder::<BoxToPanel>::new();
        let got = decode_all(&mut dec, &stream);
        assert_eq!(got.len(), 2, "cut at {cut}");
        assert!(got[0].is_err(), "truncated frame accepted (cut at {cut})");
        assert_eq!(got[1], Ok(BoxToPanel::Heartbeat { seq: 7 }));
    }
}

#[test]
fn oversized_frame_is_rejected_without_growing_and_the_decoder_resyncs() {
    let mut dec = FrameDecoder::<PanelToBox>::new();
    let junk = [0x55u8; 10 * MAX_FRAME_LEN];
    assert!(decode_all(&mut dec, &junk).is_empty());
    assert!(dec.pending() <= MAX_FRAME_LEN);
    let mut stream = Vec::from([DELIMITER]);
    stream.extend_from_slice(&encode(&PanelToBox::ButtonPressed).unwrap());
    assert_eq!(
        decode_all(&mut dec, &stream),
        [Err(DecodeError::Oversized), Ok(PanelToBox::ButtonPressed)]
    );
    // A frame exactly one byte over the limit is still refused.
    assert_eq!(
        decode_frame::<PanelToBox>(&[0x01; MAX_FRAME_LEN]),
        Err(DecodeError::Oversized)
    );
}

#[test]
fn wrong_version_direction_and_crc_are_named() {
    let frame = encode(&PanelToBox::ButtonLongPressed).unwrap();
    let body = &frame[..frame.len() - 1];
    let mut raw = [0u8; MAX_FRAME_LEN];
    let n = cobs::decode(body, &mut raw).unwrap();

    let reframe = |raw: &[u8]| {
        let mut out = [0u8; MAX_FRAME_LEN];
        let m = cobs::encode(raw, &mut out).unwrap();
        Vec::from(&out[..m])
    };

    let mut bad_version = Vec::from(&raw[..n]);
    bad_version[0] = 2;
    assert_eq!(
        decode_frame::<PanelToBox>(&reframe(&bad_version)),
        Err(DecodeError::UnsupportedVersion(2))
    );

    // The box's own command read back on the box side (tty echo): refused.
    assert_eq!(
        decode_frame::<BoxToPanel>(body),
        Err(DecodeError::WrongDirection)
    );

    let mut bad_crc = Vec::from(&raw[..n]);
    bad_crc[n - 1] ^= 0x40;
    assert_eq!(
        decode_frame::<PanelToBox>(&reframe(&bad_crc)),
        Err(DecodeError::Crc)
    );

    // Valid CRC over a body postcard cannot parse: an unknown variant index.
    let mut unknown = Vec::from(&raw[..2]);
    unknown.push(0x7F);
    let crc = CRC16.checksum(&unknown).to_le_bytes();
    unknown.extend_from_slice(&crc);
    assert_eq!(
        decode_frame::<PanelToBox>(&reframe(&unknown)),
        Err(DecodeError::Malformed)
    );

    // Trailing bytes after a complete message are refused too.
    let mut trailing = Vec::from(&raw[..n - 2]);
    trailing.push(0x01);
    let crc = CRC16.checksum(&trailing).to_le_bytes();
    trailing.extend_from_slice(&crc);
    assert_eq!(
        decode_frame::<PanelToBox>(&reframe(&trailing)),
        Err(DecodeError::Malformed)
    );

    assert_eq!(
        decode_frame::<PanelToBox>(&reframe(&raw[..3])),
        Err(DecodeError::TooShort)
    );
}

#[test]
fn every_single_bit_flip_is_detected() {
    for msg in panel_messages() {
        let frame = encode(&msg).unwrap();
        let body = &frame[..frame.len() - 1];
        for i in 0..body.len() {
            for bit in 0..8 {
                let mut bad = Vec::from(body);
                bad[i] ^= 1 << bit;
                assert!(
                    decode_frame::<PanelToBox>(&bad).is_err(),
                    "flip of bit {bit} in byte {i} of {msg:?} went unnoticed"
                );
            }
        }
    }
}

/// xorshift64*: deterministic, so a failure reproduces from the printed case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The stable-toolchain stand-in for the fuzz target: thousands of random byte strings, some
/// pure noise, some valid frames with bytes damaged, some with delimiters sprinkled in. The
/// decoder must never panic or hold more than a frame, and a good frame sent after the noise
/// (behind one delimiter) must always come through.
#[test]
fn random_garbage_never_panics_and_never_blocks_the_next_frame() {
    let mut rng = Rng(0x4C41_4E54_4552_4E45);
    let marker = PanelToBox::HeartbeatReply { seq: 0xBEEF };
    let marker_frame = encode(&marker).unwrap();
    let samples = panel_messages();
    let mut accepted_noise = 0;
    for case in 0..5000 {
        let mut noise = Vec::new();
        match case % 3 {
            0 => {
                let len = rng.below(3 * MAX_FRAME_LEN);
                noise.extend((0..len).map(|_| rng.byte()));
            }
            1 => {
                let msg = samples[rng.below(samples.len())];
                noise.extend_from_slice(&encode(&msg).unwrap());
                for _ in 0..=rng.below(3) {
                    let i = rng.below(noise.len());
                    noise[i] = rng.byte();
                }
            }
            _ => {
                let len = rng.below(2 * MAX_FRAME_LEN);
                noise.extend((0..len).map(|_| {
                    if rng.below(8) == 0 {
                        DELIMITER
                    } else {
                        rng.byte()
                    }
                }));
            }
        }
        let mut dec = FrameDecoder::<PanelToBox>::new();
        // Anything the noise decodes to must itself be a well-formed message.
        for msg in dec.feed(&noise).flatten() {
            accepted_noise += 1;
            let again = encode(&msg).unwrap();
            assert_eq!(
                decode_frame::<PanelToBox>(&again[..again.len() - 1]),
                Ok(msg)
            );
        }
        assert!(dec.pending() <= MAX_FRAME_LEN, "case {case}");
        let mut tail = Vec::from([DELIMITER]);
        tail.extend_from_slice(&marker_frame);
        let got = decode_all(&mut dec, &tail);
        assert_eq!(got.last(), Some(&Ok(marker)), "case {case}: lost sync");
    }
    // Pure noise passing a CRC-16 should be rare; damaged real frames a bit less so.
    assert!(
        accepted_noise < 100,
        "{accepted_noise} noise frames accepted"
    );
}
