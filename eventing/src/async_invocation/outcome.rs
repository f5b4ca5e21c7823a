//! How an async invocation ends, and the CloudEvent that says so to `onSuccess` / `onFailure`. Pure:
//! the caller passes the time and the attempt's result.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cloudevents::{Event, EventBuilder, EventBuilderV10};
use serde::Serialize;

use super::{policy::AsyncPolicy, request::Invocation};
use crate::delivery::{Answer, Failure};

/// CloudEvent type of a `Success` record.
pub const SUCCESS_TYPE: &str = "dev.zeroscale.async.success";
/// CloudEvent type of a `RetriesExhausted` or `EventAgeExceeded` record.
pub const FAILURE_TYPE: &str = "dev.zeroscale.async.failure";
/// Longest response body carried in a record; a longer one is cut and `bodyTruncated` is set.
pub const MAX_RECORD_BODY: usize = 64 * 1024;

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The function answered 2xx.
    Success,
    /// The last attempt failed (or the answer was final: a 4xx other than 429).
    RetriesExhausted,
    /// The invocation was older than `maxEventAge` when an attempt was due.
    EventAgeExceeded,
}

/// What a record says about an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// How it ended.
    pub outcome: Outcome,
    /// Attempts made (0 when it expired before the first).
    pub attempts: u32,
    /// The last answer's status, when there was one.
    pub status: Option<u16>,
    /// The last answer's body.
    pub body: Bytes,
    /// What went wrong, for a failure.
    pub error: Option<String>,
}

/// What follows one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Finished: send the record.
    Done(Record),
    /// Try again after this delay.
    Retry(Duration),
}

/// Whether an answer or failure deserves another attempt: connection failures, timeouts, 5xx and 429
/// (not the other 4xx, which the function meant).
pub fn is_retryable(failure: &Failure) -> bool {
    match failure {
        Failure::Status { status, .. } => status.is_server_error() || status.as_u16() == 429,
        Failure::Timeout(_) | Failure::Transport(_) => true,
        Failure::Unsupported(_) | Failure::Encoding(_) => false,
    }
}

/// Whether an invocation accepted at `accepted` is too old at `now` for another attempt.
pub fn expired(accepted: SystemTime, now: SystemTime, policy: &AsyncPolicy) -> bool {
    now.duration_since(accepted).unwrap_or_default() > policy.max_event_age
}

/// The record of an invocation found expired before attempt number `attempt` (from 1).
pub fn expired_record(attempt: u32, last: Option<&Failure>) -> Record {
    Record {
        outcome: Outcome::EventAgeExceeded,
        attempts: attempt.saturating_sub(1),
        status: last.and_then(Failure::status).map(|s| s.as_u16()),
        body: match last {
            Some(Failure::Status { body, .. }) => body.clone(),
            _ => Bytes::new(),
        },
        error: Some("the invocation is older than spec.async.maxEventAge".into()),
    }
}

/// What follows attempt number `attempt` (from 1), which ended with `result` (a failure comes with
/// the server's `Retry-After`).
pub fn after_attempt(
    attempt: u32,
    policy: &AsyncPolicy,
    result: Result<Answer, (Failure, Option<Duration>)>,
) -> Next {
    match result {
        Ok(answer) => Next::Done(Record {
            outcome: Outcome::Success,
            attempts: attempt,
            status: Some(answer.status.as_u16()),
            body: answer.body,
            error: None,
        }),
        Err((failure, asked)) if is_retryable(&failure) && attempt <= policy.retry.retries => {
            Next::Retry(policy.retry.wait_before(attempt, asked))
        }
        Err((failure, _)) => Next::Done(failed(attempt, &failure)),
    }
}

/// The `RetriesExhausted` record after attempt number `attempt` failed with `failure`.
pub fn failed(attempt: u32, failure: &Failure) -> Record {
    Record {
        outcome: Outcome::RetriesExhausted,
        attempts: attempt,
        status: failure.status().map(|s| s.as_u16()),
        body: match failure {
            Failure::Status { body, .. } => body.clone(),
            _ => Bytes::new(),
        },
        error: Some(failure.describe()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    outcome: Outcome,
    invocation_id: &'a str,
    namespace: &'a str,
    function: &'a str,
    method: &'a str,
    path: &'a str,
    accepted_at: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    body: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    body_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The CloudEvent carrying `record` of `invocation`: its id is `<invocation id>.result` (the same on a
/// redelivered record, so a destination can de-duplicate), its `subject` the invocation id.
pub fn record_event(invocation: &Invocation, record: &Record) -> Event {
    let truncated = record.body.len() > MAX_RECORD_BODY;
    let body = &record.body[..record.body.len().min(MAX_RECORD_BODY)];
    let data = Data {
        outcome: record.outcome,
        invocation_id: &invocation.id,
        namespace: &invocation.function.namespace,
        function: &invocation.function.name,
        method: invocation.method.as_str(),
        path: &invocation.path,
        accepted_at: jiff::Timestamp::try_from(invocation.accepted)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        attempts: record.attempts,
        status: record.status,
        body: String::from_utf8_lossy(body).into_owned(),
        body_truncated: truncated,
        error: record.error.as_deref(),
    };
    let ty = match record.outcome {
        Outcome::Success => SUCCESS_TYPE,
        Outcome::RetriesExhausted | Outcome::EventAgeExceeded => FAILURE_TYPE,
    };
    EventBuilderV10::new()
        .id(format!("{}.result", invocation.id))
        .source(super::request::source(&invocation.function))
        .ty(ty)
        .subject(invocation.id.clone())
        .data(
            "application/json",
            serde_json::to_value(&data).unwrap_or_default(),
        )
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;
    use http::StatusCode;

    use super::*;
    use crate::async_invocation::request::tests::invocation;

    fn status(code: u16) -> Result<Answer, (Failure, Option<Duration>)> {
        Err((
            Failure::Status {
                status: StatusCode::from_u16(code).expect("status"),
                body: Bytes::from_static(b"boom"),
            },
            None,
        ))
    }

    fn ok() -> Result<Answer, (Failure, Option<Duration>)> {
        Ok(Answer {
            status: StatusCode::CREATED,
            headers: Default::default(),
            body: Bytes::from_static(b"made"),
        })
    }

    #[test]
    fn five_hundreds_429_and_lost_connections_are_retried_with_the_back_off_then_exhausted() {
        let policy = AsyncPolicy::default();
        assert_eq!(
            after_attempt(1, &policy, status(500)),
            Next::Retry(policy.retry.backoff(1))
        );
        assert_eq!(
            after_attempt(2, &policy, status(429)),
            Next::Retry(policy.retry.backoff(2))
        );
        let lost = Err((Failure::Transport("reset".into()), None));
        assert_eq!(
            after_attempt(1, &policy, lost),
            Next::Retry(policy.retry.backoff(1))
        );
        let Next::Done(record) = after_attempt(3, &policy, status(503)) else {
            panic!("the retries are used");
        };
        assert_eq!(record.outcome, Outcome::RetriesExhausted);
        assert_eq!((record.attempts, record.status), (3, Some(503)));
        assert_eq!(record.body, Bytes::from_static(b"boom"));
    }

    #[test]
    fn a_final_answer_ends_at_once_and_a_2xx_is_a_success() {
        let policy = AsyncPolicy::default();
        let Next::Done(record) = after_attempt(1, &policy, status(404)) else {
            panic!("404 is final for an invocation");
        };
        assert_eq!((record.outcome, record.attempts), (Outcome::RetriesExhausted, 1));
        let Next::Done(record) = after_attempt(2, &policy, ok()) else {
            panic!("done");
        };
        assert_eq!(record.outcome, Outcome::Success);
        assert_eq!((record.attempts, record.status), (2, Some(201)));
    }

    #[test]
    fn an_invocation_expires_only_past_the_max_age() {
        let policy = AsyncPolicy {
            max_event_age: Duration::from_secs(60),
            ..AsyncPolicy::default()
        };
        let accepted = SystemTime::UNIX_EPOCH;
        assert!(!expired(accepted, accepted + Duration::from_secs(60), &policy));
        assert!(expired(accepted, accepted + Duration::from_secs(61), &policy));
        let record = expired_record(3, None);
        assert_eq!((record.outcome, record.attempts), (Outcome::EventAgeExceeded, 2));
    }

    #[test]
    fn the_record_event_carries_outcome_attempts_status_and_body() {
        let inv = invocation(None);
        let record = Record {
            outcome: Outcome::RetriesExhausted,
            attempts: 3,
            status: Some(500),
            body: Bytes::from(vec![b'x'; MAX_RECORD_BODY + 1]),
            error: Some("boom".into()),
        };
        let event = record_event(&inv, &record);
        assert_eq!(event.ty(), FAILURE_TYPE);
        assert_eq!(event.id(), "0b8f.result");
        assert_eq!(event.subject(), Some("0b8f"));
        let Some(cloudevents::Data::Json(data)) = event.data() else {
            panic!("json data");
        };
        assert_eq!(data["outcome"], "RetriesExhausted");
        assert_eq!(data["attempts"], 3);
        assert_eq!(data["status"], 500);
        assert_eq!(data["bodyTruncated"], true);
        assert_eq!(data["body"].as_str().map(str::len), Some(MAX_RECORD_BODY));
        assert_eq!(data["path"], "/orders/7?dry=1");
        let success = record_event(
            &inv,
            &Record {
                outcome: Outcome::Success,
                ..record
            },
        );
        assert_eq!(success.ty(), SUCCESS_TYPE);
    }
}
