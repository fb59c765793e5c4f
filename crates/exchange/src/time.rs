//! UTC timestamps in the `YYYY-MM-DDTHH:MM:SSZ` form the NCMEC API uses, without a date crate.

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn fmt_utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC) to Unix seconds (fractions dropped).
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':');
    let hh: i64 = t.next()?.parse().ok()?;
    let mm: i64 = t.next()?.parse().ok()?;
    let ss: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // The year is remote text: one far past any real date must be refused, not overflow.
    days_from_civil(y, m, day)?
        .checked_mul(86_400)?
        .checked_add(hh * 3600 + mm * 60 + ss)
}

// Howard Hinnant's civil-calendar algorithms (public domain), proleptic Gregorian. `None` when
// the day number does not fit an i64.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146_097)?.checked_add(doe - 719_468)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_values() {
        assert_eq!(fmt_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(fmt_utc(1_508_857_800), "2017-10-24T15:10:00Z");
        assert_eq!(parse_utc("2017-10-24T15:10:00Z"), Some(1_508_857_800));
        assert_eq!(parse_utc("2017-10-20T00:00:00.000Z"), Some(1_508_457_600));
        for ts in [0, 951_782_400, 1_700_000_000, 4_102_444_800, 1_709_164_799] {
            assert_eq!(parse_utc(&fmt_utc(ts)), Some(ts));
        }
        assert_eq!(parse_utc("2017-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2017-10-24T15:10:00"), None);
    }

    #[test]
    fn years_past_an_i64_of_seconds_are_refused_not_overflowed() {
        // The last second an i64 holds still parses; the next year does not.
        let last = fmt_utc(i64::MAX);
        assert_eq!(parse_utc(&last), Some(i64::MAX));
        let (year, _) = last.split_once('-').unwrap();
        let next_year = (year.parse::<i64>().unwrap() + 1).to_string();
        for y in [
            "100000000000000",
            next_year.as_str(),
            "9223372036854775807",
            "25252734927766554",
        ] {
            for rest in ["-01-01T00:00:00Z", "-12-31T23:59:60Z", "-02-28T00:00:00Z"] {
                assert_eq!(parse_utc(&format!("{y}{rest}")), None, "{y}{rest}");
            }
        }
    }
}
