//! [`RemotePath`]: a path on the server, as its bytes (what is sent) and as text (what is
//! shown).

use std::fmt;
use std::path::PathBuf;

/// A path on the server. FTP pathnames are bytes (RFC 959 §3.2.2: any string of
/// characters but CR and LF; RFC 2640 §2.2 made UTF-8 the usual encoding, not the only
/// one): a URL's `%E9` names a Latin-1 file, and the same bytes go to the server.
/// `Display` shows it as text, U+FFFD where the bytes are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RemotePath<'a>(&'a [u8]);

impl<'a> RemotePath<'a> {
    /// The last non-empty component (a trailing `/` skipped), or `download`.
    pub(crate) fn file_name(self) -> RemotePath<'a> {
        RemotePath(
            self.0
                .split(|&b| b == b'/')
                .rfind(|s| !s.is_empty())
                .unwrap_or(b"download"),
        )
    }

    /// The same bytes as a local file name: as they are on Unix (file names are bytes
    /// there too); elsewhere as text.
    pub(crate) fn local(self) -> PathBuf {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            PathBuf::from(std::ffi::OsStr::from_bytes(self.0))
        }
        #[cfg(not(unix))]
        {
            PathBuf::from(String::from_utf8_lossy(self.0).into_owned())
        }
    }
}

impl AsRef<[u8]> for RemotePath<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

/// For messages: control characters escaped and bytes that are not UTF-8 shown as `\xNN`
/// (the bytes to type back in a URL as `%NN`), never as U+FFFD.
impl fmt::Display for RemotePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&ftps_proto::PrintableBytes(self.0), f)
    }
}

impl<'a> From<&'a str> for RemotePath<'a> {
    fn from(path: &'a str) -> Self {
        RemotePath(path.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for RemotePath<'a> {
    fn from(path: &'a [u8]) -> Self {
        RemotePath(path)
    }
}

/// An empty path lists the current directory (no argument is sent); any other, its bytes.
impl ftps_tokio::client::ListTarget for RemotePath<'_> {
    fn target(&self) -> Option<&[u8]> {
        Some(self.0).filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_bytes_and_show_as_text() {
        let p = RemotePath::from(&b"pub/caf\xe9.txt"[..]);
        assert_eq!(p.file_name().as_ref(), b"caf\xe9.txt");
        assert_eq!(p.to_string(), "pub/caf\\xE9.txt");
        assert_eq!(RemotePath::from("dir/").file_name().as_ref(), b"dir");
        assert_eq!(RemotePath::from("").file_name().as_ref(), b"download");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(p.file_name().local().as_os_str().as_bytes(), b"caf\xe9.txt");
        }
    }
}
