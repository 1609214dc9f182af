//! The line framer gives the same lines and errors whatever the chunking (whole input,
//! one byte at a time, pieces the first byte picks), and never holds more than the limit.
#![no_main]

use ftps_proto::LineFramer;
use libfuzzer_sys::fuzz_target;

fn frame(data: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, ftps_proto::FrameError>> {
    let mut framer = LineFramer::new(64);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        out.extend(framer.decode_all(piece));
        assert!(framer.buffered() <= 65);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let whole = frame(rest, rest.len());
    assert_eq!(frame(rest, 1), whole);
    assert_eq!(frame(rest, usize::from(first % 31) + 1), whole);
});
