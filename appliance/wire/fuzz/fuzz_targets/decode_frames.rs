//! Feeds arbitrary bytes to the station link decoder: it must never panic, never buffer
//! beyond its limits, and whatever it accepts must survive a re-encode unchanged. Demo
//! orders that decode are also validated, as a station does before opening its player.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = lanterne_wire::decode(&mut buf) {
        // What a station checks before acting on a demo order must hold for any input
        // (no overflow on the region's far edge, no panic on odd labels).
        if let lanterne_wire::Frame::Control(lanterne_wire::Control::DemoStart(order)) = &frame {
            let _ = order.validate();
        }
        let mut again = BytesMut::new();
        lanterne_wire::encode(&frame, &mut again).expect("decoded frames re-encode");
        assert_eq!(lanterne_wire::decode(&mut again).unwrap(), Some(frame));
    }
});
