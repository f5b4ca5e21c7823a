//! The memory store's async invocations: accepted into this process and run by a task each, at most
//! `capacity` at a time (beyond that the hook answers 503). An invocation is lost if the process dies
//! before it ends, like any event of the memory store. `Idempotency-Key` follows JetStream's rule over
//! a bounded window ([`DedupWindow`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::{sync::Semaphore, time::Instant};

use super::{
    policy::AsyncFunctions,
    request::Invocation,
    run::{self, InvocationSender},
    store::{Accepted, InvocationStore},
};
use crate::{
    broker::PublishError,
    delivery::Clock,
    store::{StoreFuture, dedup::DedupWindow},
};

/// Default number of invocations running or waiting for a retry in one process.
pub const DEFAULT_CAPACITY: usize = 10_000;

struct Window {
    seen: DedupWindow,
    /// The invocation id of each remembered key, to answer a duplicate with the original's id.
    ids: HashMap<String, String>,
}

/// The memory store of async invocations.
pub struct MemoryInvocations<S, C> {
    sender: Arc<S>,
    clock: Arc<C>,
    functions: AsyncFunctions,
    window: Mutex<Window>,
    slots: Arc<Semaphore>,
}

impl<S: InvocationSender, C: Clock> MemoryInvocations<S, C> {
    /// Runs invocations through `sender` with the policies in `functions`, waiting back-offs on
    /// `clock`; at most `capacity` at once; `Idempotency-Key`s remembered for `duplicate_window`.
    pub fn new(
        sender: Arc<S>,
        clock: Arc<C>,
        functions: AsyncFunctions,
        duplicate_window: Duration,
        capacity: usize,
    ) -> Self {
        Self {
            sender,
            clock,
            functions,
            window: Mutex::new(Window {
                seen: DedupWindow::new(duplicate_window, crate::store::dedup::DEFAULT_DEDUP_CAPACITY),
                ids: HashMap::new(),
            }),
            slots: Arc::new(Semaphore::new(capacity)),
        }
    }

    /// Invocations running or waiting now.
    pub fn in_flight(&self, capacity: usize) -> usize {
        capacity - self.slots.available_permits()
    }

    fn accept(&self, invocation: Invocation) -> Result<Accepted, PublishError> {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let key = invocation.dedup_key();
        if let Some(key) = &key
            && window.seen.check_and_record(key, Instant::now())
        {
            let id = window
                .ids
                .get(key)
                .cloned()
                .unwrap_or_else(|| invocation.id.clone());
            return Ok(Accepted { id, duplicate: true });
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            if let Some(key) = &key {
                window.seen.forget(key);
            }
            return Err(PublishError::Full);
        };
        if let Some(key) = key {
            // Keep the id map no larger than the window's memory.
            if window.ids.len() > window.seen.len() * 2 + 1024 {
                let Window { seen, ids } = &mut *window;
                ids.retain(|k, _| seen.contains(k));
            }
            window.ids.insert(key, invocation.id.clone());
        }
        drop(window);
        let id = invocation.id.clone();
        let (sender, clock) = (self.sender.clone(), self.clock.clone());
        let policy = self.functions.get(&invocation.function);
        tokio::spawn(async move {
            let record = run::run(&*sender, &*clock, &invocation, &policy).await;
            let reported = run::report(&*sender, &invocation, &record, &policy).await;
            run::log_end(&invocation, &record, &reported);
            drop(slot);
        });
        Ok(Accepted { id, duplicate: false })
    }
}

impl<S: InvocationSender, C: Clock> InvocationStore for MemoryInvocations<S, C> {
    fn append(&self, invocation: Invocation) -> StoreFuture<'_, Result<Accepted, PublishError>> {
        Box::pin(std::future::ready(self.accept(invocation)))
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
