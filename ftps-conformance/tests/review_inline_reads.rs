//! Review of downloads that read the file on the session's task (`read_now`: a file in
//! the page cache or on tmpfs). On smol, whose executor runs every session on one thread,
//! such a download never gave the thread back while its socket took every write (async-io
//! has no budget that forces a pause, as tokio has): every other session stalled until
//! it ended. Now the task yields after each chunk read at once: the second test shows the
//! yield itself; the first, on every runtime, that another session is answered during
//! such a download (here the client is slower than the server now and then, so the
//! socket fills and smol's task paused even before: 21 ms for a NOOP against 1.6 ms on
//! tokio; a client faster than the server never let it pause).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use ftps_conformance::hostile::{each, plain_allowed, plain_session, start_plain_upload};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Big enough that the download lasts long enough to ask something meanwhile.
const SIZE: usize = 1 << 30;

#[test]
fn another_session_is_answered_while_a_download_reads_from_memory() {
    each("inline-reads", plain_allowed, |f, r, tag| {
        // Written just now: in the page cache, so every chunk is read on the task.
        let mut file = std::fs::File::create(f.root().join("big.bin")).unwrap();
        let block = vec![7u8; 1 << 20];
        for _ in 0..SIZE / block.len() {
            file.write_all(&block).unwrap();
        }
        drop(file);
        let mut other = plain_session(f, r);
        let mut downloader = plain_session(f, r);
        assert_eq!(downloader.cmd("TYPE I").unwrap(), 200, "{tag}");
        let mut data = start_plain_upload(&mut downloader, "RETR big.bin").unwrap();
        // The download, read as fast as this machine can; the instant it ended.
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0usize;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                match data.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            (got, Instant::now())
        });
        // Meanwhile the other session asks, and is answered at once, not when the
        // download ends.
        let started = Instant::now();
        assert_eq!(other.cmd("NOOP").unwrap(), 200, "{tag}");
        let waited = started.elapsed();
        let (got, ended) = reader.join().unwrap();
        let lasted = ended - started;
        assert_eq!(got, SIZE, "{tag}: the whole file");
        assert_eq!(downloader.reply().unwrap().code().get(), 226, "{tag}");
        assert!(
            waited * 4 < lasted,
            "{tag}: NOOP waited {waited:?} for its reply during a download of {lasted:?}"
        );
        let _ = std::fs::remove_file(f.root().join("big.bin"));
    });
}

#[test]
fn a_chunk_read_at_once_is_handed_over_after_one_yield() {
    use ftps_backend::{LocalFs, Storage, User};
    use std::task::{Context, Poll, Waker};
    let f = ftps_conformance::Fixture::new("inline-yield");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(f.root().join("cached.bin"), &bytes).unwrap();
    let storage = ftps_async::OnPool::<ftps_smol::Smol, _>::new(LocalFs::new(f.root()).unwrap());
    let user = User::new("u");
    let path = ftps_proto::VirtualPath::root().resolve("/cached.bin");
    let (reader, size) = smol::block_on(storage.open_read(&user, &path, 0)).unwrap();
    assert_eq!(size, 100_000);
    let mut read = storage.read(reader, vec![0; 65_536]);
    let mut cx = Context::from_waker(Waker::noop());
    // Just written, so in the page cache (or on tmpfs): read at once, then one yield.
    assert!(
        read.as_mut().poll(&mut cx).is_pending(),
        "the first poll yields"
    );
    match read.as_mut().poll(&mut cx) {
        Poll::Ready(chunk) => {
            assert_eq!(chunk.result.unwrap(), 65_536);
            assert_eq!(chunk.buf, &bytes[..65_536]);
        }
        Poll::Pending => panic!("read at once, handed over at the second poll"),
    }
}
