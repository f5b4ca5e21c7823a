//! Scheduled warm capacity (`spec.scale.schedules`): which windows are open at a wall-clock instant,
//! and the replica floor they impose. Pure: the instant is an argument, so tests walk a virtual clock
//! across days and daylight-saving changes.
//!
//! A window opens at a firing of its `start` cron and closes at the next firing of its `end` cron.
//! So it is open at `t` when the latest `start` firing at or before `t` is later than the latest
//! `end` firing at or before `t` (an `end` in the same minute as a `start` wins). Both crons are read
//! in the entry's zone, so `0 8 * * 1-5` means 08:00 local time in summer and winter alike.

use jiff::Timestamp;
use zeroscale_crds::function::ParsedSchedule;

/// The latest firing of `cron` at or before `now`, in `schedule`'s zone.
fn last_firing(schedule: &ParsedSchedule, cron: &croner::Cron, now: Timestamp) -> Option<Timestamp> {
    let local = now.to_zoned(schedule.zone.clone());
    cron.find_previous_occurrence(&local, true)
        .ok()
        .map(|z| z.timestamp())
}

/// Whether `schedule`'s window is open at `now`.
pub fn is_open(schedule: &ParsedSchedule, now: Timestamp) -> bool {
    let Some(opened) = last_firing(schedule, &schedule.start, now) else {
        return false;
    };
    last_firing(schedule, &schedule.end, now).is_none_or(|closed| opened > closed)
}

/// The replica floor the open windows impose at `now`: the largest `min` among them, 0 when none is
/// open.
pub fn floor_at(schedules: &[ParsedSchedule], now: Timestamp) -> i32 {
    schedules
        .iter()
        .filter(|s| is_open(s, now))
        .map(|s| i32::try_from(s.min).unwrap_or(i32::MAX))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use zeroscale_crds::function::ScaleSchedule;

    use super::*;

    fn schedule(start: &str, end: &str, zone: &str, min: i32) -> ParsedSchedule {
        ScaleSchedule {
            start: start.into(),
            end: end.into(),
            time_zone: Some(zone.into()),
            min,
        }
        .parse(0)
        .expect("valid schedule")
    }

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn business_hours_open_and_close_on_the_minute() {
        let s = schedule("0 8 * * 1-5", "0 18 * * 1-5", "UTC", 3);
        // 2026-12-07 is a Monday.
        assert!(!is_open(&s, at("2026-12-07T07:59:59Z")));
        assert!(is_open(&s, at("2026-12-07T08:00:00Z")));
        assert!(is_open(&s, at("2026-12-07T17:59:59Z")));
        assert!(!is_open(&s, at("2026-12-07T18:00:00Z")));
        // Saturday: no start fired since Friday's end.
        assert!(!is_open(&s, at("2026-12-12T10:00:00Z")));
        assert_eq!(floor_at(std::slice::from_ref(&s), at("2026-12-08T12:00:00Z")), 3);
        assert_eq!(floor_at(&[s], at("2026-12-08T19:00:00Z")), 0);
    }

    #[test]
    fn windows_cross_midnight_and_overlap_takes_the_largest_min() {
        let night = schedule("0 22 * * *", "0 6 * * *", "UTC", 1);
        let batch = schedule("0 23 * * *", "30 0 * * *", "UTC", 4);
        let both = [night.clone(), batch];
        assert!(is_open(&night, at("2026-12-07T02:00:00Z")));
        assert_eq!(floor_at(&both, at("2026-12-07T22:30:00Z")), 1);
        assert_eq!(floor_at(&both, at("2026-12-07T23:59:00Z")), 4);
        assert_eq!(floor_at(&both, at("2026-12-08T00:30:00Z")), 1);
        assert_eq!(floor_at(&both, at("2026-12-08T06:00:00Z")), 0);
    }

    #[test]
    fn local_time_follows_daylight_saving_changes() {
        let s = schedule("0 8 * * *", "0 9 * * *", "Europe/Berlin", 2);
        // Winter (CET, UTC+1): 08:00 local is 07:00 UTC.
        assert!(is_open(&s, at("2026-03-28T07:00:00Z")));
        assert!(!is_open(&s, at("2026-03-28T06:59:00Z")));
        // Clocks go forward on 2026-03-29; summer (CEST, UTC+2): 08:00 local is 06:00 UTC.
        assert!(is_open(&s, at("2026-03-29T06:00:00Z")));
        assert!(!is_open(&s, at("2026-03-29T07:00:00Z")));
        // Back to winter after 2026-10-25.
        assert!(!is_open(&s, at("2026-10-26T06:30:00Z")));
        assert!(is_open(&s, at("2026-10-26T07:30:00Z")));
    }

    #[test]
    fn a_start_inside_the_spring_gap_opens_after_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29 (02:00 → 03:00): the window opens at 03:00
        // CEST (01:00 UTC), the first instant after the gap, and still closes at 04:00 local.
        let s = schedule("30 2 * * *", "0 4 * * *", "Europe/Berlin", 1);
        assert!(!is_open(&s, at("2026-03-29T00:59:00Z")));
        assert!(is_open(&s, at("2026-03-29T01:00:00Z")));
        assert!(!is_open(&s, at("2026-03-29T02:00:00Z")));
    }

    #[test]
    fn a_repeated_hour_in_autumn_opens_the_window_once() {
        // 02:00–03:00 happens twice in Berlin on 2026-10-25. The window opens at the first 02:30
        // (00:30 UTC) and an end at 02:45 closes it at its first occurrence (00:45 UTC); the second
        // 02:30 (01:30 UTC) does not open it again.
        let s = schedule("30 2 * * *", "45 2 * * *", "Europe/Berlin", 1);
        assert!(is_open(&s, at("2026-10-25T00:30:00Z")));
        assert!(!is_open(&s, at("2026-10-25T00:45:00Z")));
        assert!(
            !is_open(&s, at("2026-10-25T01:35:00Z")),
            "not reopened by the repeated hour"
        );
    }

    #[test]
    fn an_end_in_the_same_minute_as_the_start_keeps_it_closed() {
        let s = schedule("0 8 * * *", "0 8 * * *", "UTC", 1);
        assert!(!is_open(&s, at("2026-12-07T08:00:30Z")));
    }
}
