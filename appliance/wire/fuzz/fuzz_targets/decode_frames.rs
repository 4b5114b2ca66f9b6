//! Feeds arbitrary bytes to the station link decoder: it must never panic, never buffer
//! beyond its limits, and whatever it accepts must survive a re-encode unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = lanterne_wire::decode(&mut buf) {
        let mut again = BytesMut::new();
        lanterne_wire::encode(&frame, &mut again).expect("decoded frames re-encode");
        assert_eq!(lanterne_wire::decode(&mut again).unwrap(), Some(frame));
    }
});
