//! The Lanterne panel protocol: the messages the box and its front-panel microcontroller
//! exchange over USB serial, and their framing.
//!
//! One frame on the wire is
//!
//! ```text
//! COBS( version:u8 | direction:u8 | postcard(message) | crc16-le ) 0x00
//! ```
//!
//! * **COBS + 0x00 delimiter** so a receiver that joins mid-stream, or that sees noise,
//!   throws away at most one frame and resynchronises at the next 0x00.
//! * **version** is [`PROTOCOL_VERSION`]; a peer speaking another version is rejected with
//!   [`DecodeError::UnsupportedVersion`] instead of being misread. Appending new message
//!   variants keeps the version (old peers reject the unknown variant as malformed and carry on);
//!   changing an existing variant's fields bumps it.
//! * **direction** differs per message type, so a looped-back line (a tty with echo left on)
//!   can never make the box read its own commands as button presses.
//! * **CRC-16/IBM-SDLC** over everything before it, because USB CDC is reliable but the
//!   GPIO-UART fallback and a half-plugged cable are not.
//!
//! Everything is `no_std` with fixed-size buffers: no frame is ever larger than
//! [`MAX_FRAME_LEN`] bytes, and the decoder drops any frame that would be.

#![no_std]
#![forbid(unsafe_code)]

pub mod cobs;

use core::marker::PhantomData;

use crc::{Crc, CRC_16_IBM_SDLC};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use thiserror::Error;

/// Version byte carried in every frame.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest postcard-encoded message either side may send. Checked by a test against the
/// worst case of every message type.
pub const MAX_MESSAGE_LEN: usize = 32;

/// version + direction + message + CRC.
pub const MAX_RAW_LEN: usize = 2 + MAX_MESSAGE_LEN + 2;

/// Largest frame on the wire, including the trailing 0x00 delimiter.
pub const MAX_FRAME_LEN: usize = cobs::max_encoded_len(MAX_RAW_LEN) + 1;

/// Frame delimiter.
pub const DELIMITER: u8 = 0x00;

const DIRECTION_BOX_TO_PANEL: u8 = 0xB0;
const DIRECTION_PANEL_TO_BOX: u8 = 0x9A;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// What one LED should do. Timing is rendered by the panel, so a box that stalls for a moment
/// does not make a blink stutter.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LedPattern {
    Off,
    Steady,
    /// Square wave; a zero `on_ms` or `off_ms` is treated as steady on / off by the panel.
    Blink {
        on_ms: u16,
        off_ms: u16,
    },
    /// Smooth rise and fall over `period_ms` (PWM on the RP2040).
    Breathe {
        period_ms: u16,
    },
    /// The panel's own fault pattern (the same one it shows when the box goes silent).
    Fault,
}

/// Box → panel.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BoxToPanel {
    /// Show these patterns from now on.
    SetLeds {
        lock: LedPattern,
        status: LedPattern,
    },
    /// "The box software is alive." The panel answers with [`PanelToBox::HeartbeatReply`].
    Heartbeat { seq: u16 },
    /// Flash both LEDs so a technician can find this box in a corridor of identical ones.
    Identify { duration_ms: u16 },
    /// Ask for [`PanelToBox::Hello`].
    QueryVersion,
}

/// Firmware version, semver-style.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FirmwareVersion {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl core::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Something the panel wants the box (and its logs) to know went wrong.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FaultCode {
    /// The box was silent for longer than the panel's heartbeat timeout; the status LED showed
    /// the fault pattern. Reported once the box is heard again.
    HeartbeatLost,
    /// The panel rebooted because its own watchdog fired.
    WatchdogReset,
    /// Frames from the box failed to decode (`count` since the last report).
    BadFrames,
}

/// Panel → box.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PanelToBox {
    /// Sent at start-up and in answer to [`BoxToPanel::QueryVersion`].
    Hello {
        protocol: u8,
        firmware: FirmwareVersion,
    },
    /// The lock button was pressed and released quickly.
    ButtonPressed,
    /// The lock button has been held down past the long-press threshold (sent while still held).
    ButtonLongPressed,
    HeartbeatReply {
        seq: u16,
    },
    Fault {
        code: FaultCode,
        count: u16,
    },
}

/// A message type that can be framed; the direction byte keeps the two apart on the wire.
pub trait Message: Serialize + DeserializeOwned {
    const DIRECTION: u8;
}

impl Message for BoxToPanel {
    const DIRECTION: u8 = DIRECTION_BOX_TO_PANEL;
}

impl Message for PanelToBox {
    const DIRECTION: u8 = DIRECTION_PANEL_TO_BOX;
}

/// Why a message could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    #[error("message does not fit in {MAX_MESSAGE_LEN} bytes")]
    MessageTooLarge,
    #[error("output buffer shorter than the frame")]
    BufferTooSmall,
}

/// Why a received frame was dropped. The decoder is ready for the next frame either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    #[error("frame longer than {MAX_FRAME_LEN} bytes")]
    Oversized,
    #[error("invalid COBS encoding")]
    Cobs,
    #[error("frame too short")]
    TooShort,
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    #[error("frame travels the other way (looped-back line?)")]
    WrongDirection,
    #[error("CRC mismatch")]
    Crc,
    #[error("malformed message body")]
    Malformed,
}

/// A complete frame, ready to write.
pub type Frame = heapless::Vec<u8, MAX_FRAME_LEN>;

/// Frames `msg` into `out`; returns the number of bytes written (delimiter included).
pub fn encode_into<M: Message>(msg: &M, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut raw = [0u8; MAX_RAW_LEN];
    raw[0] = PROTOCOL_VERSION;
    raw[1] = M::DIRECTION;
    let body_len = postcard::to_slice(msg, &mut raw[2..2 + MAX_MESSAGE_LEN])
        .map_err(|_| EncodeError::MessageTooLarge)?
        .len();
    let crc_at = 2 + body_len;
    let crc = CRC16.checksum(&raw[..crc_at]);
    raw[crc_at..crc_at + 2].copy_from_slice(&crc.to_le_bytes());
    let raw = &raw[..crc_at + 2];

    let n = cobs::encode(raw, out).map_err(|_| EncodeError::BufferTooSmall)?;
    *out.get_mut(n).ok_or(EncodeError::BufferTooSmall)? = DELIMITER;
    Ok(n + 1)
}

/// Frames `msg` into a fixed-capacity vector.
pub fn encode<M: Message>(msg: &M) -> Result<Frame, EncodeError> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode_into(msg, &mut buf)?;
    // Cannot fail: n <= MAX_FRAME_LEN by construction of `buf`.
    Frame::from_slice(&buf[..n]).map_err(|_| EncodeError::BufferTooSmall)
}

/// Decodes one frame whose delimiter has been stripped.
pub fn decode_frame<M: Message>(encoded: &[u8]) -> Result<M, DecodeError> {
    if encoded.len() >= MAX_FRAME_LEN {
        return Err(DecodeError::Oversized);
    }
    let mut raw = [0u8; MAX_FRAME_LEN];
    let n = cobs::decode(encoded, &mut raw).map_err(|e| match e {
        cobs::CobsError::BufferTooSmall => DecodeError::Oversized,
        _ => DecodeError::Cobs,
    })?;
    let raw = &raw[..n];
    if raw.len() < 2 + 1 + 2 {
        return Err(DecodeError::TooShort);
    }
    if raw[0] != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion(raw[0]));
    }
    if raw[1] != M::DIRECTION {
        return Err(DecodeError::WrongDirection);
    }
    let (covered, crc) = raw.split_at(raw.len() - 2);
    if CRC16.checksum(covered).to_le_bytes() != [crc[0], crc[1]] {
        return Err(DecodeError::Crc);
    }
    match postcard::take_from_bytes::<M>(&covered[2..]) {
        // Trailing bytes mean the sender and we disagree about the message layout.
        Ok((msg, [])) => Ok(msg),
        _ => Err(DecodeError::Malformed),
    }
}

/// Incremental frame decoder: push bytes as they arrive, get messages (or the reason a frame
/// was dropped) at each delimiter. Holds at most [`MAX_FRAME_LEN`] bytes; bytes of an oversized
/// frame are discarded up to the next delimiter.
#[derive(Debug)]
pub struct FrameDecoder<M> {
    buf: heapless::Vec<u8, MAX_FRAME_LEN>,
    overflowed: bool,
    _msg: PhantomData<M>,
}

impl<M: Message> Default for FrameDecoder<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Message> FrameDecoder<M> {
    pub const fn new() -> Self {
        Self {
            buf: heapless::Vec::new(),
            overflowed: false,
            _msg: PhantomData,
        }
    }

    /// Feeds one byte. Returns `Some` when a delimiter ends a non-empty frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<M, DecodeError>> {
        if byte == DELIMITER {
            let result = if self.overflowed {
                Some(Err(DecodeError::Oversized))
            } else if self.buf.is_empty() {
                // Back-to-back delimiters are how a sender flushes a receiver: not an error.
                None
            } else {
                Some(decode_frame(&self.buf))
            };
            self.reset();
            return result;
        }
        if !self.overflowed && self.buf.push(byte).is_err() {
            self.overflowed = true;
            self.buf.clear();
        }
        None
    }

    /// Feeds a chunk; yields one item per completed frame.
    pub fn feed<'a>(&'a mut self, bytes: &'a [u8]) -> Feed<'a, M> {
        Feed {
            decoder: self,
            bytes: bytes.iter(),
        }
    }

    /// Forgets any partial frame (e.g. after the line was reopened).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflowed = false;
    }

    /// Bytes of the current, incomplete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Iterator returned by [`FrameDecoder::feed`].
pub struct Feed<'a, M> {
    decoder: &'a mut FrameDecoder<M>,
    bytes: core::slice::Iter<'a, u8>,
}

impl<M: Message> Iterator for Feed<'_, M> {
    type Item = Result<M, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        for &byte in self.bytes.by_ref() {
            if let Some(item) = self.decoder.push(byte) {
                return Some(item);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
