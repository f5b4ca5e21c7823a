//! Per-namespace quotas of the buffer (`--namespace-buffer-memory-limit`): every namespace's queues
//! together may hold at most the quota, so one namespace's burst cannot take the buffer another
//! namespace's requests need. The global cap (`--buffer-memory-limit`) still holds over all of them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::reserve_within;

/// One namespace's share of the buffer: the bytes its queues hold, and the most they may.
#[derive(Clone, Debug)]
pub struct NamespaceAccount {
    used: Arc<AtomicUsize>,
    limit: usize,
}

impl NamespaceAccount {
    /// Reserves `bytes` unless that passes the quota.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        reserve_within(&self.used, self.limit, bytes)
    }

    /// Reserves `bytes` even past the quota (a request that was within it once already).
    pub fn force_reserve(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back `bytes` reserved earlier.
    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// The accounts of every namespace with a function, created on first use.
#[derive(Debug)]
pub struct NamespaceQuotas {
    limit: usize,
    // Locked only to look an account up when a function's queue is created, never across an await.
    accounts: Mutex<HashMap<String, Arc<AtomicUsize>>>,
}

impl NamespaceQuotas {
    /// Quotas of `limit` bytes per namespace.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The account of `namespace`, shared by all its functions' queues.
    pub fn account(&self, namespace: &str) -> NamespaceAccount {
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Namespaces whose functions are all gone hold no bytes and no queue refers to them.
        accounts.retain(|_, used| Arc::strong_count(used) > 1);
        let used = accounts
            .entry(namespace.to_string())
            .or_insert_with(|| Arc::new(AtomicUsize::new(0)))
            .clone();
        NamespaceAccount {
            used,
            limit: self.limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BufferBudget, Overflow};

    #[test]
    fn one_namespace_cannot_take_another_s_share() {
        let budget = BufferBudget::new(1000).with_namespace_limit(600);
        let a1 = budget.for_namespace("a");
        let a2 = budget.for_namespace("a");
        let b = budget.for_namespace("b");
        a1.reserve(400).expect("within a's quota");
        assert_eq!(
            a2.reserve(300),
            Err(Overflow::NamespaceMemory),
            "a's functions share a quota"
        );
        a2.reserve(200).expect("a reaches its quota");
        // b still has the rest of the global budget.
        b.reserve(400).expect("b unaffected by a's burst");
        assert_eq!(b.reserve(1), Err(Overflow::GlobalMemory));
        assert_eq!(budget.used(), 1000);
        a1.release(400);
        b.reserve(1).expect("room again");
        assert_eq!(a1.reserve(400), Err(Overflow::GlobalMemory));
        // A refused reservation leaves nothing behind in the namespace account.
        a1.reserve(199)
            .expect("a: 200 + 199 within 600 and the global 1000");
    }

    #[test]
    fn without_a_quota_only_the_global_cap_applies() {
        let budget = BufferBudget::new(1000);
        let a = budget.for_namespace("a");
        a.reserve(1000).expect("the whole budget");
        assert_eq!(a.reserve(1), Err(Overflow::GlobalMemory));
        a.force_reserve(10);
        a.release(1010);
        assert_eq!(budget.used(), 0);
    }
}
