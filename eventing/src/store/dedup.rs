//! A bounded window of recently stored message ids: the memory store's equivalent of JetStream's
//! duplicate window. Pure: the caller passes the time (tokio's clock, so tests run on paused time).

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use tokio::time::Instant;

/// Default number of ids remembered; when full the oldest is forgotten early, so a duplicate of it
/// would be stored again (said in `docs/eventing.md`).
pub const DEFAULT_DEDUP_CAPACITY: usize = 100_000;

/// Ids seen within the last `window`, at most `capacity` of them.
#[derive(Debug)]
pub struct DedupWindow {
    window: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    /// Insertion order; an entry whose time no longer matches `seen` was forgotten.
    order: VecDeque<(Instant, String)>,
}

impl DedupWindow {
    /// A window of `window` remembering at most `capacity` ids (at least one).
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `id` was recorded within the window before `now`; if not, records it.
    pub fn check_and_record(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        if self.seen.contains_key(id) {
            return true;
        }
        while self.seen.len() >= self.capacity {
            let Some((at, oldest)) = self.order.pop_front() else {
                break;
            };
            self.remove_if(&oldest, at);
        }
        self.seen.insert(id.to_string(), now);
        self.order.push_back((now, id.to_string()));
        false
    }

    /// Forgets `id` (its event was not stored after all, so a retry must not count as a duplicate).
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    /// Whether `id` is remembered (without expiring anything).
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains_key(id)
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.window && self.order.len() <= 2 * self.capacity {
                break;
            }
            if let Some((at, id)) = self.order.pop_front() {
                self.remove_if(&id, at);
            }
        }
    }

    fn remove_if(&mut self, id: &str, at: Instant) {
        if self.seen.get(id) == Some(&at) {
            self.seen.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_second_id_within_the_window_is_a_duplicate_and_after_it_is_not() {
        let mut window = DedupWindow::new(Duration::from_secs(120), 10);
        assert!(!window.check_and_record("a", Instant::now()));
        tokio::time::advance(Duration::from_secs(119)).await;
        assert!(window.check_and_record("a", Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !window.check_and_record("a", Instant::now()),
            "the window is over"
        );
        assert_eq!(window.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_forgets_the_oldest_id_first() {
        let mut window = DedupWindow::new(Duration::from_secs(120), 2);
        let now = Instant::now();
        assert!(!window.check_and_record("a", now));
        assert!(!window.check_and_record("b", now));
        assert!(!window.check_and_record("c", now));
        assert_eq!(window.len(), 2);
        assert!(window.check_and_record("c", now));
        assert!(window.check_and_record("b", now));
        assert!(!window.check_and_record("a", now), "a was forgotten to make room");
    }

    #[tokio::test(start_paused = true)]
    async fn a_forgotten_id_is_new_again_and_its_stale_entry_does_not_evict_a_later_one() {
        let mut window = DedupWindow::new(Duration::from_secs(10), 10);
        assert!(!window.check_and_record("a", Instant::now()));
        window.forget("a");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!window.check_and_record("a", Instant::now()));
        tokio::time::advance(Duration::from_secs(6)).await;
        // The first entry (11 s old) expires; the second (6 s old) must stay.
        assert!(window.check_and_record("a", Instant::now()));
        assert!(!window.is_empty());
    }
}
