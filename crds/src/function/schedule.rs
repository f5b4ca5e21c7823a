//! `spec.scale.schedules`: scheduled warm capacity. Each entry is a window that opens when its
//! `start` cron fires and closes when its `end` cron next fires, read in an IANA time zone; inside it
//! the function keeps at least `min` replicas (KEDA's cron scaler: `start`, `end`, `timezone`,
//! `desiredReplicas`; Lambda's scheduled provisioned concurrency; Cloud Run's min instances).
//!
//! Admission checks the shape (five cron fields, a zone name shaped like `Area/City`, `min` within
//! bounds). It cannot check that a zone exists: CEL has no tz database, and the one it would need
//! changes with every tzdata release. The operator parses both crons and looks the zone up with
//! [`ScaleSchedule::parse`] and reports a failure as `Ready=False` (`InvalidSpec`).

use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::tz::TimeZone;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scale::rule;

/// Most entries in `spec.scale.schedules`.
pub const MAX_SCHEDULES: usize = 16;
/// Longest `start` or `end` cron expression.
pub const MAX_SCHEDULE_CRON_LENGTH: usize = 128;
/// Longest `timeZone`.
pub const MAX_SCHEDULE_ZONE_LENGTH: usize = 64;
/// Shape of a schedule's cron at admission: exactly five whitespace-separated fields (minute hour
/// day-of-month month day-of-week). Macros are not accepted: a window needs explicit start and end.
pub const SCHEDULE_CRON_PATTERN: &str = r"^\s*\S+(\s+\S+){4}\s*$";
/// Shape of an IANA time zone name at admission: `UTC`, or `Area/Location` segments of letters,
/// digits, `_`, `+` and `-`, such as `Europe/Berlin` or `America/Argentina/Buenos_Aires`.
pub const TIME_ZONE_PATTERN: &str = r"^(UTC|[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)+)$";

/// A window of warm capacity: from each firing of `start` until the next firing of `end`, the
/// function keeps at least `min` replicas. Outside every window `spec.scale.min` and the KPA decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = schedule_rules)]
pub struct ScaleSchedule {
    /// Five-field cron (minute hour day-of-month month day-of-week) at which the window opens, such
    /// as `0 8 * * 1-5`.
    #[schemars(length(max = MAX_SCHEDULE_CRON_LENGTH))]
    pub start: String,
    /// Five-field cron at which the window closes, such as `0 18 * * 1-5`. The window closes at the
    /// first firing of `end` after it opened; an `end` firing in the same minute as `start` closes it.
    #[schemars(length(max = MAX_SCHEDULE_CRON_LENGTH))]
    pub end: String,
    /// IANA time zone both crons are read in, such as `Europe/Berlin`; default `UTC`. Wall-clock
    /// times skipped by a daylight-saving change fire at the first instant after the gap; repeated
    /// ones fire once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_SCHEDULE_ZONE_LENGTH))]
    pub time_zone: Option<String>,
    /// Fewest replicas inside the window (at least 0, at most `spec.scale.max` when that is set).
    #[schemars(range(min = 0))]
    pub min: i32,
}

/// A schedule entry that cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    /// A cron expression does not parse.
    #[error("spec.scale.schedules[{index}].{field} {cron:?}: {reason}")]
    Cron {
        /// Position of the entry.
        index: usize,
        /// `start` or `end`.
        field: &'static str,
        /// The expression.
        cron: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The zone is shaped like an IANA name but the tz database does not know it.
    #[error("spec.scale.schedules[{index}].timeZone {zone:?} is not a time zone of the tz database")]
    TimeZone {
        /// Position of the entry.
        index: usize,
        /// The name as written.
        zone: String,
    },
}

/// A schedule entry with both crons parsed and the zone looked up.
#[derive(Clone, Debug)]
pub struct ParsedSchedule {
    /// The cron that opens the window.
    pub start: Cron,
    /// The cron that closes the window.
    pub end: Cron,
    /// The zone both are read in.
    pub zone: TimeZone,
    /// Fewest replicas inside the window.
    pub min: u32,
    /// The entry as written, which defines equality.
    pub source: ScaleSchedule,
}

impl PartialEq for ParsedSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

fn parse_cron(index: usize, field: &'static str, cron: &str) -> Result<Cron, ScheduleError> {
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    let error = |reason: String| ScheduleError::Cron {
        index,
        field,
        cron: cron.to_string(),
        reason,
    };
    if cron.split_whitespace().count() != 5 {
        return Err(error("must have five fields".into()));
    }
    parser
        .parse(cron.trim())
        .map_err(|e| error(e.to_string().to_lowercase()))
}

impl ScaleSchedule {
    /// Parses entry `index`: both crons (five fields) and the zone (default UTC).
    pub fn parse(&self, index: usize) -> Result<ParsedSchedule, ScheduleError> {
        let start = parse_cron(index, "start", &self.start)?;
        let end = parse_cron(index, "end", &self.end)?;
        let zone = match self.time_zone.as_deref().map(str::trim) {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::TimeZone {
                index,
                zone: name.to_string(),
            })?,
        };
        Ok(ParsedSchedule {
            start,
            end,
            zone,
            min: u32::try_from(self.min).unwrap_or(0),
            source: self.clone(),
        })
    }
}

/// Parses every entry of `schedules`, failing on the first that cannot run.
pub fn parse_schedules(schedules: &[ScaleSchedule]) -> Result<Vec<ParsedSchedule>, ScheduleError> {
    schedules.iter().enumerate().map(|(i, s)| s.parse(i)).collect()
}

fn schedule_rules(schema: &mut Schema) {
    let cron = SCHEDULE_CRON_PATTERN.replace('\\', "\\\\");
    let zone = TIME_ZONE_PATTERN.replace('\\', "\\\\");
    let rules = vec![
        rule(
            format!("self.start.matches('{cron}')"),
            "spec.scale.schedules[].start must be a five-field cron expression such as '0 8 * * 1-5'",
        ),
        rule(
            format!("self.end.matches('{cron}')"),
            "spec.scale.schedules[].end must be a five-field cron expression such as '0 18 * * 1-5'",
        ),
        rule(
            format!("!has(self.timeZone) || self.timeZone.matches('{zone}')"),
            "spec.scale.schedules[].timeZone must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'",
        ),
    ];
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

/// The CEL rule of `spec.scale` that bounds every schedule's `min` by `max`.
pub(super) fn schedules_within_max() -> Value {
    rule(
        "!has(self.schedules) || self.max == 0 || self.schedules.all(s, s.min <= self.max)",
        "spec.scale.schedules[].min must not exceed spec.scale.max",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start: &str, end: &str, zone: Option<&str>) -> ScaleSchedule {
        ScaleSchedule {
            start: start.into(),
            end: end.into(),
            time_zone: zone.map(Into::into),
            min: 2,
        }
    }

    #[test]
    fn parses_crons_and_zones() {
        let p = entry("0 8 * * 1-5", "0 18 * * 1-5", Some("Europe/Berlin"))
            .parse(0)
            .unwrap();
        assert_eq!(p.min, 2);
        assert_eq!(p.zone.iana_name(), Some("Europe/Berlin"));
        let utc = entry("*/5 * * * *", "1-59/5 * * * *", None).parse(0).unwrap();
        assert_eq!(utc.zone, TimeZone::UTC);
    }

    #[test]
    fn names_the_entry_and_the_field() {
        let err = parse_schedules(&[
            entry("0 8 * * *", "0 9 * * *", None),
            entry("0 8 * * *", "0 25 * * *", None),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("spec.scale.schedules[1].end \"0 25 * * *\""),
            "{err}"
        );
        let err = entry("@hourly", "0 9 * * *", None).parse(3).unwrap_err();
        assert!(err.to_string().contains("schedules[3].start"), "{err}");
        assert!(err.to_string().contains("five fields"), "{err}");
        let err = entry("0 8 * * *", "0 9 * * *", Some("Mars/Olympus_Mons"))
            .parse(0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.scale.schedules[0].timeZone \"Mars/Olympus_Mons\" is not a time zone of the tz database"
        );
    }

    #[test]
    fn real_zones_of_every_admitted_shape_parse() {
        for zone in [
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(
                entry("0 8 * * *", "0 9 * * *", Some(zone)).parse(0).is_ok(),
                "{zone}"
            );
        }
    }
}
