//! Wake-on-LAN: the box powers stations on by broadcasting magic packets itself (the MAC
//! address is learned at enrolment).
//!
//! A magic packet is 6 bytes of 0xFF followed by the target MAC repeated 16 times, sent as a
//! UDP datagram (port 9 by convention) to the subnet's broadcast address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

#[derive(Debug, thiserror::Error)]
pub enum WolError {
    #[error("'{0}' is not a MAC address (expected aa:bb:cc:dd:ee:ff)")]
    BadMac(String),
    #[error("cannot send the magic packet to {to}: {source}")]
    Send {
        to: SocketAddr,
        source: std::io::Error,
    },
}

pub const MAGIC_LEN: usize = 6 + 16 * 6;

/// Parses `aa:bb:cc:dd:ee:ff` (or with dashes).
pub fn parse_mac(s: &str) -> Result<[u8; 6], WolError> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(WolError::BadMac(s.chars().take(40).collect()));
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(WolError::BadMac(s.chars().take(40).collect()));
        }
        mac[i] = u8::from_str_radix(p, 16)
            .map_err(|_| WolError::BadMac(s.chars().take(40).collect()))?;
    }
    Ok(mac)
}

pub fn magic_packet(mac: [u8; 6]) -> [u8; MAGIC_LEN] {
    let mut p = [0xFFu8; MAGIC_LEN];
    for i in 0..16 {
        p[6 + i * 6..12 + i * 6].copy_from_slice(&mac);
    }
    p
}

/// Sends one magic packet for `mac` to `to` (normally the broadcast address, port 9).
pub async fn wake(mac: [u8; 6], to: SocketAddr) -> Result<(), WolError> {
    let err = |source| WolError::Send { to, source };
    let sock = tokio::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(err)?;
    sock.set_broadcast(true).map_err(err)?;
    sock.send_to(&magic_packet(mac), to).await.map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("02:00:5e:10:00:0a").unwrap(),
            [2, 0, 0x5e, 0x10, 0, 0x0a]
        );
        assert_eq!(parse_mac("02-00-5E-10-00-0A").unwrap()[2], 0x5e);
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0g",
            "0200.5e10.000a",
            "2:0:5e:10:0:a",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    /// The packet that arrives on a local socket is exactly 6×0xFF + 16× the MAC.
    #[tokio::test]
    async fn magic_packet_arrives_well_formed() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mac = parse_mac("02:00:00:00:00:2a").unwrap();
        wake(mac, rx.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, _) =
            tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv_from(&mut buf))
                .await
                .expect("packet within 5 s")
                .unwrap();
        assert_eq!(n, 102);
        assert!(buf[..6].iter().all(|&b| b == 0xFF));
        for rep in buf[6..n].chunks(6) {
            assert_eq!(rep, mac);
        }
    }
}
