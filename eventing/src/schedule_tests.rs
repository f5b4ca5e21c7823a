use cloudevents::{AttributesReader, Data};

use super::*;

fn schedule(cron: &str, zone: Option<&str>) -> Schedule {
    Schedule::parse(&ScheduleSource {
        cron: cron.into(),
        time_zone: zone.map(Into::into),
        ..ScheduleSource::default()
    })
    .unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn every_minute_fires_at_the_next_whole_minute_strictly_after_now() {
    let every = schedule("* * * * *", None);
    assert_eq!(
        every.next_after(at("2025-03-01T10:00:30Z")).unwrap(),
        at("2025-03-01T10:01:00Z")
    );
    assert_eq!(
        every.next_after(at("2025-03-01T10:01:00Z")).unwrap(),
        at("2025-03-01T10:02:00Z")
    );
    let (wait, next) = every.wait_from(at("2025-03-01T10:00:59.500Z")).unwrap();
    assert_eq!(
        (wait, next),
        (Duration::from_millis(500), at("2025-03-01T10:01:00Z"))
    );
}

#[test]
fn fields_ranges_steps_names_and_macros() {
    let weekdays = schedule("0 9 * * MON-FRI", None);
    // Friday 2025-03-07 after 09:00 → Monday 2025-03-10 09:00.
    assert_eq!(
        weekdays.next_after(at("2025-03-07T09:30:00Z")).unwrap(),
        at("2025-03-10T09:00:00Z")
    );
    let steps = schedule("*/15 * * * *", None);
    assert_eq!(
        steps.next_after(at("2025-03-01T10:16:00Z")).unwrap(),
        at("2025-03-01T10:30:00Z")
    );
    let hourly = schedule("@hourly", None);
    assert_eq!(
        hourly.next_after(at("2025-03-01T10:16:00Z")).unwrap(),
        at("2025-03-01T11:00:00Z")
    );
    // Day-of-month OR day-of-week, as in Vixie cron: the 1st, or any Sunday.
    let either = schedule("0 0 1 * SUN", None);
    assert_eq!(
        either.next_after(at("2025-03-01T12:00:00Z")).unwrap(),
        at("2025-03-02T00:00:00Z")
    );
}

#[test]
fn reads_the_expression_in_the_time_zone() {
    let paris = schedule("0 9 * * *", Some("Europe/Paris"));
    // Winter: Paris is UTC+1.
    assert_eq!(
        paris.next_after(at("2025-01-15T00:00:00Z")).unwrap(),
        at("2025-01-15T08:00:00Z")
    );
    // Summer: UTC+2.
    assert_eq!(
        paris.next_after(at("2025-07-15T00:00:00Z")).unwrap(),
        at("2025-07-15T07:00:00Z")
    );
    let tokyo = schedule("30 23 * * *", Some("Asia/Tokyo"));
    assert_eq!(
        tokyo.next_after(at("2025-07-15T00:00:00Z")).unwrap(),
        at("2025-07-15T14:30:00Z")
    );
}

#[test]
fn daylight_saving_gaps_and_overlaps() {
    let paris = schedule("30 2 * * *", Some("Europe/Paris"));
    // 2025-03-30 02:30 does not exist in Paris (02:00 → 03:00); the schedule still fires that day,
    // after the gap, and not twice.
    let spring = paris.next_after(at("2025-03-29T12:00:00Z")).unwrap();
    assert!(
        spring > at("2025-03-30T00:00:00Z") && spring <= at("2025-03-30T01:30:00Z"),
        "{spring}"
    );
    assert_eq!(paris.next_after(spring).unwrap(), at("2025-03-31T00:30:00Z"));
    // 2025-10-26 02:30 happens twice (03:00 → 02:00); it fires once.
    let autumn = paris.next_after(at("2025-10-25T12:00:00Z")).unwrap();
    let after = paris.next_after(autumn).unwrap();
    assert!(
        after >= at("2025-10-27T00:00:00Z"),
        "fired twice: {autumn} then {after}"
    );
}

#[test]
fn invalid_schedules_say_which_field() {
    let parse = |cron: &str, zone: Option<&str>| {
        Schedule::parse(&ScheduleSource {
            cron: cron.into(),
            time_zone: zone.map(Into::into),
            ..Default::default()
        })
    };
    for bad in ["* * * *", "61 * * * *", "* * * * * *", "", "every minute"] {
        let err = parse(bad, None).unwrap_err();
        assert!(matches!(err, ScheduleError::Cron { .. }), "{bad}: {err}");
        assert!(err.to_string().starts_with("spec.source.schedule.cron"));
    }
    let err = parse("* * * * *", Some("Mars/Olympus_Mons")).unwrap_err();
    assert!(
        err.to_string().starts_with("spec.source.schedule.timeZone"),
        "{err}"
    );
    let never = parse("0 0 30 2 *", None).map(|s| s.next_after(at("2025-01-01T00:00:00Z")));
    assert!(matches!(never, Err(_) | Ok(Err(ScheduleError::NeverFires(_)))));
}

#[test]
fn the_event_names_the_trigger_and_carries_the_data() {
    let source = ScheduleSource {
        cron: "* * * * *".into(),
        data: Some(r#"{"job":"cleanup"}"#.into()),
        ..ScheduleSource::default()
    };
    let event = schedule_event("ops", "nightly", &source, at("2025-03-01T10:01:00Z")).unwrap();
    assert_eq!(event.ty(), SCHEDULE_EVENT_TYPE);
    assert_eq!(event.source().as_str(), "/zeroscale/triggers/ops/nightly");
    assert_eq!(event.id(), "2025-03-01T10:01:00Z");
    assert_eq!(
        event.time().map(|t| t.timestamp()),
        Some(at("2025-03-01T10:01:00Z").as_second())
    );
    assert_eq!(event.datacontenttype(), Some("application/json"));
    assert_eq!(
        event.data(),
        Some(&Data::Json(serde_json::json!({"job": "cleanup"})))
    );

    let text = ScheduleSource {
        data: Some("hello".into()),
        content_type: Some("text/plain".into()),
        ..source
    };
    let event = schedule_event("ops", "nightly", &text, at("2025-03-01T10:01:00Z")).unwrap();
    assert_eq!(event.datacontenttype(), Some("text/plain"));
    assert_eq!(event.data(), Some(&Data::String("hello".into())));

    let empty = ScheduleSource {
        cron: "* * * * *".into(),
        ..ScheduleSource::default()
    };
    assert_eq!(
        schedule_event("ops", "n", &empty, at("2025-03-01T10:01:00Z"))
            .unwrap()
            .data(),
        None
    );
}
