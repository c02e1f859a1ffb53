//! Time windows of a report: `--window` durations, the default width, and UTC labels. Windows are
//! aligned to the Unix epoch (a 1h window starts on the hour, a 1d window at 00:00 UTC), so the same
//! window means the same span in every report.

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;

/// Units a window is written in, largest first.
const UNITS: [(char, u64); 5] = [
    ('w', WEEK),
    ('d', DAY),
    ('h', HOUR),
    ('m', MINUTE),
    ('s', SECOND),
];

/// Widths the default window is picked from, narrowest first.
const DEFAULT_LADDER: [u64; 11] = [
    MINUTE,
    5 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    WEEK,
    30 * DAY,
];

/// The most windows the default width gives, if any ladder width is wide enough: enough to show a
/// trend, few enough to read at a glance.
pub const HANDFUL: u64 = 6;

/// Parses a duration such as `90s`, `15m`, `1h`, `1d` or `2w` into milliseconds.
pub fn parse_window(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a window like 15m, 1h or 1d (units s, m, h, d, w)");
    let unit = text.chars().last().ok_or_else(bad)?;
    let (_, unit_ms) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or_else(bad)?;
    let count: u64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    match count.checked_mul(*unit_ms) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(bad()),
    }
}

/// A width in the largest unit that divides it: `3600000` → `1h`, `90000` → `90s`.
pub fn format_window(ms: u64) -> String {
    UNITS
        .iter()
        .find(|(_, unit_ms)| ms % unit_ms == 0)
        .map_or_else(
            || format!("{ms}ms"),
            |(name, unit_ms)| format!("{}{name}", ms / unit_ms),
        )
}

/// The start of the window holding `ms`.
pub fn window_start(ms: u64, window_ms: u64) -> u64 {
    ms - ms % window_ms.max(1)
}

/// The narrowest ladder width that covers `first_ms..=last_ms` in at most [`HANDFUL`] windows (the
/// widest one when none does).
pub fn default_window(first_ms: u64, last_ms: u64) -> u64 {
    let windows =
        |width: u64| (window_start(last_ms, width) - window_start(first_ms, width)) / width + 1;
    DEFAULT_LADDER
        .into_iter()
        .find(|width| windows(*width) <= HANDFUL)
        .unwrap_or(DEFAULT_LADDER[DEFAULT_LADDER.len() - 1])
}

/// Year, month and day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `2023-11-14 22:00` (UTC), with seconds only when the window is not whole minutes.
pub fn utc_label(ms: u64, window_ms: u64) -> String {
    let (year, month, day) = civil_from_days(ms / DAY);
    let of_day = ms % DAY;
    let (hour, minute, second) = (
        of_day / HOUR,
        of_day % HOUR / MINUTE,
        of_day % MINUTE / SECOND,
    );
    let label = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}");
    if window_ms % MINUTE == 0 {
        label
    } else {
        format!("{label}:{second:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_print_in_their_unit() {
        assert_eq!(parse_window("15m"), Ok(15 * MINUTE));
        assert_eq!(parse_window("1h"), Ok(HOUR));
        assert_eq!(parse_window("1d"), Ok(DAY));
        assert_eq!(parse_window("90s"), Ok(90 * SECOND));
        for bad in ["", "h", "0h", "1.5h", "1y", "-1h", "1 h"] {
            assert!(parse_window(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(format_window(HOUR), "1h");
        assert_eq!(format_window(90 * SECOND), "90s");
        assert_eq!(format_window(2 * WEEK), "2w");
    }

    #[test]
    fn the_default_window_gives_a_handful() {
        let start = 1_700_000_000_000 - 1_700_000_000_000 % DAY;
        assert_eq!(default_window(start, start + 30 * SECOND), MINUTE);
        assert_eq!(default_window(start, start + 4 * HOUR - 1), HOUR);
        assert_eq!(default_window(start, start + 5 * DAY), DAY);
        assert_eq!(default_window(start, start + 3_000 * DAY), 30 * DAY);
    }

    #[test]
    fn labels_are_utc_dates() {
        assert_eq!(utc_label(0, HOUR), "1970-01-01 00:00");
        // 1_700_000_000 s is 2023-11-14 22:13:20 UTC.
        assert_eq!(utc_label(1_700_000_000_000, SECOND), "2023-11-14 22:13:20");
        assert_eq!(utc_label(951_782_400_000, DAY), "2000-02-29 00:00");
        assert_eq!(utc_label(1_709_251_199_000, HOUR), "2024-02-29 23:59");
    }
}
