//! PASV/EPSV reply texts and PORT/EPRT arguments from arbitrary text: no panic, and each
//! address that parses formats to text that parses back to the same address.
#![no_main]

use ftps_proto::address::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(addr) = parse_pasv_reply(&text) {
        assert_eq!(parse_pasv_reply(&format_pasv_reply(addr)).expect("re-parses"), addr);
    }
    if let Ok(port) = parse_epsv_reply(&text) {
        assert_eq!(parse_epsv_reply(&format_epsv_reply(port)).expect("re-parses"), port);
    }
    if let Ok(addr) = parse_port_argument(&text) {
        assert_eq!(parse_port_argument(&format_port_argument(addr)).expect("re-parses"), addr);
    }
    if let Ok(addr) = parse_eprt_argument(&text) {
        assert_eq!(parse_eprt_argument(&format_eprt_argument(addr)).expect("re-parses"), addr);
    }
});
