//! Known-answer tests for every command verb: parse, encode, aliases, errors.

#![allow(clippy::unwrap_used)] // Tests and benches fail loudly on purpose.

use ftps_proto::command::{EpsvMode, FileStructure, TextFormat, TransferMode};
use ftps_proto::{
    Command, CommandErrorKind, Password, Pathname, ProtectionLevel, RepresentationType, Text,
    Timestamp, Token, Username,
};

fn p(s: &str) -> Pathname {
    Pathname::new(s).unwrap()
}
fn t(s: &str) -> Text {
    Text::new(s).unwrap()
}

/// (wire line, value); the line is also what the value encodes to.
fn table() -> Vec<(&'static str, Command)> {
    use Command as C;
    vec![
        ("USER alice", C::User(Username::new("alice").unwrap())),
        (
            "PASS s3cret word",
            C::Pass(Password::new("s3cret word").unwrap()),
        ),
        ("PASS ", C::Pass(Password::new("").unwrap())),
        ("ACCT billing", C::Acct(t("billing"))),
        ("CWD /pub/with space ", C::Cwd(p("/pub/with space "))),
        ("CDUP", C::Cdup),
        ("SMNT /mnt", C::Smnt(p("/mnt"))),
        ("REIN", C::Rein),
        ("QUIT", C::Quit),
        (
            "PORT 127,0,0,1,117,94",
            C::Port("127.0.0.1:30046".parse().unwrap()),
        ),
        ("PASV", C::Pasv),
        (
            "TYPE A",
            C::Type(RepresentationType::Ascii(TextFormat::NonPrint)),
        ),
        (
            "TYPE A T",
            C::Type(RepresentationType::Ascii(TextFormat::Telnet)),
        ),
        (
            "TYPE E C",
            C::Type(RepresentationType::Ebcdic(TextFormat::CarriageControl)),
        ),
        ("TYPE I", C::Type(RepresentationType::Image)),
        ("TYPE L 8", C::Type(RepresentationType::Local(8))),
        ("STRU F", C::Stru(FileStructure::File)),
        ("STRU R", C::Stru(FileStructure::Record)),
        ("MODE S", C::Mode(TransferMode::Stream)),
        ("MODE B", C::Mode(TransferMode::Block)),
        ("RETR 日本語/file.txt", C::Retr(p("日本語/file.txt"))),
        ("STOR upload/new.bin", C::Stor(p("upload/new.bin"))),
        ("STOU", C::Stou(None)),
        ("STOU hint.txt", C::Stou(Some(p("hint.txt")))),
        ("APPE log.txt", C::Appe(p("log.txt"))),
        (
            "ALLO 1024",
            C::Allo {
                size: 1024,
                record_size: None,
            },
        ),
        (
            "ALLO 1024 R 128",
            C::Allo {
                size: 1024,
                record_size: Some(128),
            },
        ),
        ("REST 18446744073709551615", C::Rest(u64::MAX)),
        ("RNFR a", C::Rnfr(p("a"))),
        ("RNTO b", C::Rnto(p("b"))),
        ("ABOR", C::Abor),
        ("DELE gone.txt", C::Dele(p("gone.txt"))),
        ("RMD olddir", C::Rmd(p("olddir"))),
        ("MKD newdir", C::Mkd(p("newdir"))),
        ("PWD", C::Pwd),
        ("LIST", C::List(None)),
        ("LIST -a", C::List(Some(p("-a")))),
        ("NLST", C::Nlst(None)),
        ("NLST sub", C::Nlst(Some(p("sub")))),
        ("SITE CHMOD 644 x", C::Site(t("CHMOD 644 x"))),
        ("SYST", C::Syst),
        ("STAT", C::Stat(None)),
        ("STAT /pub", C::Stat(Some(p("/pub")))),
        ("HELP", C::Help(None)),
        ("HELP RETR", C::Help(Some(t("RETR")))),
        ("NOOP", C::Noop),
        ("AUTH TLS", C::Auth(Token::new("TLS").unwrap())),
        ("AUTH SSL", C::Auth(Token::new("ssl").unwrap())),
        ("ADAT Zm9v", C::Adat(t("Zm9v"))),
        ("PROT P", C::Prot(ProtectionLevel::Private)),
        ("PROT C", C::Prot(ProtectionLevel::Clear)),
        ("PROT S", C::Prot(ProtectionLevel::Safe)),
        ("PROT E", C::Prot(ProtectionLevel::Confidential)),
        ("PBSZ 0", C::Pbsz(0)),
        ("CCC", C::Ccc),
        ("MIC abc", C::Mic(t("abc"))),
        ("CONF abc", C::Conf(t("abc"))),
        ("ENC abc", C::Enc(t("abc"))),
        ("FEAT", C::Feat),
        (
            "OPTS UTF8 ON",
            C::Opts {
                name: Token::new("UTF8").unwrap(),
                value: Some(t("ON")),
            },
        ),
        (
            "OPTS MLST type;size;",
            C::Opts {
                name: Token::new("MLST").unwrap(),
                value: Some(t("type;size;")),
            },
        ),
        (
            "OPTS MLST",
            C::Opts {
                name: Token::new("MLST").unwrap(),
                value: None,
            },
        ),
        (
            "EPRT |1|132.235.1.2|6275|",
            C::Eprt("132.235.1.2:6275".parse().unwrap()),
        ),
        ("EPRT |2|::1|2121|", C::Eprt("[::1]:2121".parse().unwrap())),
        ("EPSV", C::Epsv(EpsvMode::Any)),
        ("EPSV 1", C::Epsv(EpsvMode::Ipv4)),
        ("EPSV 2", C::Epsv(EpsvMode::Ipv6)),
        ("EPSV ALL", C::Epsv(EpsvMode::All)),
        ("SIZE big.iso", C::Size(p("big.iso"))),
        ("MDTM hello.txt", C::Mdtm(p("hello.txt"))),
        ("MLST", C::Mlst(None)),
        ("MLST hello.txt", C::Mlst(Some(p("hello.txt")))),
        ("MLSD", C::Mlsd(None)),
        ("MLSD sub", C::Mlsd(Some(p("sub")))),
        (
            "MFMT 20190304050607 hello.txt",
            C::Mfmt {
                modified: Timestamp::parse("20190304050607").unwrap(),
                path: p("hello.txt"),
            },
        ),
        ("LANG", C::Lang(None)),
        ("LANG ja", C::Lang(Some(t("ja")))),
        ("HOST ftp.example.com", C::Host(t("ftp.example.com"))),
    ]
}

#[test]
fn every_verb_parses_and_encodes() {
    let table = table();
    for (line, value) in &table {
        assert_eq!(
            &Command::parse(line.as_bytes()).unwrap(),
            value,
            "parse {line}"
        );
        assert_eq!(
            value.to_bytes(),
            format!("{line}\r\n").into_bytes(),
            "encode {line}"
        );
    }
    // The list: RFC 959, 2228, 2389, 2428, 3659, 2640, 7151, MFMT.
    let verbs = "USER PASS ACCT CWD CDUP SMNT REIN QUIT PORT PASV TYPE STRU MODE RETR STOR STOU APPE \
                 ALLO REST RNFR RNTO ABOR DELE RMD MKD PWD LIST NLST SITE SYST STAT HELP NOOP AUTH \
                 ADAT PROT PBSZ CCC MIC CONF ENC FEAT OPTS EPRT EPSV SIZE MDTM MLST MLSD LANG HOST MFMT";
    for verb in verbs.split_whitespace() {
        assert!(
            table.iter().any(|(_, c)| c.verb() == verb),
            "no test for {verb}"
        );
    }
}

#[test]
fn verbs_are_case_insensitive_and_aliases_map() {
    let cases = [
        ("retr x", "RETR x"),
        ("Retr x", "RETR x"),
        ("xcwd /a", "CWD /a"),
        ("XCUP", "CDUP"),
        ("XMKD d", "MKD d"),
        ("xrmd d", "RMD d"),
        ("XPWD", "PWD"),
        ("type i", "TYPE I"),
        ("prot p", "PROT P"),
        ("epsv all", "EPSV ALL"),
        ("auth tls", "AUTH TLS"),
        ("opts utf8 ON", "OPTS UTF8 ON"),
        ("PWD ", "PWD"),
        ("LIST ", "LIST"),
        ("PASS", "PASS "),
        ("REST  5 ", "REST 5"),
    ];
    for (input, canonical) in cases {
        let cmd = Command::parse(input.as_bytes()).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            cmd.to_bytes(),
            format!("{canonical}\r\n").into_bytes(),
            "{input}"
        );
    }
}

#[test]
fn errors_map_to_reply_codes() {
    let cases: &[(&[u8], u16)] = &[
        (b"", 500),
        (b" NOOP", 500),
        (b"XYZZY", 500),
        (b"NO0P", 500),
        (b"USER\tx", 500),
        (b"USER", 501),
        (b"RETR", 501),
        (b"RETR ", 501),
        (b"NOOP now", 501),
        (b"PORT 1,2,3", 501),
        (b"PORT 127,0,0,1,300,1", 501),
        (b"REST -1", 501),
        (b"REST 18446744073709551616", 501),
        (b"REST 1e3", 501),
        (b"PBSZ x", 501),
        (b"MFMT 2019 x", 501),
        (b"MFMT 20190230000000 x", 501),
        (b"EPSV 3", 522),
        (b"EPSV foo", 501),
        (b"EPRT |3|x|1|", 522),
        (b"EPRT |1|999.1.1.1|1|", 501),
        (b"TYPE X", 504),
        (b"TYPE A Q", 504),
        (b"MODE Z", 504),
        (b"STRU Q", 504),
        (b"PROT Z", 504),
        (b"PROT PP", 504),
        (b"RETR a\xffb", 501),
        (b"RETR a\0b", 501),
        (b"RETR a\rDELE b", 501),
        (b"CWD \xc3\x28", 501),
    ];
    for (line, code) in cases {
        let err = Command::parse(line).expect_err(&String::from_utf8_lossy(line));
        assert_eq!(
            err.reply_code().get(),
            *code,
            "{:?}: {err}",
            String::from_utf8_lossy(line)
        );
    }
    let unknown = Command::parse(b"SOMEVERYLONGUNKNOWNVERBNAME x").unwrap_err();
    assert_eq!(unknown.kind(), &CommandErrorKind::UnknownVerb);
    assert!(unknown.verb().unwrap().len() <= 16);
}

#[test]
fn pathnames_cannot_inject_commands() {
    assert!(Pathname::new("x\r\nDELE important").is_err());
    assert!(Text::new("CHMOD 777 x\nRMD /").is_err());
    assert!(Username::new("a\r\nPASS b").is_err());
    // A value that made it into a Command always encodes to exactly one line.
    for (_, value) in table() {
        let bytes = value.to_bytes();
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(!bytes[..bytes.len() - 2].contains(&b'\r'));
    }
}

#[test]
fn display_and_debug_hide_passwords() {
    let cmd = Command::parse(b"PASS hunter2").unwrap();
    assert_eq!(cmd.to_string(), "PASS ****");
    assert!(!format!("{cmd:?}").contains("hunter2"));
    assert_eq!(Command::parse(b"RETR a b").unwrap().to_string(), "RETR a b");
}
