//! The bounded FIFO queue of requests waiting for a function, and the global buffer budget that all
//! queues share (with, optionally, a quota per namespace: [`quota`]).
//!
//! A parked request's body is never read while it waits (bodies stream once a pod is chosen), so the
//! bytes accounted per request are an estimate of what the activator itself holds for it: the request
//! head plus a fixed overhead (see [`parked_request_bytes`]).

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

pub mod quota;

use tokio::time::Instant;

use quota::{NamespaceAccount, NamespaceQuotas};

/// Fixed per-request overhead accounted on top of the head: task, channel and queue entry.
pub const PARKED_OVERHEAD_BYTES: usize = 512;

/// Estimated bytes the activator holds for a parked request with this head.
pub fn parked_request_bytes<B>(request: &http::Request<B>) -> usize {
    let headers: usize = request
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 8)
        .sum();
    let uri = request.uri();
    let uri_len = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    PARKED_OVERHEAD_BYTES + uri_len + headers
}

/// Estimated bytes the activator holds for a parked request whose raw head is `head_len` bytes (a
/// request parked before hyper parsed it keeps just its raw head).
pub fn parked_head_bytes(head_len: usize) -> usize {
    PARKED_OVERHEAD_BYTES + head_len
}

/// Limits of one function's queue.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Most waiting requests.
    pub max_requests: usize,
    /// Most bytes accounted to waiting requests.
    pub max_bytes: usize,
}

/// The memory cap shared by every function's queue. A handle made with
/// [`BufferBudget::for_namespace`] also draws on its namespace's quota.
#[derive(Clone, Debug)]
pub struct BufferBudget {
    used: Arc<AtomicUsize>,
    limit: usize,
    quotas: Option<Arc<NamespaceQuotas>>,
    namespace: Option<NamespaceAccount>,
}

/// Adds `bytes` to `used` unless that passes `limit`.
pub(crate) fn reserve_within(used: &AtomicUsize, limit: usize, bytes: usize) -> bool {
    used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
        let next = now.checked_add(bytes)?;
        (next <= limit).then_some(next)
    })
    .is_ok()
}

impl BufferBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            used: Arc::new(AtomicUsize::new(0)),
            limit,
            quotas: None,
            namespace: None,
        }
    }

    /// The same budget where each namespace may hold at most `limit` bytes of it (0: no quota).
    pub fn with_namespace_limit(mut self, limit: usize) -> Self {
        self.quotas = (limit > 0).then(|| Arc::new(NamespaceQuotas::new(limit)));
        self
    }

    /// The handle a queue of a function in `namespace` draws on: the global budget, and that
    /// namespace's quota when quotas are on.
    pub fn for_namespace(&self, namespace: &str) -> Self {
        let mut handle = self.clone();
        handle.namespace = self.quotas.as_ref().map(|q| q.account(namespace));
        handle
    }

    /// Reserves `bytes` from the namespace's quota and the global budget, or says which would pass
    /// its limit (reserving nothing).
    pub fn reserve(&self, bytes: usize) -> Result<(), Overflow> {
        if let Some(ns) = &self.namespace
            && !ns.try_reserve(bytes)
        {
            return Err(Overflow::NamespaceMemory);
        }
        if !reserve_within(&self.used, self.limit, bytes) {
            if let Some(ns) = &self.namespace {
                ns.release(bytes);
            }
            return Err(Overflow::GlobalMemory);
        }
        Ok(())
    }

    /// Reserves `bytes`, or returns false when that would pass a limit.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        self.reserve(bytes).is_ok()
    }

    /// Reserves `bytes` even past the limits (for a request that was within them once already).
    pub fn force_reserve(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        if let Some(ns) = &self.namespace {
            ns.force_reserve(bytes);
        }
    }

    /// Gives back `bytes` reserved earlier.
    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(ns) = &self.namespace {
            ns.release(bytes);
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// Why a request could not join the queue; the names are the flags that set the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// `--queue-max-requests`.
    Requests,
    /// `--queue-max-bytes`.
    Bytes,
    /// `--buffer-memory-limit`.
    GlobalMemory,
    /// `--namespace-buffer-memory-limit`.
    NamespaceMemory,
    /// The function's own `spec.scale.maxQueued`.
    FunctionRequests,
}

impl Overflow {
    /// The flag name, used in error messages and metric labels.
    pub fn limit_name(self) -> &'static str {
        match self {
            Self::Requests => "queue-max-requests",
            Self::Bytes => "queue-max-bytes",
            Self::GlobalMemory => "buffer-memory-limit",
            Self::NamespaceMemory => "namespace-buffer-memory-limit",
            Self::FunctionRequests => "maxQueued",
        }
    }
}

/// One waiting request.
#[derive(Debug)]
pub struct Waiter<T> {
    /// Identifies the waiter for removal when it gives up.
    pub id: u64,
    /// Bytes accounted to it.
    pub bytes: usize,
    /// When it joined the queue.
    pub enqueued: Instant,
    /// Whether it started a cold episode (for the cold-start histogram).
    pub cold: bool,
    /// How to hand it a result.
    pub notify: T,
}

/// Ids of waiters appended at the back grow from here; ids of waiters put at the front shrink from
/// just below it.
const FIRST_BACK_ID: u64 = 1 << 63;

/// A bounded FIFO queue of waiters.
#[derive(Debug)]
pub struct WaitQueue<T> {
    waiters: VecDeque<Waiter<T>>,
    bytes: usize,
    next_id: u64,
    next_front_id: u64,
    limits: QueueLimits,
    budget: BufferBudget,
}

impl<T> WaitQueue<T> {
    /// An empty queue with `limits`, drawing on the shared `budget`.
    pub fn new(limits: QueueLimits, budget: BufferBudget) -> Self {
        Self {
            waiters: VecDeque::new(),
            bytes: 0,
            next_id: FIRST_BACK_ID,
            next_front_id: FIRST_BACK_ID - 1,
            limits,
            budget,
        }
    }

    /// Puts a waiter that was already admitted once (its pod refused the connection) ahead of every
    /// other: it arrived before them. The count and byte limits do not apply to it (it was within
    /// them when it arrived), but its bytes are accounted.
    pub fn push_front(&mut self, bytes: usize, notify: T, enqueued: Instant) -> u64 {
        // Front ids count down from just below the first back id, so ids stay sorted front to back.
        let id = self.next_front_id;
        self.next_front_id -= 1;
        self.budget.force_reserve(bytes);
        self.bytes += bytes;
        self.waiters.push_front(Waiter {
            id,
            bytes,
            enqueued,
            cold: false,
            notify,
        });
        id
    }

    /// Appends a waiter, or says which limit it would pass.
    pub fn push(&mut self, bytes: usize, cold: bool, notify: T, now: Instant) -> Result<u64, (Overflow, T)> {
        if self.waiters.len() >= self.limits.max_requests {
            return Err((Overflow::Requests, notify));
        }
        if self.bytes + bytes > self.limits.max_bytes {
            return Err((Overflow::Bytes, notify));
        }
        if let Err(overflow) = self.budget.reserve(bytes) {
            return Err((overflow, notify));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.bytes += bytes;
        self.waiters.push_back(Waiter {
            id,
            bytes,
            enqueued: now,
            cold,
            notify,
        });
        Ok(id)
    }

    /// Takes the oldest waiter.
    pub fn pop(&mut self) -> Option<Waiter<T>> {
        let waiter = self.waiters.pop_front()?;
        self.account_removed(waiter.bytes);
        Some(waiter)
    }

    /// Removes the waiter `id` if it is still queued (it gave up: deadline or client gone).
    pub fn remove(&mut self, id: u64) -> Option<Waiter<T>> {
        // Ids grow monotonically, so the waiter's position can be found by binary search.
        let index = self.waiters.binary_search_by_key(&id, |w| w.id).ok()?;
        let waiter = self.waiters.remove(index)?;
        self.account_removed(waiter.bytes);
        Some(waiter)
    }

    /// Takes every waiter, oldest first.
    pub fn drain(&mut self) -> Vec<Waiter<T>> {
        let all: Vec<_> = self.waiters.drain(..).collect();
        self.budget.release(self.bytes);
        self.bytes = 0;
        all
    }

    fn account_removed(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.budget.release(bytes);
    }

    /// Waiting requests.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Bytes accounted to waiting requests.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T> Drop for WaitQueue<T> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_requests: usize, max_bytes: usize, budget: &BufferBudget) -> WaitQueue<u32> {
        WaitQueue::new(
            QueueLimits {
                max_requests,
                max_bytes,
            },
            budget.clone(),
        )
    }

    #[test]
    fn fifo_order_and_removal() {
        let budget = BufferBudget::new(1 << 20);
        let mut q = queue(10, 10_000, &budget);
        let now = Instant::now();
        let ids: Vec<u64> = (0..5).map(|i| q.push(100, false, i, now).unwrap()).collect();
        assert_eq!(q.remove(ids[2]).map(|w| w.notify), Some(2));
        assert_eq!(q.remove(ids[2]).map(|w| w.notify), None);
        let order: Vec<u32> = std::iter::from_fn(|| q.pop().map(|w| w.notify)).collect();
        assert_eq!(order, vec![0, 1, 3, 4]);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn retried_waiters_go_first_and_can_leave() {
        let budget = BufferBudget::new(1 << 20);
        let mut q = queue(2, 10_000, &budget);
        let now = Instant::now();
        q.push(100, false, 1, now).unwrap();
        q.push(100, false, 2, now).unwrap();
        let a = q.push_front(100, 10, now);
        let b = q.push_front(100, 11, now);
        assert_eq!(q.len(), 4, "past the count limit");
        assert_eq!(q.remove(a).map(|w| w.notify), Some(10));
        assert_eq!(q.pop().map(|w| w.notify), Some(11));
        assert_eq!(q.remove(b).map(|w| w.notify), None);
        let order: Vec<u32> = std::iter::from_fn(|| q.pop().map(|w| w.notify)).collect();
        assert_eq!(order, vec![1, 2]);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn limits_by_count_bytes_and_budget() {
        let budget = BufferBudget::new(250);
        let now = Instant::now();
        let mut a = queue(2, 1000, &budget);
        a.push(10, false, 0, now).unwrap();
        a.push(10, false, 1, now).unwrap();
        assert_eq!(a.push(10, false, 2, now).unwrap_err().0, Overflow::Requests);
        let mut b = queue(100, 150, &budget);
        b.push(100, false, 0, now).unwrap();
        assert_eq!(b.push(100, false, 1, now).unwrap_err().0, Overflow::Bytes);
        b.push(50, false, 2, now).unwrap();
        let mut c = queue(100, 1000, &budget);
        assert_eq!(c.push(100, false, 3, now).unwrap_err().0, Overflow::GlobalMemory);
        drop(b);
        c.push(100, false, 3, now).unwrap();
        assert_eq!(a.drain().len(), 2);
        assert_eq!(budget.used(), 100);
    }
}
