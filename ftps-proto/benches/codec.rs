//! Parser throughput: commands/s, reply lines/s, LIST and MLSD lines/s, framed bytes/s.
//! Run with `cargo xtask bench`.

#![allow(clippy::unwrap_used)] // Tests and benches fail loudly on purpose.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ftps_proto::{Command, LineFramer, ListEntry, MlsxEntry, ReplyDecoder};
use std::hint::black_box;

const COMMANDS: &[&str] = &[
    "USER alice",
    "PASS secret",
    "PBSZ 0",
    "PROT P",
    "TYPE I",
    "PWD",
    "CWD /pub/日本語",
    "EPSV",
    "PASV",
    "PORT 127,0,0,1,117,94",
    "EPRT |2|::1|2121|",
    "REST 1048576",
    "RETR with space.txt",
    "STOR upload/new.bin",
    "MLSD",
    "MFMT 20190304050607 hello.txt",
];

const LIST: &[&str] = &[
    "-rw-r--r--    1 1001     1001           24 Mar 04  2019 hello.txt",
    "lrwxrwxrwx    1 1001     1001            9 Nov 22 02:40 link-to-hello -> hello.txt",
    "-rw-r--r--    1 1001     1001            4 Dec 31  2019 old-2019.txt",
    "-rw-r--r--    1 1001     1001     104857600 Nov 22 02:36 rand100M.bin",
    "drwxr-xr-x    2 1001     1001         4096 Nov 22 02:36 sub",
    "-rw-r--r--    1 1001     1001            3 Nov 22 02:40 with space.txt",
    "01-04-20  03:15PM       <DIR>          Backups",
    "+i8388621.44468,m839956783,r,s10376,\tRFCEPLF",
];

const MLSD: &[&str] = &[
    "modify=20261122023657;perm=adfrw;size=104857600;type=file;unique=FE00U5108DF;UNIX.group=1001;UNIX.mode=0644; rand100M.bin",
    "type=dir;sizd=4096;modify=20261122024025;UNIX.mode=0755;UNIX.uid=1001;UNIX.gid=1001;unique=fe00g51226f; sub",
    "modify=20190304050607;perm=radfwMT;size=24;type=file;unique=fe00g5108de; hello.txt",
];

fn reply_stream() -> (Vec<u8>, u64) {
    let one = "220 (vsFTPd 3.0.3)\r\n331 Please specify the password.\r\n230 Login successful.\r\n\
               211-Features:\r\n AUTH TLS\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n PBSZ\r\n PROT\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n\
               229 Entering Extended Passive Mode (|||30099|)\r\n150 Here comes the directory listing.\r\n226 Directory send OK.\r\n";
    let lines = one.matches("\r\n").count() as u64;
    (one.repeat(100).into_bytes(), lines * 100)
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");

    group.throughput(Throughput::Elements(COMMANDS.len() as u64));
    group.bench_function("command parse", |b| {
        b.iter(|| {
            for line in COMMANDS {
                black_box(Command::parse(black_box(line.as_bytes())).ok());
            }
        })
    });

    let commands: Vec<Command> = COMMANDS
        .iter()
        .map(|l| Command::parse(l.as_bytes()).unwrap())
        .collect();
    group.bench_function("command encode", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            for cmd in &commands {
                cmd.encode(&mut out);
            }
            black_box(out.len())
        })
    });

    let wire: Vec<u8> = COMMANDS
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect::<Vec<u8>>()
        .repeat(64);
    group.throughput(Throughput::Elements((COMMANDS.len() * 64) as u64));
    group.bench_function("framer + command parse", |b| {
        b.iter(|| {
            let mut framer = LineFramer::default();
            let mut input = &wire[..];
            while let (used, Some(line)) = framer.decode(input) {
                input = &input[used..];
                black_box(Command::parse(&line.unwrap()).ok());
            }
        })
    });

    let (replies, reply_lines) = reply_stream();
    group.throughput(Throughput::Elements(reply_lines));
    group.bench_function("reply lines decode", |b| {
        b.iter(|| {
            let mut decoder = ReplyDecoder::default();
            let mut input = &replies[..];
            while let (used, Some(reply)) = decoder.decode(input) {
                input = &input[used..];
                black_box(reply.ok());
            }
        })
    });

    group.throughput(Throughput::Elements(LIST.len() as u64));
    group.bench_function("LIST lines parse", |b| {
        b.iter(|| {
            for line in LIST {
                black_box(ListEntry::parse(black_box(line)).ok());
            }
        })
    });

    group.throughput(Throughput::Elements(MLSD.len() as u64));
    group.bench_function("MLSD lines parse", |b| {
        b.iter(|| {
            for line in MLSD {
                black_box(MlsxEntry::parse(black_box(line)).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(codec, benches);
criterion_main!(codec);
