//! A broker Trigger's backlog as JetStream records it: depth = the consumer's `num_pending` (stored,
//! not yet delivered) + `num_ack_pending` (delivered, not yet acknowledged: in an attempt, or waiting
//! for its NAK delay); oldest age = the store time of the first message of the Trigger's subject
//! after the consumer's ack floor (everything at or below the floor is acknowledged, so that one is
//! the oldest not yet acknowledged). Read from the server, so it counts what every replica holds
//! and survives restarts of the activator.

use std::time::SystemTime;

use async_nats::jetstream::stream::RawMessageErrorKind;

use super::{StoreFuture, consumer::consumer_name, jetstream::JetStreamStore};
use crate::{
    backlog::{Backlog, sampler::StoreBacklog},
    metrics::TriggerLabels,
};

impl JetStreamStore {
    /// `trigger`'s backlog, from its consumer's info and the oldest unacknowledged message.
    pub async fn backlog(&self, trigger: &TriggerLabels) -> Result<Backlog, String> {
        let name = consumer_name(trigger);
        let stream = self
            .context()
            .get_stream_no_info(&self.config().stream)
            .await
            .map_err(|e| format!("stream {}: {e}", self.config().stream))?;
        let info = stream
            .consumer_info(&name)
            .await
            .map_err(|e| format!("consumer {name}: {e}"))?;
        let depth = info
            .num_pending
            .saturating_add(u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX));
        if depth == 0 {
            return Ok(Backlog::default());
        }
        let oldest = stream
            .raw_message_builder()
            .sequence(info.ack_floor.stream_sequence.saturating_add(1))
            .next_by_subject(self.subject(&trigger.namespace))
            .send()
            .await;
        let oldest_age = match oldest {
            Ok(message) => SystemTime::now()
                .duration_since(SystemTime::from(message.time))
                .unwrap_or_default(),
            // Acknowledged (and removed) between the two requests.
            Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => Default::default(),
            Err(error) => return Err(format!("oldest message of consumer {name}: {error}")),
        };
        Ok(Backlog { depth, oldest_age })
    }
}

impl StoreBacklog for JetStreamStore {
    fn backlog<'a>(&'a self, trigger: &'a TriggerLabels) -> StoreFuture<'a, Result<Backlog, String>> {
        Box::pin(JetStreamStore::backlog(self, trigger))
    }
}
