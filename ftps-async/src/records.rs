//! [`Records`]: where TLS records begin and end in the bytes read from a socket.
//!
//! Every TLS record (RFC 8446 §5.1, RFC 5246 §6.2) starts with a 5-byte header whose last
//! two bytes give the length of what follows. Following the headers from the first byte of
//! a connection tells, for any prefix of the stream, whether it ends on a record boundary
//! and how long the last complete record was, without looking inside a record.
//!
//! [`TlsStream`](crate::tls::TlsStream) uses it to keep rustls' receive buffer from
//! emptying between records (see `TlsStream::poll_feed`).

/// The header of a TLS record: content type (1), version (2), length (2).
const HEADER: usize = 5;

/// A scanner over a TLS byte stream, fed every byte in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Records {
    /// Header bytes of the record under way seen so far (0 at a boundary or in a body).
    header: [u8; HEADER],
    header_seen: usize,
    /// Body bytes of the record under way still to come.
    body_left: usize,
    /// The body length of the last record whose header was complete.
    last_len: usize,
}

impl Records {
    /// Follows `bytes`, the next bytes of the stream.
    pub(crate) fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.header_seen).min(bytes.len());
            self.header[self.header_seen..self.header_seen + n].copy_from_slice(&bytes[..n]);
            self.header_seen += n;
            bytes = &bytes[n..];
            if self.header_seen == HEADER {
                self.header_seen = 0;
                self.last_len = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.body_left = self.last_len;
            }
        }
    }

    /// The body length of the last record, if the bytes seen so far end exactly where it
    /// ends (a record boundary); None inside a record or its header.
    pub(crate) fn ended_record(&self) -> Option<usize> {
        (self.header_seen == 0 && self.body_left == 0).then_some(self.last_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: u16) -> Vec<u8> {
        let mut r = vec![23, 3, 3];
        r.extend_from_slice(&len.to_be_bytes());
        r.resize(HEADER + usize::from(len), 0xAB);
        r
    }

    #[test]
    fn boundaries_are_found_whatever_the_reads() {
        let stream: Vec<u8> = [record(16401), record(19), record(0), record(300)].concat();
        // The start counts as the end of an empty record.
        let ends = [
            0,
            HEADER + 16401,
            2 * HEADER + 16420,
            3 * HEADER + 16420,
            stream.len(),
        ];
        let lens = [0, 16401, 19, 0, 300];
        // Every split of the stream into two reads, and reads of 1, 3 and 4096 bytes.
        for cut in 0..=stream.len() {
            let mut r = Records::default();
            r.scan(&stream[..cut]);
            let at = ends.iter().position(|&e| e == cut);
            assert_eq!(r.ended_record(), at.map(|i| lens[i]), "cut at {cut}");
            r.scan(&stream[cut..]);
            assert_eq!(r.ended_record(), Some(300));
        }
        for step in [1, 3, 4096] {
            let mut r = Records::default();
            let mut seen = 0;
            for chunk in stream.chunks(step) {
                r.scan(chunk);
                seen += chunk.len();
                let at = ends.iter().position(|&e| e == seen);
                assert_eq!(
                    r.ended_record(),
                    at.map(|i| lens[i]),
                    "step {step}, at {seen}"
                );
            }
        }
    }

    #[test]
    fn the_start_is_a_boundary_of_nothing() {
        let r = Records::default();
        assert_eq!(r.ended_record(), Some(0));
    }
}
