//! Feeds arbitrary bytes to the station link decoder: it must never panic, never buffer
//! beyond its limits, and whatever it accepts must survive a re-encode unchanged. Demo
//! orders that decode are also validated, as a station does before opening its player, and
//! certificate texts are checked as both sides do before parsing them, remote-help requests
//! and input as a station does before showing a prompt or injecting, and display names as
//! the station's service and the box do before showing them.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = lanterne_wire::decode(&mut buf) {
        // What a station checks before acting on a demo order, and what either side checks
        // before parsing a certificate or a request, must hold for any input (no overflow on
        // the region's far edge, no panic on odd labels or odd PEM text).
        use lanterne_wire::{Control, Frame};
        match &frame {
            Frame::Control(Control::DemoStart(order)) => {
                let _ = order.validate();
            }
            Frame::Control(Control::CertificateRequest { csr_pem }) => {
                let _ = lanterne_wire::check_pem(csr_pem, "CERTIFICATE REQUEST");
            }
            Frame::Control(Control::CertificateIssued { cert_pem }) => {
                let _ = lanterne_wire::check_pem(cert_pem, "CERTIFICATE");
            }
            // What a station checks before showing a consent prompt or injecting input.
            Frame::Control(Control::HelpAsk(ask)) => {
                let _ = ask.validate();
            }
            Frame::Control(Control::HelpInput { events, .. }) => {
                let _ = lanterne_wire::validate_input(events);
            }
            Frame::Control(Control::SessionUser {
                display_name: Some(name),
            }) => {
                let _ = lanterne_wire::validate_display_name(name);
            }
            _ => {}
        }
        let mut again = BytesMut::new();
        lanterne_wire::encode(&frame, &mut again).expect("decoded frames re-encode");
        assert_eq!(lanterne_wire::decode(&mut again).unwrap(), Some(frame));
    }
});
