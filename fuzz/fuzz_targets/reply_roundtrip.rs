//! Any `Reply` value encodes to bytes that parse back to the same value.
#![no_main]

use ftps_proto::Reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|reply: Reply| {
    assert_eq!(Reply::parse(&reply.to_bytes()).expect("parses"), reply);
});
