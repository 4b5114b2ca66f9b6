//! The PC's MAC address for Wake-on-LAN: the first Ethernet adapter's (else the first Wi-Fi
//! adapter's) hardware address, in the order Windows lists them (`GetAdaptersAddresses`).

use std::ptr::null_mut;

use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST,
    IF_TYPE_ETHERNET_CSMACD, IF_TYPE_IEEE80211, IP_ADAPTER_ADDRESSES_LH,
};
use windows_sys::Win32::Networking::WinSock::AF_UNSPEC;

const ERROR_SUCCESS: u32 = 0;
const ERROR_BUFFER_OVERFLOW: u32 = 111;
/// Largest adapter list read (a PC's is a few KiB).
const MAX_BUFFER: u32 = 1 << 20;

/// `aa:bb:cc:dd:ee:ff` for a 6-byte hardware address that is not all zeros.
pub fn format_mac(address: &[u8]) -> Option<String> {
    if address.len() != 6 || address.iter().all(|&b| b == 0) {
        return None;
    }
    Some(
        address
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// The MAC address of the first Ethernet adapter, else of the first Wi-Fi adapter.
pub fn primary_mac() -> Option<String> {
    let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
    let mut size: u32 = 16 * 1024;
    for _ in 0..3 {
        // u64 elements: the list is made of structures that need 8-byte alignment.
        let mut buffer = vec![0u64; (size as usize).div_ceil(8)];
        let first = buffer.as_mut_ptr() as *mut IP_ADAPTER_ADDRESSES_LH;
        // SAFETY: `buffer` holds `size` bytes and outlives every read of the list below; the
        // list's pointers point into it.
        let status =
            unsafe { GetAdaptersAddresses(AF_UNSPEC as u32, flags, null_mut(), first, &mut size) };
        match status {
            ERROR_SUCCESS => {
                let mut found: [Option<String>; 2] = [None, None];
                let mut at = first as *const IP_ADAPTER_ADDRESSES_LH;
                while !at.is_null() {
                    // SAFETY: `at` is the list's head or a `Next` link, inside `buffer`.
                    let a = unsafe { &*at };
                    let len = (a.PhysicalAddressLength as usize).min(a.PhysicalAddress.len());
                    let slot = match a.IfType {
                        IF_TYPE_ETHERNET_CSMACD => 0,
                        IF_TYPE_IEEE80211 => 1,
                        _ => 2,
                    };
                    if slot < 2 && found[slot].is_none() {
                        found[slot] = format_mac(&a.PhysicalAddress[..len]);
                    }
                    at = a.Next;
                }
                let [ethernet, wifi] = found;
                return ethernet.or(wifi);
            }
            ERROR_BUFFER_OVERFLOW if size <= MAX_BUFFER => continue,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_addresses_are_written_like_linux_writes_them() {
        assert_eq!(
            format_mac(&[0x02, 0, 0x5e, 0x10, 0xab, 0xff]).as_deref(),
            Some("02:00:5e:10:ab:ff")
        );
        assert_eq!(format_mac(&[0; 6]), None);
        assert_eq!(format_mac(&[1, 2, 3]), None);
    }

    #[test]
    fn the_primary_mac_when_there_is_one_is_well_formed() {
        // Under Wine the host's adapters are listed; a PC without any has none.
        if let Some(mac) = primary_mac() {
            assert_eq!(mac.len(), 17, "{mac}");
            assert!(
                mac.split(':').all(|b| u8::from_str_radix(b, 16).is_ok()),
                "{mac}"
            );
        }
    }
}
