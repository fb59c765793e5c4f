//! Timestamps and durations as text for the pages. Always UTC: moderators in several time
//! zones compare case histories, and one zone avoids "whose 09:00?".

/// `2026-12-04 16:08 UTC` for Unix milliseconds `ms`.
pub fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian), avoiding a date crate for
/// one conversion.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration in ms as `45 s`, `12 min`, `3 h 05 min` or `2 d 4 h`: coarse on purpose, the
/// pages need orders of magnitude, not seconds.
pub fn duration_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// How long ago `then_ms` was at `now_ms`, as [`duration_text`]; a time in the future (clock
/// skew between processes) reads as `0 s`.
pub fn age_text(then_ms: i64, now_ms: i64) -> String {
    duration_text(now_ms.saturating_sub(then_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_durations() {
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(1_234_567_890_000), "2009-02-13 23:31 UTC");
        assert_eq!(utc_text(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc_text(-1000), "1969-12-31 23:59 UTC");
        assert_eq!(duration_text(59_999), "59 s");
        assert_eq!(duration_text(12 * 60_000), "12 min");
        assert_eq!(duration_text(3 * 3_600_000 + 5 * 60_000), "3 h 05 min");
        assert_eq!(duration_text(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
        assert_eq!(age_text(10_000, 5_000), "0 s");
    }
}
