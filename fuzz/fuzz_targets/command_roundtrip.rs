//! Any `Command` value encodes to exactly one line that parses back to the same value.
#![no_main]

use ftps_proto::{Command, LineFramer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|cmd: Command| {
    let encoded = cmd.to_bytes();
    let lines = LineFramer::new(1 << 20).decode_all(&encoded);
    assert_eq!(lines.len(), 1, "{encoded:?}");
    let parsed = Command::parse(lines[0].as_ref().expect("fits")).expect("parses");
    assert_eq!(parsed, cmd);
});
