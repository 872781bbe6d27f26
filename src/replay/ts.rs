//! Timestamp cells of recorded CSV files → milliseconds since the Unix epoch.
//!
//! Accepted forms (surrounding whitespace ignored):
//! - a date and time, `2014-04-10 00:00:00` (NAB, SKAB) or `2014-04-10T00:00:00` (ISO 8601),
//!   seconds optional, any number of fractional digits (truncated to ms), followed by an
//!   optional zone: `Z`, `+hh:mm`, `+hhmm` or `+hh` (also `-`). **Without a zone it is UTC.**
//!   A bare date, `2014-04-10`, is midnight UTC.
//! - a number of seconds or ms since the epoch (integer, or decimal for fractions), told apart
//!   by magnitude: below 10^11 it is seconds (10^11 s is the year 5138), from 10^11 on it is
//!   ms (10^11 ms is 1973-03-03). Millisecond stamps before March 1973 are therefore read as
//!   seconds; write those as dates.
//!
//! Design constraints: no allocation per cell, nothing here panics on any input.

use chrono::{NaiveDate, NaiveDateTime};

/// Epoch numbers below this are seconds, from here on milliseconds.
pub const SECONDS_BELOW: f64 = 1e11;

/// The timestamp of `cell` in ms since the epoch, or `None` when it is none of the accepted
/// forms (module docs).
pub fn parse_ms(cell: &str) -> Option<i64> {
    let s = cell.trim();
    if s.is_empty() {
        return None;
    }
    // A date has its first dash at byte 4 (four-digit years); an epoch number never does.
    if s.as_bytes().get(4) == Some(&b'-') {
        datetime(s)
    } else {
        epoch(s)
    }
}

/// An epoch number, seconds or ms by magnitude.
fn epoch(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return if (n.unsigned_abs() as f64) < SECONDS_BELOW {
            n.checked_mul(1000)
        } else {
            Some(n)
        };
    }
    let x = s.parse::<f64>().ok().filter(|x| x.is_finite())?;
    let ms = if x.abs() < SECONDS_BELOW {
        x * 1000.0
    } else {
        x
    };
    // Within ±2^53 ms (±285 000 years) every integer is exact.
    (ms.abs() < 9.0e15).then(|| ms.floor() as i64)
}

/// A date-time with an optional zone suffix.
fn datetime(s: &str) -> Option<i64> {
    let (local, offset_s) = split_zone(s)?;
    let naive = naive(local)?;
    naive
        .and_utc()
        .timestamp_millis()
        .checked_sub(offset_s * 1000)
}

/// The date-time part and the zone's offset from UTC in seconds (0 without a zone).
fn split_zone(s: &str) -> Option<(&str, i64)> {
    if let Some(rest) = s.strip_suffix(['Z', 'z']) {
        return Some((rest, 0));
    }
    // The date's own dashes are at bytes 4 and 7; a sign after the time part is an offset.
    let Some(at) = s.rfind(['+', '-']).filter(|&i| i > 10) else {
        return Some((s, 0));
    };
    let (local, zone) = s.split_at(at);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits = &zone[1..];
    let (h, m) = match digits.len() {
        2 => (digits, "0"),
        4 => digits.split_at(2),
        5 if digits.as_bytes()[2] == b':' => (&digits[..2], &digits[3..]),
        _ => return None,
    };
    let h: i64 = h.parse().ok().filter(|h| *h <= 23)?;
    let m: i64 = m.parse().ok().filter(|m| *m <= 59)?;
    Some((local.trim_end(), sign * (h * 3600 + m * 60)))
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fff…]]]`.
fn naive(s: &str) -> Option<NaiveDateTime> {
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0));
    }
    FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2014-04-10T00:00:00Z.
    const APR10: i64 = 1_397_088_000_000;

    #[test]
    fn nab_and_skab_layouts_are_utc() {
        assert_eq!(parse_ms("2014-04-10 00:00:00"), Some(APR10));
        assert_eq!(parse_ms(" 2014-04-10 00:00:00 "), Some(APR10));
        // SKAB: 2020-03-09 10:14:33 UTC.
        assert_eq!(parse_ms("2020-03-09 10:14:33"), Some(1_583_748_873_000));
    }

    #[test]
    fn iso_8601_with_fractions_and_zones() {
        assert_eq!(parse_ms("2014-04-10T00:00:00"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T00:00:00Z"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T00:00:00z"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T00:00:00.123Z"), Some(APR10 + 123));
        assert_eq!(parse_ms("2014-04-10 00:00:00.5"), Some(APR10 + 500));
        assert_eq!(parse_ms("2014-04-10T00:00:00.123456789"), Some(APR10 + 123));
        assert_eq!(parse_ms("2014-04-10T02:00:00+02:00"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T02:00:00+0200"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T02:00:00+02"), Some(APR10));
        assert_eq!(parse_ms("2014-04-09T19:30:00-04:30"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10 02:00:00 +02:00"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10T00:00"), Some(APR10));
        assert_eq!(parse_ms("2014-04-10 00:01"), Some(APR10 + 60_000));
        assert_eq!(parse_ms("2014-04-10"), Some(APR10));
    }

    #[test]
    fn epoch_seconds_and_ms_by_magnitude() {
        assert_eq!(parse_ms("1397088000"), Some(APR10));
        assert_eq!(parse_ms("1397088000000"), Some(APR10));
        assert_eq!(parse_ms("1397088000.25"), Some(APR10 + 250));
        assert_eq!(parse_ms("1397088000123.0"), Some(APR10 + 123));
        assert_eq!(parse_ms("0"), Some(0));
        // Just below the boundary: seconds; at it: ms.
        assert_eq!(parse_ms("99999999999"), Some(99_999_999_999_000));
        assert_eq!(parse_ms("100000000000"), Some(100_000_000_000));
        // A 10-digit epoch is not mistaken for a date.
        assert_eq!(parse_ms("1583748873"), Some(1_583_748_873_000));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "  ",
            "yesterday",
            "2014-13-10 00:00:00",
            "2014-04-31 00:00:00",
            "2014-04-10 25:00:00",
            "2014-04-10T00:00:00+25:00",
            "2014-04-10T00:00:00+02:0",
            "10/04/2014 00:00",
            "NaN",
            "inf",
            "1e400",
            "99999999999999999999999",
            "2014-04-10 00:00:00 junk",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?}");
        }
    }
}
