//! Known-answer tests on real servers' control-channel transcripts and listings
//! (`tests/transcripts/`, see its README).

#![allow(clippy::unwrap_used)] // Tests and benches fail loudly on purpose.

use ftps_proto::address::{parse_epsv_reply, parse_pasv_reply};
use ftps_proto::listing::{EntryKind, parse_listing};
use ftps_proto::{
    Command, CommandErrorKind, Features, ListEntry, MlsxEntry, Reply, ReplyCode, ReplyDecoder,
    Timestamp, facts::parse_mlsd,
};

/// One transcript file: the server's byte stream, the client's lines, and data sections.
struct Transcript {
    name: &'static str,
    server: Vec<u8>,
    client: Vec<String>,
    data: Vec<(String, Vec<u8>)>,
}

/// Undoes Python's bytes escaping: `\r`, `\n`, `\t`, `\\`, `\'`, `\xNN`.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => out.push(other),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn load(name: &'static str, text: &str) -> Transcript {
    let mut t = Transcript {
        name,
        server: Vec::new(),
        client: Vec::new(),
        data: Vec::new(),
    };
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("S: ") {
            t.server.extend(unescape(s));
        } else if let Some(c) = line.strip_prefix("C: ") {
            t.client.push(c.to_owned());
        } else if let Some(rest) = line.strip_prefix("# data of ") {
            let command = rest.split(" (").next().unwrap().to_owned();
            t.data.push((command, Vec::new()));
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Some((_, data)) = t.data.last_mut()
        {
            data.extend(unescape(line));
        }
    }
    t
}

fn transcripts() -> Vec<Transcript> {
    vec![
        load("vsftpd", include_str!("transcripts/vsftpd-3.0.3.txt")),
        load("proftpd", include_str!("transcripts/proftpd-1.3.8.txt")),
        load(
            "pure-ftpd",
            include_str!("transcripts/pure-ftpd-1.0.50.txt"),
        ),
        load("pyftpdlib", include_str!("transcripts/pyftpdlib-2.2.0.txt")),
        load(
            "inetutils",
            include_str!("transcripts/inetutils-ftpd-2.4.txt"),
        ),
    ]
}

fn decode_in_chunks(bytes: &[u8], chunk: usize) -> Vec<Reply> {
    let mut decoder = ReplyDecoder::default();
    let mut replies = Vec::new();
    for mut piece in bytes.chunks(chunk) {
        loop {
            let (used, reply) = decoder.decode(piece);
            piece = &piece[used..];
            match reply {
                Some(r) => replies.push(r.expect("reply parses")),
                None => break,
            }
        }
    }
    assert!(decoder.is_idle(), "bytes left over");
    replies
}

/// The replies of a transcript, paired with the command that caused each.
fn replies(t: &Transcript) -> Vec<(Option<String>, Reply)> {
    let all = decode_in_chunks(&t.server, t.server.len());
    let mut out = Vec::new();
    let mut commands = t.client.iter();
    let mut current: Option<String> = None;
    for reply in all {
        if current.is_none() && !out.is_empty() {
            current = commands.next().cloned();
        }
        let preliminary = reply.code().is_preliminary();
        out.push((current.clone(), reply));
        if !preliminary {
            current = None;
        }
    }
    assert!(
        commands.next().is_none(),
        "{}: fewer replies than commands",
        t.name
    );
    out
}

#[test]
fn five_servers_replies_decode_in_any_chunking() {
    let all = transcripts();
    assert_eq!(all.len(), 5);
    for t in &all {
        let whole = decode_in_chunks(&t.server, t.server.len());
        for chunk in [1, 2, 3, 7, 64] {
            assert_eq!(
                decode_in_chunks(&t.server, chunk),
                whole,
                "{} chunk {chunk}",
                t.name
            );
        }
        // Greeting plus one final reply per command, plus the 1xx preliminaries.
        let preliminary = whole.iter().filter(|r| r.code().is_preliminary()).count();
        assert_eq!(whole.len(), 1 + t.client.len() + preliminary, "{}", t.name);
        for reply in &whole {
            assert_eq!(
                &Reply::parse(&reply.to_bytes()).unwrap(),
                reply,
                "{}",
                t.name
            );
        }
        assert_eq!(whole[0].code(), ReplyCode::SERVICE_READY, "{}", t.name);
    }
}

#[test]
fn known_answers_per_command() {
    // How often each check ran, so a pairing mistake cannot make them all silently skip.
    let mut checked: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for t in transcripts() {
        for (command, reply) in replies(&t) {
            let Some(command) = command else { continue };
            let code = reply.code().get();
            let key = match command.as_str() {
                "FEAT" if code == 211 => "FEAT",
                "PASV" => "PASV",
                "EPSV" => "EPSV",
                "MDTM hello.txt" => "MDTM",
                "SIZE hello.txt" => "SIZE",
                "MLST hello.txt" if code == 250 => "MLST",
                "XYZZY" => "XYZZY",
                "PWD" | "MKD newdir" => "257",
                "QUIT" => "QUIT",
                _ => "other",
            };
            *checked.entry(key).or_default() += 1;
            match command.as_str() {
                "FEAT" if code == 211 => {
                    let f = Features::from_reply(&reply).unwrap();
                    assert!(f.supports("EPSV") && f.supports("SIZE"), "{}", t.name);
                    assert!(
                        f.auth_mechanisms().contains(&"TLS".to_owned()),
                        "{}",
                        t.name
                    );
                    assert!(f.rest_stream(), "{}", t.name);
                    if t.name != "vsftpd" {
                        assert!(
                            f.supports("MLST") && f.mlst_facts().unwrap().iter().any(|f| f.enabled)
                        );
                    }
                }
                "PASV" => {
                    assert_eq!(code, 227);
                    assert_eq!(
                        parse_pasv_reply(reply.first_line()).unwrap().ip().octets(),
                        [127, 0, 0, 1]
                    );
                }
                "EPSV" => {
                    assert_eq!(code, 229);
                    assert!(
                        parse_epsv_reply(reply.first_line()).unwrap() > 1024,
                        "{}",
                        t.name
                    );
                }
                "MDTM hello.txt" => {
                    assert_eq!(
                        Timestamp::parse(reply.first_line()).unwrap().to_string(),
                        "20190304050607"
                    );
                }
                "SIZE hello.txt" => assert_eq!(reply.first_line(), "24"),
                "MLST hello.txt" if code == 250 => {
                    let entry = MlsxEntry::parse_mlst_line(&reply.lines()[1]).unwrap();
                    assert!(entry.pathname.ends_with("hello.txt"), "{}", t.name);
                    assert_eq!(entry.size(), Some(24));
                    assert_eq!(entry.modified().unwrap().to_string(), "20190304050607");
                }
                "XYZZY" => assert_eq!(code, 500),
                "PWD" | "MKD newdir" => {
                    assert_eq!(code, 257);
                    assert!(reply.first_line().starts_with('"'));
                }
                "QUIT" => assert_eq!(code, 221),
                _ => {}
            }
        }
    }
    // Five servers; FEAT needs login on inetutils; MLST on three; PASV four times each.
    let expected = [
        ("FEAT", 8),
        ("PASV", 19),
        ("EPSV", 5),
        ("MDTM", 5),
        ("SIZE", 5),
        ("MLST", 3),
        ("XYZZY", 5),
        ("257", 10),
        ("QUIT", 5),
    ];
    for (key, at_least) in expected {
        let ran = checked.get(key).copied().unwrap_or(0);
        assert!(
            ran >= at_least,
            "{key} checked {ran} times, expected at least {at_least}"
        );
    }
}

#[test]
fn client_lines_parse_and_re_encode() {
    for t in transcripts() {
        for line in &t.client {
            match Command::parse(line.as_bytes()) {
                Ok(cmd) => {
                    let encoded = String::from_utf8(cmd.to_bytes()).unwrap();
                    assert_eq!(encoded, format!("{line}\r\n"), "{}", t.name);
                }
                Err(e) => {
                    assert_eq!(line, "XYZZY", "{}: {line}: {e}", t.name);
                    assert_eq!(e.kind(), &CommandErrorKind::UnknownVerb);
                }
            }
        }
    }
}

#[test]
fn list_data_parses() {
    for t in transcripts() {
        for (command, data) in &t.data {
            let text = String::from_utf8(data.clone()).unwrap();
            match command.as_str() {
                "LIST" | "LIST -a" => {
                    let entries: Vec<ListEntry> =
                        parse_listing(&text).map(Result::unwrap).collect();
                    assert!(entries.len() >= 9, "{} {command}", t.name);
                    let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
                    assert_eq!(find("hello.txt").size, Some(24));
                    let hello_date = find("hello.txt").modified.unwrap();
                    assert_eq!(
                        (hello_date.year, hello_date.month, hello_date.day),
                        (Some(2019), 3, 4)
                    );
                    assert_eq!(find("link-to-hello").kind, EntryKind::Symlink);
                    assert_eq!(
                        find("link-to-hello").link_target.as_deref(),
                        Some("hello.txt")
                    );
                    assert_eq!(find("with space.txt").size, Some(3));
                    assert_eq!(find("日本語").kind, EntryKind::Directory);
                    assert_eq!(find("sub").kind, EntryKind::Directory);
                }
                "MLSD" if !data.is_empty() => {
                    let entries: Vec<MlsxEntry> = parse_mlsd(&text).map(Result::unwrap).collect();
                    assert!(entries.len() >= 9, "{}", t.name);
                    let hello = entries.iter().find(|e| e.pathname == "hello.txt").unwrap();
                    assert_eq!(hello.size(), Some(24));
                    assert!(
                        entries
                            .iter()
                            .any(|e| e.pathname == "日本語" && e.file_type().unwrap().is_dir())
                    );
                    for e in &entries {
                        assert_eq!(MlsxEntry::parse(&e.to_string()).unwrap(), *e);
                    }
                }
                "NLST" => assert!(text.lines().any(|l| l.trim_end() == "with space.txt")),
                _ => {}
            }
        }
    }
}

#[test]
fn other_formats_parse() {
    let text = include_str!("transcripts/other-formats.txt");
    let entries: Vec<ListEntry> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| ListEntry::parse(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(entries.len(), 15);
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.kind == EntryKind::Directory)
            .count(),
        4
    );
}
