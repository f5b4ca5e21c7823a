//! The `schedule` source: a five-field cron expression read in an IANA time zone, and the event it
//! produces each time it fires.
//!
//! The next fire time is a pure function of `now`, so it is tested without waiting. Day-of-month and
//! day-of-week combine with OR, as in Vixie cron. Across daylight-saving changes a wall-clock time
//! that does not exist fires at the first instant after the gap, and one that occurs twice fires
//! once. Fires missed while no process ran the schedule are not made up.

use std::time::Duration;

use cloudevents::{Event, EventBuilder, EventBuilderV10};
use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::{Timestamp, tz::TimeZone};
use zeroscale_crds::trigger::ScheduleSource;

/// CloudEvents `type` of the events a schedule produces.
pub const SCHEDULE_EVENT_TYPE: &str = "dev.zeroscale.schedule";
/// `datacontenttype` when a schedule sets `data` without `contentType`.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// A schedule that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error("spec.source.schedule.cron {cron:?}: {reason}")]
    Cron {
        /// The expression.
        cron: String,
        /// Why it does not parse.
        reason: String,
    },
    /// The time zone is not an IANA name this build knows.
    #[error("spec.source.schedule.timeZone {0:?} is not a known IANA time zone")]
    TimeZone(String),
    /// The expression never fires (such as `0 0 30 2 *`).
    #[error("spec.source.schedule.cron {0:?} never fires")]
    NeverFires(String),
    /// The event could not be built.
    #[error("cannot build the schedule event: {0}")]
    Event(String),
}

/// A parsed schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    pattern: String,
    zone: TimeZone,
}

impl Schedule {
    /// Parses a `schedule` source: five fields (no seconds, no year) or a macro such as `@hourly`, and
    /// the time zone (default UTC).
    pub fn parse(source: &ScheduleSource) -> Result<Schedule, ScheduleError> {
        let pattern = source.cron.trim().to_string();
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(&pattern).map_err(|e| ScheduleError::Cron {
            cron: pattern.clone(),
            reason: e.to_string().to_lowercase(),
        })?;
        let zone = match source.time_zone.as_deref().map(str::trim) {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| ScheduleError::TimeZone(name.to_string()))?,
        };
        Ok(Schedule { cron, pattern, zone })
    }

    /// The first fire time strictly after `now`.
    pub fn next_after(&self, now: Timestamp) -> Result<Timestamp, ScheduleError> {
        let local = now.to_zoned(self.zone.clone());
        self.cron
            .find_next_occurrence(&local, false)
            .map(|z| z.timestamp())
            .map_err(|_| ScheduleError::NeverFires(self.pattern.clone()))
    }

    /// How long to sleep from `now` until the next fire time, and that time.
    pub fn wait_from(&self, now: Timestamp) -> Result<(Duration, Timestamp), ScheduleError> {
        let next = self.next_after(now)?;
        let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
        Ok((wait, next))
    }
}

/// The CloudEvents `source` of Trigger `name` in `namespace`.
pub fn trigger_source(namespace: &str, name: &str) -> String {
    format!("/zeroscale/triggers/{namespace}/{name}")
}

/// The event Trigger `name` in `namespace` emits when its schedule fires at `fired`. Its `id` is the fire
/// time, so the same firing seen twice (two replicas, a retry) has the same `source` + `id` and
/// receivers can de-duplicate it.
pub fn schedule_event(
    namespace: &str,
    name: &str,
    source: &ScheduleSource,
    fired: Timestamp,
) -> Result<Event, ScheduleError> {
    let mut builder = EventBuilderV10::new()
        .id(fired.to_string())
        .ty(SCHEDULE_EVENT_TYPE)
        .source(trigger_source(namespace, name))
        .time(fired.to_string());
    if let Some(data) = &source.data {
        let content_type = source.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE);
        // JSON data stays JSON, so structured mode embeds it rather than quoting it.
        builder = match serde_json::from_str::<serde_json::Value>(data) {
            Ok(json) if content_type.contains("json") => builder.data(content_type, json),
            _ => builder.data(content_type, data.clone()),
        };
    }
    builder.build().map_err(|e| ScheduleError::Event(e.to_string()))
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
