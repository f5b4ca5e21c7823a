//! Running one invocation: an attempt through the activator's request path, the schedule of
//! attempts (in process, for the memory store), and the record sent to its destination. The
//! attempt's answer is judged and the record is sent by the delivery machinery
//! ([`crate::store::attempt`]): an async invocation is a delivery whose subscriber is the function.

use std::{future::Future, time::Duration};

use super::{
    outcome::{self, Next, Outcome, Record},
    policy::AsyncPolicy,
    request::Invocation,
};
use crate::{
    delivery::{Answer, Clock, EventSender, Failure, SendError},
    store::attempt,
};

/// Deadline of each attempt to send a record to its destination.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends a stored request to its function. The activator sends it through its own data port, so
/// the invocation wakes a function at zero, waits in its queue and respects its concurrency limit.
pub trait InvocationSender: EventSender {
    /// Sends `invocation`'s request (method, path, headers, body) and reads the answer.
    fn invoke(&self, invocation: &Invocation) -> impl Future<Output = Result<Answer, SendError>> + Send;
}

/// One attempt of `invocation` within `timeout`.
pub async fn invoke_once<S: InvocationSender>(
    sender: &S,
    invocation: &Invocation,
    timeout: Duration,
) -> Result<Answer, (Failure, Option<Duration>)> {
    attempt::judge(
        tokio::time::timeout(timeout, sender.invoke(invocation)).await,
        timeout,
    )
}

/// Every attempt of `invocation` in this process, waiting the back-off on `clock`, until it ends.
pub async fn run<S: InvocationSender, C: Clock>(
    sender: &S,
    clock: &C,
    invocation: &Invocation,
    policy: &AsyncPolicy,
) -> Record {
    let mut last: Option<Failure> = None;
    for number in 1.. {
        if outcome::expired(invocation.accepted, clock.now(), policy) {
            return outcome::expired_record(number, last.as_ref());
        }
        let result = invoke_once(sender, invocation, policy.attempt_timeout).await;
        last = result.as_ref().err().map(|(f, _)| f.clone());
        match outcome::after_attempt(number, policy, result) {
            Next::Done(record) => return record,
            Next::Retry(delay) => clock.sleep(delay).await,
        }
    }
    unreachable!("the attempts end within u32::MAX")
}

/// Sends `record` to the destination its outcome goes to, retrying with the policy's back-off.
/// `Ok(false)`: the policy names no destination for it.
pub async fn report<S: EventSender>(
    sender: &S,
    invocation: &Invocation,
    record: &Record,
    policy: &AsyncPolicy,
) -> Result<bool, Failure> {
    let destination = match record.outcome {
        Outcome::Success => &policy.on_success,
        Outcome::RetriesExhausted | Outcome::EventAgeExceeded => &policy.on_failure,
    };
    let Some(target) = destination else {
        return Ok(false);
    };
    let event = outcome::record_event(invocation, record);
    attempt::send_retrying(sender, &event, target, &policy.retry, RECORD_TIMEOUT).await?;
    Ok(true)
}

/// Logs how an invocation ended and whether its record reached the destination.
pub fn log_end(invocation: &Invocation, record: &Record, reported: &Result<bool, Failure>) {
    let (ns, name, id) = (
        &invocation.function.namespace,
        &invocation.function.name,
        &invocation.id,
    );
    match reported {
        Ok(_) => {
            tracing::info!(namespace = %ns, function = %name, %id, outcome = ?record.outcome, attempts = record.attempts, status = ?record.status, "async invocation finished")
        }
        Err(error) => {
            tracing::error!(namespace = %ns, function = %name, %id, outcome = ?record.outcome, attempts = record.attempts, error = %error.describe(), "async invocation finished; its record could not be delivered and is lost")
        }
    }
}
