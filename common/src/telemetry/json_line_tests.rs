use super::*;

/// `line` without its timestamp's value, which differs between two lines logged one after the other.
fn untimed(line: &str) -> String {
    let start = "{\"timestamp\":\"".len();
    assert!(
        line.starts_with("{\"timestamp\":\""),
        "no timestamp first: {line}"
    );
    let end = line[start..].find('"').map_or(line.len(), |at| start + at);
    format!("{}{}", &line[..start], &line[end..])
}

fn at(seconds: i64, micros: u32) -> String {
    let since = Duration::new(seconds.unsigned_abs(), 0);
    let whole = if seconds < 0 {
        UNIX_EPOCH - since
    } else {
        UNIX_EPOCH + since
    };
    let mut out = String::new();
    timestamp(&mut out, whole + Duration::from_micros(u64::from(micros)));
    out
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    let cases = [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
        (951_868_799, 999_999, "2000-02-29T23:59:59.999999Z"),
        (4_107_542_400, 500_000, "2100-03-01T00:00:00.500000Z"),
        (1_796_582_559, 461_318, "2026-12-06T18:42:39.461318Z"),
        (253_402_300_799, 999_999, "9999-12-31T23:59:59.999999Z"),
        (253_402_300_800, 0, "+10000-01-01T00:00:00.000000Z"),
        (-1, 0, "1969-12-31T23:59:59.000000Z"),
        (-1, 250_000, "1969-12-31T23:59:59.250000Z"),
        (-62_135_596_800, 0, "0001-01-01T00:00:00.000000Z"),
        (-62_167_219_201, 0, "-0001-12-31T23:59:59.000000Z"),
    ];
    for (seconds, micros, expected) in cases {
        assert_eq!(at(seconds, micros), expected, "{seconds} s {micros} µs");
    }
}

/// Every day of four centuries (leap years, the 100- and 400-year rules) follows the one before.
#[test]
fn dates_follow_each_other_day_by_day() {
    let month_days = |year: i64, month: u32| match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let mut previous = civil(-1);
    assert_eq!(previous, (1969, 12, 31));
    for days in 0..146_097 {
        let (y, m, d) = previous;
        let expected = if d < month_days(y, m) {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
        previous = civil(days);
        assert_eq!(previous, expected, "day {days}");
    }
}

/// The text `serde_json` writes for the `f64` the formatter was given, `micros / 1000.0`.
#[test]
fn milliseconds_read_as_serde_json_writes_them() {
    let samples = (0..20_000u64)
        .chain((0..64).map(|shift| (1u64 << shift) - 1))
        .chain((1..2_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 14))
        .chain([1 << 50, (1 << 50) + 7, u64::MAX]);
    for micros in samples {
        let mut ours = String::new();
        millis(&mut ours, Duration::from_micros(micros));
        let theirs = serde_json::to_string(&((micros as f64) / 1000.0)).unwrap_or_default();
        if micros < 1 << 50 {
            assert_eq!(ours, theirs, "{micros} µs");
        } else {
            // Beyond exact integers: the same number, if not the same text.
            let back: f64 = ours.parse().unwrap_or(f64::NAN);
            assert_eq!(back, (micros as f64) / 1000.0, "{micros} µs written as {ours}");
        }
    }
}

/// A line written directly is the line the JSON format `init` installs writes for the same event
/// outside any span, byte for byte apart from the time.
#[test]
fn a_direct_line_is_the_formatters_line() {
    let formatted = crate::testing::json_logged(|| {
        tracing::info!(
            target: "access",
            name = "a \"quoted\\ name\"\n",
            absent = None::<&str>,
            present = Some("yes"),
            count = 42u64,
            most = u64::MAX,
            flag = false,
            elapsed = 7.198f64,
            zero = 0.0f64,
            "request"
        );
    });
    let mut line = JsonLine::new("INFO", "access", "request", 64);
    line.str("name", "a \"quoted\\ name\"\n")
        .opt_str("absent", None)
        .opt_str("present", Some("yes"))
        .u64("count", 42)
        .u64("most", u64::MAX)
        .bool("flag", false)
        .millis("elapsed", Duration::from_micros(7_198))
        .millis("zero", Duration::ZERO);
    let direct = String::from_utf8(line.into_line()).unwrap_or_default();
    assert!(
        direct.ends_with("}\n") && direct.lines().count() == 1,
        "{direct:?}"
    );
    assert_eq!(untimed(&direct), untimed(&formatted));
    let value: serde_json::Value = serde_json::from_str(&direct).unwrap_or_default();
    assert_eq!(value["elapsed"], 7.198);
    assert_eq!(value["target"], "access");
}
