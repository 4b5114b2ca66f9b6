//! Feeds arbitrary bytes to both frame decoders. Properties checked beyond "no panic":
//! the decoder never buffers more than one frame, anything it accepts re-encodes to a frame
//! that decodes to the same message, and a valid frame after the noise always gets through.

#![no_main]

use lanterne_panel_protocol::{
    decode_frame, encode, BoxToPanel, FrameDecoder, Message, PanelToBox, DELIMITER, MAX_FRAME_LEN,
};
use libfuzzer_sys::fuzz_target;

fn check<M: Message + Copy + PartialEq + core::fmt::Debug>(data: &[u8], marker: M) {
    let mut dec = FrameDecoder::<M>::new();
    for msg in dec.feed(data).flatten() {
        let frame = encode(&msg).expect("accepted message must re-encode");
        assert_eq!(decode_frame::<M>(&frame[..frame.len() - 1]), Ok(msg));
    }
    assert!(dec.pending() <= MAX_FRAME_LEN);
    let mut tail = vec![DELIMITER];
    tail.extend_from_slice(&encode(&marker).unwrap());
    let last = dec.feed(&tail).last();
    assert_eq!(last, Some(Ok(marker)));
}

fuzz_target!(|data: &[u8]| {
    check(data, BoxToPanel::Heartbeat { seq: 0xBEEF });
    check(data, PanelToBox::HeartbeatReply { seq: 0xBEEF });
});
