//! TYPE A line-ending conversion (RFC 959 §3.1.1.1): the network form of text ends lines
//! with CRLF; this server stores them with LF. Both converters work on chunks of any size
//! and carry their state across chunks, so a CRLF split between two reads is handled.

/// Converts stored text (LF) to the network form (CRLF). A CR already before an LF is
/// kept, so CRLF text is not doubled.
#[derive(Debug, Default, Clone)]
pub struct ToNetwork {
    last_was_cr: bool,
}

impl ToNetwork {
    /// Appends the converted form of `input` to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', input) {
            let preceded_by_cr = if i == 0 {
                self.last_was_cr
            } else {
                input[i - 1] == b'\r'
            };
            out.extend_from_slice(&input[start..i]);
            if !preceded_by_cr {
                out.push(b'\r');
            }
            start = i;
        }
        out.extend_from_slice(&input[start..]);
        if let Some(&last) = input.last() {
            self.last_was_cr = last == b'\r';
        }
    }
}

/// Converts the network form (CRLF) to stored text (LF). A CR not followed by LF is kept.
#[derive(Debug, Default, Clone)]
pub struct FromNetwork {
    pending_cr: bool,
}

impl FromNetwork {
    /// Appends the converted form of `input` to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 1);
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// Appends a CR held back at the end of the input.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked<F: FnMut(&[u8], &mut Vec<u8>)>(input: &[u8], size: usize, mut f: F) -> Vec<u8> {
        let mut out = Vec::new();
        for c in input.chunks(size) {
            f(c, &mut out);
        }
        out
    }

    #[test]
    fn to_network_in_any_chunking() {
        let input = b"a\nb\r\nc\n\nd";
        for size in 1..input.len() {
            let mut conv = ToNetwork::default();
            assert_eq!(
                chunked(input, size, |c, o| conv.convert(c, o)),
                b"a\r\nb\r\nc\r\n\r\nd"
            );
        }
    }

    #[test]
    fn from_network_in_any_chunking() {
        let input = b"a\r\nb\rc\r\n\r\n";
        for size in 1..input.len() {
            let mut conv = FromNetwork::default();
            let mut out = chunked(input, size, |c, o| conv.convert(c, o));
            conv.finish(&mut out);
            assert_eq!(out, b"a\nb\rc\n\n");
        }
        let mut conv = FromNetwork::default();
        let mut out = Vec::new();
        conv.convert(b"x\r", &mut out);
        conv.finish(&mut out);
        assert_eq!(out, b"x\r");
    }
}
