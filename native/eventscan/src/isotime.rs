//! The common forms of an event's `time`, read as `utils/timeparse.parse_event_time` reads them.
//!
//! Taken: `YYYY-MM-DDTHH:MM:SS`, with `T` or a space between date and time, an optional fraction
//! of 1 to 6 digits, and an optional zone that is exactly `+00:00` or `Z` (all UTC, so the value is
//! the one written). Python's `datetime.fromisoformat` reads each of these to the same instant. Any
//! other text (another zone, 7 or more fraction digits, a comma, a leap second, a year before 1000)
//! gives None: the caller leaves it to Python.

/// A naive UTC time, as `datetime` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Time {
    pub(crate) year: i32,
    pub(crate) month: u8,
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) micro: u32,
}

fn digits(text: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &b in text {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value * 10 + u32::from(d);
    }
    Some(value)
}

fn leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The time of `text` if it has one of the forms taken (see the module's comment).
pub(crate) fn parse(text: &str) -> Option<Time> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let year = digits(&b[0..4])? as i32;
    let month = digits(&b[5..7])? as u8;
    let day = digits(&b[8..10])? as u8;
    let hour = digits(&b[11..13])? as u8;
    let minute = digits(&b[14..16])? as u8;
    let second = digits(&b[17..19])? as u8;
    if year < 1000 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micro = 0;
    if rest.first() == Some(&b'.') {
        let count = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 || count > 6 {
            return None;
        }
        micro = digits(&rest[1..=count])? * 10u32.pow(6 - count as u32);
        rest = &rest[1 + count..];
    }
    if !(rest.is_empty() || rest == b"+00:00" || rest == b"Z") {
        return None;
    }
    Some(Time {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micro,
    })
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_epoch(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl Time {
    /// Whole seconds since 1970-01-01T00:00 (the time-first content id's, `ids.py`).
    pub(crate) fn epoch_seconds(&self) -> i64 {
        days_from_epoch(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `isoformat(timespec="milliseconds")` (the microseconds cut, not rounded).
    pub(crate) fn iso_millis(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micro / 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let t = parse("2014-05-02T16:01:49.512248+00:00").unwrap();
        assert_eq!((t.year, t.month, t.day, t.micro), (2014, 5, 2, 512_248));
        assert_eq!(parse("2014-05-02 16:01:49.5Z").unwrap().micro, 500_000);
        assert_eq!(parse("2014-05-02T16:01:49").unwrap().micro, 0);
        for bad in [
            "2014-05-02T16:01:49.1234567",
            "2014-05-02T16:01:49+01:00",
            "2014-05-02T16:01:60",
            "2015-02-29T00:00:00",
            "0999-01-01T00:00:00",
            "2014-05-02T16:01:49.",
            "2014-05-02T16:01:49,5",
            "2014-05-02x16:01:49",
            "2014-05-02T16:01",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("2016-02-29T00:00:00").is_some());
    }

    #[test]
    fn epoch() {
        assert_eq!(parse("1970-01-01T00:00:00").unwrap().epoch_seconds(), 0);
        assert_eq!(
            parse("2106-02-07T06:28:16").unwrap().epoch_seconds(),
            1 << 32
        );
        assert_eq!(parse("1969-12-31T23:59:59").unwrap().epoch_seconds(), -1);
        assert_eq!(
            parse("2014-05-02T16:01:49.999").unwrap().iso_millis(),
            "2014-05-02T16:01:49.999"
        );
    }
}
