//! The PROXY protocol decoder (`ftps_proto::proxy`) on arbitrary bytes, fed in exactly the
//! sizes it asks for, as the server reads a connection: it never panics, never asks for
//! nothing or for more than a header can hold, and never takes more than `V2_MAX` bytes.

#![no_main]

use ftps_proto::proxy::{ProxyDecoder, Step, V2_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = ProxyDecoder::new();
    let mut at = 0;
    let mut want = decoder.first();
    loop {
        assert!(want >= 1 && want <= V2_MAX, "asked for {want} bytes");
        let end = (at + want).min(data.len());
        if end == at {
            break;
        }
        match decoder.feed(&data[at..end]) {
            Ok(Step::Read(n)) => {
                at = end;
                want = n;
                assert!(at + want <= V2_MAX, "a header past the bound");
            }
            Ok(Step::Done(_)) | Err(_) => {
                assert!(end <= V2_MAX);
                break;
            }
        }
    }
});
