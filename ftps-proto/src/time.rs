//! Timestamps as FTP writes them: `YYYYMMDDHHMMSS[.sss]`, always UTC.
//!
//! RFC 3659 §2.3 defines `time-val = 14DIGIT [ "." 1*DIGIT ]` for MDTM replies, the
//! `modify`/`create` facts of MLSx, and (draft-somers-ftp-mfxx) the MFMT argument.

use crate::error::ParseError;
use nom::{
    IResult, Parser,
    bytes::complete::{take_while_m_n, take_while1},
    character::complete::char,
    combinator::{all_consuming, map_res, opt},
    sequence::preceded,
};
use std::fmt;

/// A UTC date and time with up to nanosecond precision. The fields are validated: a value
/// of this type is always a real calendar date (a leap second, `:60`, is allowed as RFC
/// 3659 allows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    nanosecond: u32,
}

const WHAT: &str = "timestamp";

pub(crate) fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

impl Timestamp {
    /// Builds a timestamp, checking every field (years 0 to 9999).
    pub fn new(
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        nanosecond: u32,
    ) -> Result<Self, ParseError> {
        if year > 9999 {
            return Err(ParseError::new(WHAT, "year past 9999"));
        }
        if !(1..=12).contains(&month) {
            return Err(ParseError::new(WHAT, "month out of range"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(ParseError::new(WHAT, "day out of range"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(ParseError::new(WHAT, "time of day out of range"));
        }
        if nanosecond >= 1_000_000_000 {
            return Err(ParseError::new(WHAT, "fraction out of range"));
        }
        Ok(Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanosecond,
        })
    }

    /// Parses `YYYYMMDDHHMMSS` with an optional fraction of up to nine digits (more digits
    /// are refused rather than rounded).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let (_, ts) = all_consuming(time_val)
            .parse(input)
            .map_err(|_| ParseError::new(WHAT, "not YYYYMMDDHHMMSS[.fraction]"))?;
        ts
    }

    /// Converts seconds since the Unix epoch (UTC) to a timestamp; `None` outside years
    /// 0 to 9999.
    pub fn from_unix(seconds: i64) -> Option<Self> {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        Self::new(
            year as u16,
            month,
            day,
            (secs / 3600) as u8,
            (secs % 3600 / 60) as u8,
            (secs % 60) as u8,
            0,
        )
        .ok()
    }

    /// The same instant as a [`SystemTime`](std::time::SystemTime) (to the nanosecond).
    // A conversion: no clock is read (`SystemTime::now` stays disallowed in the core).
    #[allow(clippy::disallowed_types)]
    pub fn to_system_time(&self) -> std::time::SystemTime {
        let epoch = std::time::UNIX_EPOCH;
        let fraction = std::time::Duration::from_nanos(u64::from(self.nanosecond));
        match u64::try_from(self.to_unix()) {
            Ok(after) => epoch + std::time::Duration::from_secs(after) + fraction,
            Err(_) => {
                epoch - std::time::Duration::from_secs(self.to_unix().unsigned_abs()) + fraction
            }
        }
    }

    /// A [`SystemTime`](std::time::SystemTime) as a timestamp (UTC, to the nanosecond);
    /// `None` outside years 0 to 9999.
    #[allow(clippy::disallowed_types)]
    pub fn from_system_time(time: std::time::SystemTime) -> Option<Self> {
        let (seconds, nanosecond) = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => (i64::try_from(d.as_secs()).ok()?, d.subsec_nanos()),
            Err(e) => {
                // Before 1970: whole seconds back, then the fraction forward.
                let d = e.duration();
                let back = i64::try_from(d.as_secs()).ok()?;
                match d.subsec_nanos() {
                    0 => (-back, 0),
                    n => (-back - 1, 1_000_000_000 - n),
                }
            }
        };
        let whole = Self::from_unix(seconds)?;
        Self::new(
            whole.year,
            whole.month,
            whole.day,
            whole.hour,
            whole.minute,
            whole.second,
            nanosecond,
        )
        .ok()
    }

    /// Seconds since the Unix epoch (UTC), ignoring the fraction.
    pub fn to_unix(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The year.
    pub fn year(&self) -> u16 {
        self.year
    }
    /// The month, 1 to 12.
    pub fn month(&self) -> u8 {
        self.month
    }
    /// The day of the month, from 1.
    pub fn day(&self) -> u8 {
        self.day
    }
    /// The hour, 0 to 23.
    pub fn hour(&self) -> u8 {
        self.hour
    }
    /// The minute, 0 to 59.
    pub fn minute(&self) -> u8 {
        self.minute
    }
    /// The second, 0 to 60.
    pub fn second(&self) -> u8 {
        self.second
    }
    /// The fraction of the second in nanoseconds.
    pub fn nanosecond(&self) -> u32 {
        self.nanosecond
    }
}

/// Writes `YYYYMMDDHHMMSS`, then `.` and the fraction without trailing zeros if it is not 0.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.nanosecond != 0 {
            let digits = format!("{:09}", self.nanosecond);
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

fn digits<T: std::str::FromStr>(n: usize) -> impl FnMut(&str) -> IResult<&str, T> {
    move |i| {
        map_res(
            take_while_m_n(n, n, |c: char| c.is_ascii_digit()),
            str::parse::<T>,
        )
        .parse(i)
    }
}

/// `time-val` of RFC 3659 §2.3.
pub(crate) fn time_val(input: &str) -> IResult<&str, Result<Timestamp, ParseError>> {
    let (rest, (year, month, day, hour, minute, second, fraction)) = (
        digits::<u16>(4),
        digits::<u8>(2),
        digits::<u8>(2),
        digits::<u8>(2),
        digits::<u8>(2),
        digits::<u8>(2),
        opt(preceded(
            char('.'),
            take_while1(|c: char| c.is_ascii_digit()),
        )),
    )
        .parse(input)?;
    let nanosecond = match fraction {
        None => Ok(0),
        Some(f) if f.len() <= 9 => {
            Ok(f.parse::<u32>().unwrap_or(0) * 10u32.pow(9 - f.len() as u32))
        }
        Some(_) => Err(ParseError::new(WHAT, "fraction longer than nine digits")),
    };
    let ts = nanosecond.and_then(|ns| Timestamp::new(year, month, day, hour, minute, second, ns));
    Ok((rest, ts))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Timestamp {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let year = u.int_in_range(0..=9999)?;
        let month = u.int_in_range(1..=12)?;
        let day = u.int_in_range(1..=days_in_month(year, month))?;
        Self::new(
            year,
            month,
            day,
            u.int_in_range(0..=23)?,
            u.int_in_range(0..=59)?,
            u.int_in_range(0..=60)?,
            u.int_in_range(0..=999_999_999)?,
        )
        .map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mdtm_values() {
        let t = Timestamp::parse("20190304050607").unwrap();
        assert_eq!((t.year(), t.month(), t.day()), (2019, 3, 4));
        assert_eq!(
            (t.hour(), t.minute(), t.second(), t.nanosecond()),
            (5, 6, 7, 0)
        );
        assert_eq!(t.to_string(), "20190304050607");
        let f = Timestamp::parse("20191231235959.25").unwrap();
        assert_eq!(f.nanosecond(), 250_000_000);
        assert_eq!(f.to_string(), "20191231235959.25");
    }

    #[test]
    fn refuses_impossible_dates() {
        assert!(Timestamp::parse("20190229000000").is_err());
        assert!(Timestamp::parse("20240229000000").is_ok());
        assert!(Timestamp::parse("20191301000000").is_err());
        assert!(Timestamp::parse("2019030405060").is_err());
        assert!(Timestamp::parse("20190304050607.").is_err());
        assert!(Timestamp::parse("20190304050607.1234567890").is_err());
        assert!(Timestamp::parse("20190304250607").is_err());
    }

    #[test]
    fn unix_seconds_round_trip() {
        let t = Timestamp::from_unix(824_255_902).unwrap();
        assert_eq!(t.to_string(), "19960213235822");
        assert_eq!(t.to_unix(), 824_255_902);
        assert_eq!(
            Timestamp::from_unix(0).unwrap().to_string(),
            "19700101000000"
        );
        assert_eq!(
            Timestamp::parse("20261122024025").unwrap().to_unix(),
            1_795_315_225
        );
    }
}

// Conversions: no clock is read (`SystemTime::now` stays disallowed in the core).
#[allow(clippy::disallowed_types)]
impl From<Timestamp> for std::time::SystemTime {
    fn from(t: Timestamp) -> Self {
        t.to_system_time()
    }
}

#[allow(clippy::disallowed_types)]
impl TryFrom<std::time::SystemTime> for Timestamp {
    type Error = ParseError;

    /// Fails outside years 0 to 9999.
    fn try_from(time: std::time::SystemTime) -> Result<Self, ParseError> {
        Timestamp::from_system_time(time)
            .ok_or_else(|| ParseError::new(WHAT, "outside years 0 to 9999"))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_types)]
mod system_time {
    use super::Timestamp;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn round_trips_through_system_time() {
        for (text, unix) in [
            ("19700101000000", 0i64),
            ("20261130195959.123456789", 1_796_068_799),
            ("19691231235959.5", -1),
            ("00000101000000", -62_167_219_200),
            ("99991231235959.999999999", 253_402_300_799),
        ] {
            let t = Timestamp::parse(text).unwrap();
            let s = SystemTime::from(t);
            let whole = match unix {
                u if u >= 0 => UNIX_EPOCH + Duration::from_secs(u as u64),
                u => UNIX_EPOCH - Duration::from_secs(u.unsigned_abs()),
            };
            assert!(s >= whole && s < whole + Duration::from_secs(1), "{text}");
            assert_eq!(Timestamp::try_from(s).unwrap(), t, "{text}");
        }
        let too_late = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert!(Timestamp::try_from(too_late).is_err());
    }
}
