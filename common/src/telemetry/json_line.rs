//! A JSON log line written directly, not through `tracing`: for lines logged once per request, whose
//! cost through the formatter is more than the request's own.
//!
//! `tracing-subscriber`'s JSON formatter visits an event's fields one by one through `serde_json`,
//! formats the time through `fmt`, and adds the current span twice (`span` and `spans`), each parsed
//! back from its stored JSON. For the activator's access line (18 fields, inside the request's span)
//! that cost about 4 µs of the event loop's time per request, more than the proxied hop's own code
//! (docs/benchmarks.md, "Session 27"). A [`JsonLine`] writes the same object as the formatter does
//! for an event outside any span (`timestamp`, `level`, `message`, the fields in order, `target`, one
//! line), straight into one buffer that goes to the log writer thread as it is ([`JsonLines`]).

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::log_writer::QueuedWriter;
use super::span_fields::string;

/// Where direct JSON lines go: the log writer thread the JSON format's subscriber writes to, so they
/// interleave with the other lines whole.
#[derive(Clone, Debug)]
pub struct JsonLines {
    writer: QueuedWriter,
}

/// The JSON log format's writer, set by [`super::init`] when it installs that format.
static JSON_LINES: OnceLock<JsonLines> = OnceLock::new();

impl JsonLines {
    /// Lines to `writer` (a test's own queue; the process's is [`JsonLines::installed`]).
    pub fn new(writer: QueuedWriter) -> Self {
        Self { writer }
    }

    /// The process's JSON log, when [`super::init`] installed the JSON format; `None` with the plain
    /// format or no subscriber (then log through `tracing`).
    pub fn installed() -> Option<Self> {
        JSON_LINES.get().cloned()
    }

    /// Makes `writer` the process's JSON log (once; later calls change nothing).
    pub(super) fn install(writer: QueuedWriter) {
        JSON_LINES.get_or_init(|| Self::new(writer));
    }

    /// Writes `line` out, whole.
    pub fn write(&self, line: JsonLine) {
        self.writer.send_line(line.into_line());
    }
}

/// One log line being written: `{"timestamp":…,"level":…,"message":…` then the fields in the order
/// they are added; [`JsonLine::into_line`] ends it with `target` and a newline.
#[derive(Debug)]
pub struct JsonLine {
    out: String,
    target: &'static str,
}

impl JsonLine {
    /// A line logged now at `level` (`"INFO"`, as `tracing` names levels) by `target`, saying
    /// `message`. `capacity` is the expected length, so that writing it needs no growth.
    pub fn new(level: &str, target: &'static str, message: &str, capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push_str("{\"timestamp\":\"");
        timestamp(&mut out, SystemTime::now());
        out.push_str("\",\"level\":");
        string(&mut out, level);
        out.push_str(",\"message\":");
        string(&mut out, message);
        Self { out, target }
    }

    /// Starts the member `key`. Keys are names in the code that need no escaping (letters, digits,
    /// `_`), written as they are: escaping each cost as much as a value's.
    fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(
            key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{key}"
        );
        self.out.push_str(",\"");
        self.out.push_str(key);
        self.out.push_str("\":");
        &mut self.out
    }

    /// Adds the string `value` as `key`.
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        string(self.key(key), value);
        self
    }

    /// Adds `value` as `key` when there is one; leaves the key out otherwise, as `tracing` leaves out
    /// a field recorded as `None`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.str(key, value);
        }
        self
    }

    /// Adds the number `value` as `key`.
    pub fn u64(&mut self, key: &'static str, value: u64) -> &mut Self {
        decimal(self.key(key), value, 1);
        self
    }

    /// Adds `value` as `key`.
    pub fn bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        self.key(key).push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds `value` as milliseconds with microsecond precision (`7.198`, `0.0`): the text `serde_json`
    /// writes for the `f64` `micros / 1000.0`, made from the integers.
    pub fn millis(&mut self, key: &'static str, value: Duration) -> &mut Self {
        millis(self.key(key), value);
        self
    }

    /// The finished line: the target, the end of the object and a newline.
    pub fn into_line(mut self) -> Vec<u8> {
        let target = self.target;
        self.str("target", target);
        self.out.push_str("}\n");
        self.out.into_bytes()
    }
}

/// Writes `value` in milliseconds as `serde_json` writes the `f64` `micros / 1000.0`: the shortest
/// text that reads back as that number. Below 2^50 µs (35 years) that is the exact quotient, trailing
/// zeros dropped, with at least one decimal: the `f64`s there lie closer together than 0.001, so no
/// shorter text reads back as the same one.
fn millis(out: &mut String, value: Duration) {
    let micros = value.as_micros();
    if micros >= 1 << 50 {
        let _ = write!(out, "{:?}", micros as f64 / 1000.0);
        return;
    }
    // Below 2^50, so the casts keep every digit.
    let (whole, mut fraction, mut digits) = (micros as u64 / 1000, micros as u64 % 1000, 3);
    decimal(out, whole, 1);
    out.push('.');
    if fraction == 0 {
        out.push('0');
        return;
    }
    while fraction % 10 == 0 {
        fraction /= 10;
        digits -= 1;
    }
    decimal(out, fraction, digits);
}

/// Writes `value` in decimal, padded with zeros to `width` digits. Without `fmt`, whose machinery
/// cost more than the digits on this path (a line has 20 numbers with its timestamp).
fn decimal(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 || start == digits.len() {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    let start = start.min(digits.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

/// Writes `now` as `tracing-subscriber`'s default timer does: RFC 3339 in UTC with microseconds,
/// `2026-12-06T18:22:39.461318Z`.
fn timestamp(out: &mut String, now: SystemTime) {
    let (seconds, nanos) = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => (since.as_secs() as i64, since.subsec_nanos()),
        // Before 1970: whole seconds down, the fraction counted up from there.
        Err(e) => {
            let before = e.duration();
            let (s, n) = (before.as_secs() as i64, before.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    };
    let (year, month, day) = civil(seconds.div_euclid(86_400));
    let time = seconds.rem_euclid(86_400);
    // Years as the formatter writes them: four digits, a sign beyond (`{:05}` of a negative year).
    match year {
        10_000.. => out.push('+'),
        ..0 => out.push('-'),
        _ => {}
    }
    decimal(out, year.unsigned_abs(), 4);
    let time = time as u64; // 0..86,400
    let parts = [
        ('-', u64::from(month), 2),
        ('-', u64::from(day), 2),
        ('T', time / 3600, 2),
        (':', time / 60 % 60, 2),
        (':', time % 60, 2),
        ('.', u64::from(nanos / 1_000), 6),
    ];
    for (separator, part, width) in parts {
        out.push(separator);
        decimal(out, part, width);
    }
    out.push('Z');
}

/// The proleptic Gregorian date `days` after 1970-01-01: (year, month, day). Counts in 400-year eras
/// from 0000-03-01, so that the leap day is the last day of a year (H. Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "json_line_tests.rs"]
mod tests;
