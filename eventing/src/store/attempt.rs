//! One delivery attempt of a stored event, and what to tell the store afterwards. With a durable
//! store the retry schedule is the store's redelivery: a failed attempt is NAK'd with the back-off as
//! its delay, and the delivery count comes from the store, so a crash between attempts neither loses
//! the event nor resets its count.

use std::time::{Duration, SystemTime};

use cloudevents::Event;

use crate::{
    delivery::{
        Answer, DeliveryConfig, EventSender, Failure, Outgoing, SendError, Target, dead_letter, encoding,
        trace::AttemptSpan,
    },
    retry::{RetryPolicy, retry_after},
};

/// Deliveries kept, beyond one per attempt, for a dead-letter step that a crash interrupted: such a
/// redelivery goes straight to the dead-letter sink.
pub const DEAD_LETTER_DELIVERIES: u32 = 3;

/// Added to every consumer's `AckWait` beyond the attempt timeout and the cold-start budget, for the
/// dead-letter step and scheduling.
pub const ACK_WAIT_MARGIN: Duration = Duration::from_secs(30);

/// What to tell the store about a message after handling it.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// The subscriber has it: acknowledge.
    Ack,
    /// Redeliver after this delay (NAK with delay).
    Retry(Duration),
    /// No more attempts: send it to the dead-letter sink (then acknowledge).
    DeadLetter(Failure),
}

/// The store's `MaxDeliver` for a Trigger with `retries`: one delivery per attempt plus
/// [`DEAD_LETTER_DELIVERIES`].
pub fn max_deliver(retries: u32) -> i64 {
    i64::from(retries) + 1 + i64::from(DEAD_LETTER_DELIVERIES)
}

/// The store's `AckWait`: longer than an attempt (whose timeout already counts a cold start) plus the
/// cold-start budget plus [`ACK_WAIT_MARGIN`]. In-progress acks extend it while an attempt runs.
pub fn ack_wait(attempt_timeout: Duration, cold_start_budget: Duration) -> Duration {
    attempt_timeout + cold_start_budget + ACK_WAIT_MARGIN
}

/// Whether delivery number `delivered` (from 1) of an event may still go to the subscriber.
pub fn may_attempt(delivered: u32, retries: u32) -> bool {
    delivered <= retries.saturating_add(1)
}

/// What follows attempt number `delivered` (from 1), which ended with `result` (the failure and the
/// server's `Retry-After`).
pub fn after_attempt(
    delivered: u32,
    retry: &RetryPolicy,
    result: Result<(), (Failure, Option<Duration>)>,
) -> Next {
    match result {
        Ok(()) => Next::Ack,
        Err((failure, asked)) if failure.is_retryable() && delivered <= retry.retries => {
            Next::Retry(retry.wait_before(delivered, asked))
        }
        Err((failure, _)) => Next::DeadLetter(failure),
    }
}

/// The failure recorded for an event redelivered after its attempts were used up (a crash
/// interrupted its last attempt or its dead-letter step, so the real last failure is unknown).
pub fn interrupted(delivered: u32) -> Failure {
    Failure::Transport(format!(
        "delivery interrupted; redelivered by the event store as delivery {delivered} after the last attempt"
    ))
}

/// Sends `event` to `target` once, within `timeout`.
pub async fn attempt<S: EventSender>(
    sender: &S,
    event: &Event,
    target: &Target,
    timeout: Duration,
) -> Result<Answer, (Failure, Option<Duration>)> {
    let (headers, body) =
        encoding::encode(event.clone()).map_err(|e| (Failure::Encoding(e.to_string()), None))?;
    let mut request = Outgoing {
        target: target.clone(),
        headers,
        body,
    };
    // The store's delivery count is the caller's; the span names the attempt without it.
    let span = AttemptSpan::start(target, 0, &mut request.headers);
    let sent = tokio::time::timeout(timeout, sender.send(request)).await;
    span.finish_with(&sent);
    judge(sent, timeout)
}

/// What an attempt's answer (or its failure, or the timeout after `timeout`) means: `Ok` for a 2xx,
/// otherwise the failure with the server's `Retry-After`.
pub fn judge(
    sent: Result<Result<Answer, SendError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Result<Answer, (Failure, Option<Duration>)> {
    match sent {
        Ok(Ok(answer)) if answer.status.is_success() => Ok(answer),
        Ok(Err(SendError::ReplyTooLarge { status, .. })) if status.is_success() => Ok(Answer {
            status,
            headers: Default::default(),
            body: Default::default(),
        }),
        Ok(Ok(answer)) => {
            let asked = retry_after(&answer.headers, SystemTime::now());
            let mut body = answer.body;
            body.truncate(dead_letter::MAX_ERROR_DATA);
            Err((
                Failure::Status {
                    status: answer.status,
                    body,
                },
                asked,
            ))
        }
        Ok(Err(error)) => Err((Failure::from(error), None)),
        Err(_) => Err((Failure::Timeout(timeout), None)),
    }
}

/// Sends `event`, annotated with `failure` at `subscriber`, to the dead-letter sink with the
/// Trigger's whole retry schedule in process (the caller keeps the message alive with in-progress
/// acks). `Ok(false)`: there is no sink.
pub async fn dead_letter<S: EventSender>(
    sender: &S,
    event: &Event,
    subscriber: &Target,
    config: &DeliveryConfig,
    failure: &Failure,
) -> Result<bool, Failure> {
    let Some(sink) = &config.dead_letter else {
        return Ok(false);
    };
    let mut annotated = event.clone();
    dead_letter::annotate(&mut annotated, subscriber, failure);
    send_retrying(sender, &annotated, sink, &config.retry, config.attempt_timeout).await?;
    Ok(true)
}

/// Sends `event` to `target`, retrying retryable failures with `retry`'s back-off in process (the
/// caller keeps a stored message alive with in-progress acks meanwhile).
pub async fn send_retrying<S: EventSender>(
    sender: &S,
    event: &Event,
    target: &Target,
    retry: &RetryPolicy,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut tried: u32 = 0;
    loop {
        tried += 1;
        match attempt(sender, event, target, timeout).await {
            Ok(_) => return Ok(()),
            Err((failure, asked)) if failure.is_retryable() && tried <= retry.retries => {
                tokio::time::sleep(retry.wait_before(tried, asked)).await;
            }
            Err((failure, _)) => return Err(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::StatusCode;

    use super::*;

    fn status(code: u16) -> Result<(), (Failure, Option<Duration>)> {
        Err((
            Failure::Status {
                status: StatusCode::from_u16(code).expect("valid status"),
                body: Bytes::new(),
            },
            None,
        ))
    }

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn a_retryable_failure_is_retried_with_the_back_off_until_the_retries_are_used() {
        let retry = policy(2);
        assert_eq!(
            after_attempt(1, &retry, status(500)),
            Next::Retry(retry.backoff(1))
        );
        assert_eq!(
            after_attempt(2, &retry, status(503)),
            Next::Retry(retry.backoff(2))
        );
        assert!(matches!(
            after_attempt(3, &retry, status(500)),
            Next::DeadLetter(_)
        ));
        assert_eq!(after_attempt(3, &retry, Ok(())), Next::Ack);
    }

    #[test]
    fn a_final_status_goes_to_the_dead_letter_sink_at_once() {
        assert!(matches!(
            after_attempt(1, &policy(5), status(400)),
            Next::DeadLetter(_)
        ));
    }

    #[test]
    fn retry_after_lengthens_the_delay() {
        let retry = policy(3);
        let failure = Failure::Transport("reset".into());
        let asked = Some(Duration::from_secs(20));
        assert_eq!(
            after_attempt(1, &retry, Err((failure, asked))),
            Next::Retry(Duration::from_secs(20))
        );
    }

    #[test]
    fn attempts_max_deliver_and_ack_wait_follow_the_trigger() {
        assert!(may_attempt(4, 3));
        assert!(!may_attempt(5, 3));
        assert_eq!(max_deliver(3), 4 + i64::from(DEAD_LETTER_DELIVERIES));
        assert_eq!(
            ack_wait(Duration::from_secs(60), Duration::from_secs(120)),
            Duration::from_secs(210)
        );
    }
}
