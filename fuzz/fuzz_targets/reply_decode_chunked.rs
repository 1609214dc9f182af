//! Arbitrary bytes through the reply decoder in two chunkings (whole, and pieces whose size
//! the first byte picks): the same replies and errors, bounded memory, and every decoded
//! reply re-encodes to bytes that parse back to it.
#![no_main]

use ftps_proto::{Reply, ReplyDecoder, ReplyLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ReplyLimits = ReplyLimits::new(256, 32, 2048);

fn decode(data: &[u8], chunk: usize) -> Vec<Result<Reply, ftps_proto::ReplyError>> {
    let mut decoder = ReplyDecoder::new(LIMITS);
    let mut out = Vec::new();
    for mut piece in data.chunks(chunk.max(1)) {
        while let (used, Some(item)) = decoder.decode(piece) {
            piece = &piece[used..];
            out.push(item);
        }
        assert!(decoder.held_bytes() <= LIMITS.max_line + 1 + LIMITS.max_bytes);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let whole = decode(rest, rest.len());
    assert_eq!(decode(rest, usize::from(first % 17) + 1), whole);
    for reply in whole.into_iter().flatten() {
        assert_eq!(Reply::parse(&reply.to_bytes()).expect("re-parses"), reply);
    }
});
