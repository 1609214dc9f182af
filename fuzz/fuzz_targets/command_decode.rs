//! Arbitrary bytes through the framer and the command parser: no panic, and every command
//! that parses encodes to one line that parses back to the same value.
#![no_main]

use ftps_proto::{Command, LineFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = LineFramer::new(512);
    for line in framer.decode_all(data).into_iter().flatten() {
        assert!(line.len() <= 512);
        if let Ok(cmd) = Command::parse(&line) {
            let encoded = cmd.to_bytes();
            let again = LineFramer::new(1 << 16).decode_all(&encoded);
            assert_eq!(again.len(), 1, "one command must encode to one line");
            let reparsed = Command::parse(again[0].as_ref().expect("fits")).expect("re-parses");
            assert_eq!(reparsed, cmd);
        }
    }
});
