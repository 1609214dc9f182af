//! LIST lines: the `ls -l` form of Unix servers, the MS-DOS form of IIS, and EPLF.
//!
//! LIST output is not standardised (RFC 959 §4.1.3 leaves it to the server); these are the
//! forms met in the field:
//!
//! ```text
//! unix = perms SP links SP owner [SP group] SP (size | major "," SP minor) SP date SP name
//!        date = month SP day SP (year | hh ":" mm)          ; "Mar 04  2019", "Nov 22 02:40"
//!        name = ... [" -> " target]                         ; symbolic links
//! dos  = mm "-" dd "-" yy[yy] SP+ hh ":" mm ("AM" | "PM") SP+ ("<DIR>" | size) SP+ name
//! eplf = "+" fact *("," fact) "," TAB name                  ; D. J. Bernstein's EPLF
//! ```
//!
//! The Unix form is read by finding the date (a month name, a day, then a year or a time)
//! and taking the tokens before it, so listings with no group column, ACL markers (`+`,
//! `@`), device numbers or wide columns all parse. The name is everything after the single
//! space that follows the date, so names with spaces survive.

use crate::error::ParseError;
use crate::time::Timestamp;
use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, tag_no_case, take_while_m_n, take_while1},
    character::complete::{char, space1},
    combinator::{map, map_res, rest},
};

/// What kind of directory entry a line describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A device, socket, pipe or anything else.
    Other,
}

/// The date of an entry as the listing gave it. `ls -l` omits the year for dates within
/// the last six months and the time of day for older ones; see
/// [`ListTime::resolve_year`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListTime {
    /// The year, if the listing gave one.
    pub year: Option<u16>,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 31.
    pub day: u8,
    /// Hour, minute and second, if the listing gave a time (the second is 0 unless the
    /// format carries one).
    pub time: Option<(u8, u8, u8)>,
}

impl ListTime {
    /// Fills in a missing year the way `ls` chose to omit it: the date lies within the six
    /// months before `now`, so it is in `now`'s year unless that would put it more than a
    /// day in the future.
    pub fn resolve_year(&self, now: &Timestamp) -> u16 {
        if let Some(year) = self.year {
            return year;
        }
        let this_year = now.year();
        let ahead = (self.month, self.day) > (now.month(), now.day().saturating_add(1));
        if ahead {
            this_year.saturating_sub(1)
        } else {
            this_year
        }
    }

    /// The date as a [`Timestamp`], with [`resolve_year`](Self::resolve_year) for a
    /// missing year and midnight for a missing time. `None` if the date is impossible.
    pub fn to_timestamp(&self, now: &Timestamp) -> Option<Timestamp> {
        let (h, m, s) = self.time.unwrap_or((0, 0, 0));
        Timestamp::new(self.resolve_year(now), self.month, self.day, h, m, s, 0).ok()
    }
}

/// One entry of a LIST listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The name, as listed (for symbolic links, without the ` -> target` part).
    pub name: String,
    /// The kind of entry.
    pub kind: EntryKind,
    /// The size in bytes, when listed (not for devices or DOS directories).
    pub size: Option<u64>,
    /// The modification date, when listed.
    pub modified: Option<ListTime>,
    /// The permission string of the Unix form (e.g. `-rw-r--r--`), or `up<octal>` of EPLF.
    pub permissions: Option<String>,
    /// The owner column of the Unix form.
    pub owner: Option<String>,
    /// The group column of the Unix form, when present.
    pub group: Option<String>,
    /// The target of a symbolic link, when listed.
    pub link_target: Option<String>,
    /// The name's bytes as the server sent them, when they are not UTF-8 (`name` then
    /// holds them decoded lossily): what fetches the file back. Set by the client's
    /// listing parser ([`crate::client::listing::parse_list`]), which sees the bytes.
    pub raw_name: Option<Vec<u8>>,
}

impl ListEntry {
    fn new(name: &str, kind: EntryKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            size: None,
            modified: None,
            permissions: None,
            owner: None,
            group: None,
            link_target: None,
            raw_name: None,
        }
    }

    /// The name as the server sent it: [`raw_name`](Self::raw_name) if set, else `name`.
    /// Give it to the client's calls to reach the entry.
    pub fn name_bytes(&self) -> &[u8] {
        self.raw_name.as_deref().unwrap_or(self.name.as_bytes())
    }

    /// Parses one LIST line (without its line ending) in any of the supported forms.
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.starts_with('+') {
            return parse_eplf(line);
        }
        if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return parse_dos(line);
        }
        parse_unix(line)
    }
}

/// The names of an NLST answer (RFC 959 §4.1.3): one per line, CRLF or LF, empty lines
/// skipped.
pub fn parse_nlst(raw: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(raw)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Parses a whole listing: one entry per line, skipping blank lines and the `total N`
/// line of `ls`. Lines that parse in no known form are returned as errors in place.
pub fn parse_listing(text: &str) -> impl Iterator<Item = Result<ListEntry, ParseError>> + '_ {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !is_total_line(l))
        .map(ListEntry::parse)
}

fn is_total_line(line: &str) -> bool {
    line.strip_prefix("total ")
        .is_some_and(|n| !n.is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()))
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month(token: &str) -> Option<u8> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(token))
        .map(|i| i as u8 + 1)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `hh:mm` (one or two digits for the hour).
fn clock(input: &str) -> IResult<&str, (u8, u8)> {
    let (rest, (h, _, m)) = (
        map_res(
            take_while_m_n(1, 2, |c: char| c.is_ascii_digit()),
            str::parse::<u8>,
        ),
        char(':'),
        map_res(
            take_while_m_n(2, 2, |c: char| c.is_ascii_digit()),
            str::parse::<u8>,
        ),
    )
        .parse(input)?;
    Ok((rest, (h, m)))
}

/// Reads `month day year-or-time` from three tokens.
fn unix_date(mon: &str, day: &str, last: &str) -> Option<ListTime> {
    let month = month(mon)?;
    let day: u8 = day
        .parse()
        .ok()
        .filter(|d| (1..=31).contains(d) && all_digits(day))?;
    if last.len() == 4 && all_digits(last) {
        return Some(ListTime {
            year: last.parse().ok(),
            month,
            day,
            time: None,
        });
    }
    match clock(last) {
        Ok(("", (h, m))) if h < 24 && m < 60 => Some(ListTime {
            year: None,
            month,
            day,
            time: Some((h, m, 0)),
        }),
        _ => None,
    }
}

fn permissions(token: &str) -> Option<EntryKind> {
    let bytes = token.as_bytes();
    if !(10..=11).contains(&bytes.len()) {
        return None;
    }
    let kind = match bytes[0] {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Directory,
        b'l' => EntryKind::Symlink,
        b'c' | b'b' | b'p' | b's' | b'D' | b'n' | b'?' => EntryKind::Other,
        _ => return None,
    };
    let modes_ok = bytes[1..10].iter().all(|b| b"rwxsStTlL-".contains(b));
    let marker_ok = bytes.len() == 10 || b"+@.".contains(&bytes[10]);
    (modes_ok && marker_ok).then_some(kind)
}

fn parse_unix(line: &str) -> Result<ListEntry, ParseError> {
    let err = |reason| ParseError::new("LIST line", reason);
    // Tokens with their end offsets.
    let mut tokens: Vec<(&str, usize)> = Vec::new();
    let mut offset = 0;
    for part in line.split(' ') {
        let end = offset + part.len();
        if !part.is_empty() {
            tokens.push((part, end));
        }
        offset = end + 1;
        if tokens.len() >= 12 {
            break;
        }
    }
    let (perms, _) = tokens.first().ok_or(err("is empty"))?;
    let kind = permissions(perms).ok_or(err("no Unix permission string"))?;
    // The date: the first month token from index 3 on with a day and a year or time after
    // it and a size (or a device minor number) before it.
    let date_at = (3..tokens.len().saturating_sub(2))
        .find(|&i| {
            unix_date(tokens[i].0, tokens[i + 1].0, tokens[i + 2].0).is_some()
                && all_digits(tokens[i - 1].0)
        })
        .ok_or(err("no date"))?;
    let modified = unix_date(
        tokens[date_at].0,
        tokens[date_at + 1].0,
        tokens[date_at + 2].0,
    );
    let name_start = tokens[date_at + 2].1 + 1;
    let full_name = line
        .get(name_start..)
        .filter(|n| !n.is_empty())
        .ok_or(err("no name"))?;

    // Before the date: links, owner, [group], size or "major, minor".
    let before = &tokens[1..date_at];
    let is_device = date_at >= 2 && tokens[date_at - 2].0.ends_with(',');
    let size_index = if is_device {
        before.len() - 2
    } else {
        before.len() - 1
    };
    let size = if is_device {
        None
    } else {
        before[size_index].0.parse().ok()
    };
    let columns = &before[..size_index];
    let (owner, group) = match columns {
        [links, owner, group, ..] if all_digits(links.0) => (Some(owner.0), Some(group.0)),
        [links, owner] if all_digits(links.0) => (Some(owner.0), None),
        [owner, group] => (Some(owner.0), Some(group.0)),
        [owner] => (Some(owner.0), None),
        _ => (None, None),
    };

    let (name, link_target) = match (kind, full_name.split_once(" -> ")) {
        (EntryKind::Symlink, Some((name, target))) => (name, Some(target.to_owned())),
        _ => (full_name, None),
    };
    Ok(ListEntry {
        size,
        modified,
        permissions: Some((*perms).to_owned()),
        owner: owner.map(str::to_owned),
        group: group.map(str::to_owned),
        link_target,
        ..ListEntry::new(name, kind)
    })
}

/// `MM-DD-YY` or `MM-DD-YYYY`.
fn dos_date(input: &str) -> IResult<&str, (u16, u8, u8)> {
    let two = |i| {
        map_res(
            take_while_m_n(2, 2, |c: char| c.is_ascii_digit()),
            str::parse::<u8>,
        )
        .parse(i)
    };
    let (rest, (m, _, d, _, y)) = (
        two,
        char('-'),
        two,
        char('-'),
        take_while1(|c: char| c.is_ascii_digit()),
    )
        .parse(input)?;
    let year = match y.len() {
        // The usual pivot: 70-99 are 19xx, 00-69 are 20xx.
        2 => y
            .parse::<u16>()
            .map(|v| if v < 70 { 2000 + v } else { 1900 + v }),
        4 => y.parse::<u16>(),
        _ => {
            return Err(nom::Err::Error(nom::error::Error::new(
                input,
                nom::error::ErrorKind::Digit,
            )));
        }
    }
    .map_err(|_| nom::Err::Error(nom::error::Error::new(input, nom::error::ErrorKind::Digit)))?;
    Ok((rest, (year, m, d)))
}

/// `hh:mmAM` / `hh:mmPM`, converted to 24 hours.
fn dos_time(input: &str) -> IResult<&str, (u8, u8)> {
    let (rest, ((h, m), pm)) = (
        clock,
        alt((
            map(tag_no_case("AM"), |_| false),
            map(tag_no_case("PM"), |_| true),
        )),
    )
        .parse(input)?;
    if !(1..=12).contains(&h) || m > 59 {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Verify,
        )));
    }
    Ok((rest, (h % 12 + if pm { 12 } else { 0 }, m)))
}

fn parse_dos(line: &str) -> Result<ListEntry, ParseError> {
    let size_or_dir = alt((
        map(tag("<DIR>"), |_| None),
        map(
            map_res(take_while1(|c: char| c.is_ascii_digit()), str::parse::<u64>),
            Some,
        ),
    ));
    let parsed: IResult<&str, _> = (
        dos_date,
        space1,
        dos_time,
        space1,
        size_or_dir,
        char(' '),
        rest,
    )
        .parse(line);
    let (_, ((year, month, day), _, (hour, minute), _, size, _, name)) =
        parsed.map_err(|_| ParseError::new("LIST line", "not in the MS-DOS form"))?;
    let name = name.trim_start();
    if name.is_empty() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(ParseError::new("LIST line", "bad MS-DOS date or no name"));
    }
    let kind = if size.is_none() {
        EntryKind::Directory
    } else {
        EntryKind::File
    };
    Ok(ListEntry {
        size,
        modified: Some(ListTime {
            year: Some(year),
            month,
            day,
            time: Some((hour, minute, 0)),
        }),
        ..ListEntry::new(name, kind)
    })
}

fn parse_eplf(line: &str) -> Result<ListEntry, ParseError> {
    let err = |reason| ParseError::new("EPLF line", reason);
    let (facts, name) = line[1..]
        .split_once('\t')
        .ok_or(err("no TAB before the name"))?;
    if name.is_empty() {
        return Err(err("no name"));
    }
    let mut entry = ListEntry::new(name, EntryKind::Other);
    let (mut dir, mut file) = (false, false);
    for fact in facts.split(',').filter(|f| !f.is_empty()) {
        match fact.as_bytes()[0] {
            b'/' => dir = true,
            b'r' => file = true,
            b's' => entry.size = Some(fact[1..].parse().map_err(|_| err("bad size"))?),
            b'm' => {
                let secs: i64 = fact[1..].parse().map_err(|_| err("bad time"))?;
                let t = Timestamp::from_unix(secs).ok_or(err("time out of range"))?;
                entry.modified = Some(ListTime {
                    year: Some(t.year()),
                    month: t.month(),
                    day: t.day(),
                    time: Some((t.hour(), t.minute(), t.second())),
                });
            }
            b'u' if fact.starts_with("up") => entry.permissions = Some(fact.to_owned()),
            _ => {}
        }
    }
    entry.kind = match (dir, file) {
        (true, _) => EntryKind::Directory,
        (false, true) => EntryKind::File,
        _ => EntryKind::Other,
    };
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_forms() {
        let e =
            ListEntry::parse("-rw-r--r--    1 1001     1001           24 Mar 04  2019 hello.txt")
                .unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size),
            ("hello.txt", EntryKind::File, Some(24))
        );
        assert_eq!(
            e.modified,
            Some(ListTime {
                year: Some(2019),
                month: 3,
                day: 4,
                time: None
            })
        );
        assert_eq!(
            (e.owner.as_deref(), e.group.as_deref()),
            (Some("1001"), Some("1001"))
        );

        let l = ListEntry::parse(
            "lrwxrwxrwx   1 alice    alice           9 Nov 22 02:40 link-to-hello -> hello.txt",
        )
        .unwrap();
        assert_eq!(
            (l.name.as_str(), l.kind),
            ("link-to-hello", EntryKind::Symlink)
        );
        assert_eq!(l.link_target.as_deref(), Some("hello.txt"));
        assert_eq!(l.modified.unwrap().time, Some((2, 40, 0)));

        let s = ListEntry::parse(
            "-rw-r--r--   1 alice    alice           3 Nov 22 02:40 with space.txt",
        )
        .unwrap();
        assert_eq!(s.name, "with space.txt");

        let d = ListEntry::parse("crw-rw-rw-    1 0        0          1,   3 Jan 01  2024 null")
            .unwrap();
        assert_eq!(
            (d.kind, d.size, d.name.as_str()),
            (EntryKind::Other, None, "null")
        );

        let g =
            ListEntry::parse("-rw-r--r--    1 user          123 Mar 01 12:00 no-group-column.txt")
                .unwrap();
        assert_eq!(
            (g.owner.as_deref(), g.group, g.size),
            (Some("user"), None, Some(123))
        );

        let a = ListEntry::parse(
            "drwxr-xr-x+   3 user     group        4096 Mar 01 12:00 dir-with-acl",
        )
        .unwrap();
        assert_eq!(
            (a.kind, a.name.as_str()),
            (EntryKind::Directory, "dir-with-acl")
        );

        let sp = ListEntry::parse(
            "lrwxrwxrwx    1 user     group          11 Mar 01 12:00 spaced name -> target file",
        )
        .unwrap();
        assert_eq!(
            (sp.name.as_str(), sp.link_target.as_deref()),
            ("spaced name", Some("target file"))
        );

        // A file named like a date stays whole.
        let tricky = ListEntry::parse("-rw-r--r--   1 a b 5 Jan  1  2020 Feb 2 2021 x").unwrap();
        assert_eq!(tricky.name, "Feb 2 2021 x");
    }

    #[test]
    fn dos_forms() {
        let d = ListEntry::parse("01-04-20  03:15PM       <DIR>          Backups").unwrap();
        assert_eq!((d.kind, d.name.as_str()), (EntryKind::Directory, "Backups"));
        assert_eq!(
            d.modified,
            Some(ListTime {
                year: Some(2020),
                month: 1,
                day: 4,
                time: Some((15, 15, 0))
            })
        );
        let f = ListEntry::parse("02-29-24  12:00AM           5368709120 big image.iso").unwrap();
        assert_eq!(
            (f.size, f.name.as_str()),
            (Some(5_368_709_120), "big image.iso")
        );
        assert_eq!(f.modified.unwrap().time, Some((0, 0, 0)));
        let old =
            ListEntry::parse("07-01-99  11:59PM                    0 empty file.txt").unwrap();
        assert_eq!(old.modified.unwrap().year, Some(1999));
        let four = ListEntry::parse("11-22-2026  09:05AM                 1024 report.csv").unwrap();
        assert_eq!(four.modified.unwrap().year, Some(2026));
    }

    #[test]
    fn eplf_forms() {
        let d = ListEntry::parse("+i8388621.29609,m824255902,/,\tdev").unwrap();
        assert_eq!((d.kind, d.name.as_str()), (EntryKind::Directory, "dev"));
        let f = ListEntry::parse("+i8388621.44468,m839956783,r,s10376,\tRFCEPLF").unwrap();
        assert_eq!((f.kind, f.size), (EntryKind::File, Some(10376)));
        let p = ListEntry::parse("+m1700000000,r,s0,up644,\tempty").unwrap();
        assert_eq!(p.permissions.as_deref(), Some("up644"));
    }

    #[test]
    fn year_resolution() {
        let now = Timestamp::parse("20261122030000").unwrap();
        let recent = ListTime {
            year: None,
            month: 11,
            day: 22,
            time: Some((2, 40, 0)),
        };
        assert_eq!(recent.resolve_year(&now), 2026);
        let last_year = ListTime {
            year: None,
            month: 12,
            day: 24,
            time: Some((1, 0, 0)),
        };
        assert_eq!(last_year.resolve_year(&now), 2025);
    }

    #[test]
    fn garbage_is_an_error() {
        for line in [
            "",
            "hello",
            "-rw-r--r-- 1 a b 5",
            "+nofacts",
            "13-45-20 01:00PM 1 x",
            "total 12x",
        ] {
            assert!(ListEntry::parse(line).is_err(), "{line}");
        }
        assert_eq!(
            parse_listing("total 8\r\n\r\n-rw-r--r-- 1 a b 5 Jan  1  2020 x\r\n").count(),
            1
        );
    }
}
