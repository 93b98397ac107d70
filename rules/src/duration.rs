//! Go durations (`time.ParseDuration` and `Duration.String`), the form alpha2 TTLs and
//! waits take on the wire: `"30s"`, `"1500ms"`, `"2m"`, `"1h30m"`, `"0.5s"`.
//!
//! Parsed to whole milliseconds, rounded up (a lock never ends before its TTL); written as Go
//! writes a duration of that many milliseconds.

use std::time::Duration;

/// Nanoseconds per unit, for every unit Go knows.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration. Signs are refused unless the value is zero; the result is rounded
/// up to whole milliseconds. The error names the input as Go's message does.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let unsigned = text
        .strip_prefix('+')
        .or_else(|| text.strip_prefix('-'))
        .unwrap_or(text);
    let negative = text.starts_with('-');
    if unsigned == "0" {
        return Ok(Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(invalid());
    }
    let mut rest = unsigned;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{text}\""));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!(
                "time: unknown unit \"{unit}\" in duration \"{text}\""
            ));
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            part += u128::from(digit - b'0') * place;
        }
        total_ns = total_ns.checked_add(part).ok_or_else(invalid)?;
        rest = next;
    }
    // Go's durations are int64 nanoseconds.
    if total_ns > i64::MAX as u128 {
        return Err(invalid());
    }
    if negative && total_ns > 0 {
        return Err(format!("duration \"{text}\" is negative"));
    }
    let millis = total_ns.div_ceil(1_000_000);
    Ok(Duration::from_millis(millis as u64))
}

/// Writes `duration` (whole milliseconds are kept) as Go's `Duration.String` does:
/// `"0s"`, `"750ms"`, `"1.5s"`, `"2m0s"`, `"1h30m0s"`.
pub fn format(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let hours = ms / 3_600_000;
    let minutes = ms / 60_000 % 60;
    let seconds = ms / 1000 % 60;
    let millis = ms % 1000;
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&seconds.to_string());
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Result<Duration, String> {
        Ok(Duration::from_millis(n))
    }

    #[test]
    fn parses_what_go_parses() {
        assert_eq!(parse("30s"), ms(30_000));
        assert_eq!(parse("1500ms"), ms(1500));
        assert_eq!(parse("2m"), ms(120_000));
        assert_eq!(parse("1h30m"), ms(5_400_000));
        assert_eq!(parse("1.5s"), ms(1500));
        assert_eq!(parse(".5s"), ms(500));
        assert_eq!(
            parse("5."),
            Err("time: missing unit in duration \"5.\"".into())
        );
        assert_eq!(parse("1m30.25s"), ms(90_250));
        assert_eq!(parse("0"), ms(0));
        assert_eq!(parse("+10s"), ms(10_000));
        assert_eq!(parse("-0s"), ms(0));
        assert_eq!(parse("250us"), ms(1), "rounded up to a whole millisecond");
        assert_eq!(parse("1µs"), ms(1));
        assert_eq!(parse("1000000ns"), ms(1));
    }

    #[test]
    fn refuses_what_go_refuses() {
        assert_eq!(parse(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(
            parse("30"),
            Err("time: missing unit in duration \"30\"".into())
        );
        assert_eq!(
            parse("3d"),
            Err("time: unknown unit \"d\" in duration \"3d\"".into())
        );
        assert_eq!(parse("s"), Err("time: invalid duration \"s\"".into()));
        assert_eq!(
            parse("1..2s"),
            Err("time: invalid duration \"1..2s\"".into())
        );
        assert_eq!(parse("-5s"), Err("duration \"-5s\" is negative".into()));
        assert!(parse("9999999999h").is_err(), "beyond Go's int64");
    }

    #[test]
    fn writes_as_go_writes() {
        let f = |n| format(Duration::from_millis(n));
        assert_eq!(f(0), "0s");
        assert_eq!(f(750), "750ms");
        assert_eq!(f(1000), "1s");
        assert_eq!(f(1500), "1.5s");
        assert_eq!(f(12_500), "12.5s");
        assert_eq!(f(30_000), "30s");
        assert_eq!(f(120_000), "2m0s");
        assert_eq!(f(5_400_000), "1h30m0s");
        assert_eq!(f(3_600_001), "1h0m0.001s");
    }

    #[test]
    fn round_trips() {
        for n in [1, 999, 1000, 1001, 59_999, 60_000, 86_400_000] {
            let d = Duration::from_millis(n);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
