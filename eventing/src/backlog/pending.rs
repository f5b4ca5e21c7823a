//! The events the in-memory broker holds for each Trigger: entered when an accepted event is fanned
//! out to the Trigger, left when its delivery finished (delivered, dead-lettered or given up). Pure
//! bookkeeping on tokio's clock, so tests run on paused time.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use tokio::time::Instant;

use super::Backlog;
use crate::metrics::TriggerLabels;

/// One Trigger's unfinished events, by acceptance time (a sequence number breaks ties).
#[derive(Debug, Default)]
struct TriggerPending {
    next: u64,
    accepted: BTreeSet<(Instant, u64)>,
}

/// Unfinished events per Trigger. Shared by the broker (which enters and leaves them) and the
/// sampler (which reads the backlog).
#[derive(Debug, Default)]
pub struct PendingEvents {
    triggers: Mutex<HashMap<TriggerLabels, TriggerPending>>,
}

/// One event's place in a Trigger's backlog; leaving it (dropping) takes the event out.
#[derive(Debug)]
pub struct PendingEvent {
    events: Arc<PendingEvents>,
    trigger: TriggerLabels,
    entry: (Instant, u64),
}

impl PendingEvents {
    /// Counts an event accepted at `accepted` as unfinished for `trigger` until the returned
    /// [`PendingEvent`] is dropped.
    pub fn enter(self: &Arc<Self>, trigger: &TriggerLabels, accepted: Instant) -> PendingEvent {
        let mut triggers = self.triggers.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = triggers.entry(trigger.clone()).or_default();
        let entry = (accepted, pending.next);
        pending.next += 1;
        pending.accepted.insert(entry);
        PendingEvent {
            events: Arc::clone(self),
            trigger: trigger.clone(),
            entry,
        }
    }

    /// `trigger`'s backlog at `now`.
    pub fn backlog(&self, trigger: &TriggerLabels, now: Instant) -> Backlog {
        let triggers = self.triggers.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pending) = triggers.get(trigger) else {
            return Backlog::default();
        };
        Backlog {
            depth: pending.accepted.len() as u64,
            oldest_age: pending
                .accepted
                .first()
                .map(|(at, _)| now.saturating_duration_since(*at))
                .unwrap_or_default(),
        }
    }

    fn leave(&self, trigger: &TriggerLabels, entry: (Instant, u64)) {
        let mut triggers = self.triggers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pending) = triggers.get_mut(trigger) {
            pending.accepted.remove(&entry);
            // Forget idle Triggers so deleted ones do not accumulate.
            if pending.accepted.is_empty() {
                triggers.remove(trigger);
            }
        }
    }
}

impl Drop for PendingEvent {
    fn drop(&mut self) {
        self.events.leave(&self.trigger, self.entry);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn trigger(name: &str) -> TriggerLabels {
        TriggerLabels {
            namespace: "shop".into(),
            trigger: name.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn depth_and_oldest_age_follow_the_unfinished_events_of_each_trigger() {
        let events = Arc::new(PendingEvents::default());
        let first = events.enter(&trigger("a"), Instant::now());
        tokio::time::advance(Duration::from_secs(2)).await;
        let second = events.enter(&trigger("a"), Instant::now());
        let other = events.enter(&trigger("b"), Instant::now());
        tokio::time::advance(Duration::from_secs(3)).await;
        let now = Instant::now();
        assert_eq!(
            events.backlog(&trigger("a"), now),
            Backlog {
                depth: 2,
                oldest_age: Duration::from_secs(5)
            }
        );
        assert_eq!(events.backlog(&trigger("b"), now).depth, 1);
        drop(first);
        assert_eq!(
            events.backlog(&trigger("a"), now),
            Backlog {
                depth: 1,
                oldest_age: Duration::from_secs(3)
            },
            "the next oldest is now the oldest"
        );
        drop((second, other));
        assert_eq!(events.backlog(&trigger("a"), now), Backlog::default());
        assert!(
            events.triggers.lock().expect("lock").is_empty(),
            "idle triggers are forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn events_accepted_at_the_same_instant_are_counted_apart() {
        let events = Arc::new(PendingEvents::default());
        let at = Instant::now();
        let one = events.enter(&trigger("a"), at);
        let two = events.enter(&trigger("a"), at);
        assert_eq!(events.backlog(&trigger("a"), at).depth, 2);
        drop(one);
        assert_eq!(events.backlog(&trigger("a"), at).depth, 1);
        drop(two);
        assert_eq!(events.backlog(&trigger("a"), at).depth, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_accepted_before_a_later_one_entered_is_still_the_oldest() {
        let events = Arc::new(PendingEvents::default());
        let early = Instant::now();
        tokio::time::advance(Duration::from_secs(4)).await;
        let _late = events.enter(&trigger("a"), Instant::now());
        // A source event that waited for room in the broker enters after a later one.
        let _waited = events.enter(&trigger("a"), early);
        assert_eq!(
            events.backlog(&trigger("a"), Instant::now()).oldest_age,
            Duration::from_secs(4)
        );
    }
}
