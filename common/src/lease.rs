//! Leader election on a `coordination.k8s.io/v1` Lease, built on `kube-lease-manager`.
//!
//! Controllers that must act alone (the operator, the autoscaler) start a [`Leadership`], wait for
//! [`Leadership::acquired`], do their work while racing it against [`Leadership::lost`], and call
//! [`Leadership::release`] on shutdown, which frees the Lease: a process that starts afterwards takes it
//! at once; a standby that is already waiting takes it when the released lease would have expired (the
//! library sleeps until then), so failover takes at most `duration_seconds`.
//!
//! ```no_run
//! # async fn example(client: kube::Client) -> Result<(), zeroscale_common::lease::LeaseError> {
//! use zeroscale_common::lease::{LeaseConfig, Leadership};
//! let config = LeaseConfig::new("zeroscale-system", "zeroscale-operator");
//! let mut leadership = Leadership::start(client, config).await?;
//! leadership.acquired().await;
//! tokio::select! {
//!     () = leadership.lost() => { /* stop working: another replica leads now */ }
//!     () = std::future::pending::<()>() => { /* the work */ }
//! }
//! leadership.release().await;
//! # Ok(())
//! # }
//! ```

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

/// Leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Lease could not be read or created.
    #[error("cannot set up lease {namespace}/{name}")]
    Setup {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The underlying error.
        #[source]
        source: LeaseManagerError,
    },
}

/// Which Lease to hold, as whom, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease (one per component).
    pub name: String,
    /// Holder identity; unique per process.
    pub identity: String,
    /// Seconds the lease stays valid after the last renewal.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace_seconds: u64,
}

impl LeaseConfig {
    /// A Lease `namespace/name` held for 15 s, renewed 5 s before expiry, with an identity made of
    /// `$POD_NAME` (or `$HOSTNAME`) and a random suffix, so two processes on one host never share it.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "zeroscale".to_string());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: format!("{host}-{}", &suffix[..8]),
            duration_seconds: 15,
            grace_seconds: 5,
        }
    }
}

/// A running leader election: a background task that acquires and renews the Lease.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
    config: LeaseConfig,
}

impl Leadership {
    /// Creates the Lease if needed and starts competing for it.
    pub async fn start(client: Client, config: LeaseConfig) -> Result<Self, LeaseError> {
        let manager = LeaseManagerBuilder::new(client, config.name.clone())
            .with_namespace(config.namespace.clone())
            .with_identity(config.identity.clone())
            .with_duration(config.duration_seconds)
            .with_grace(config.grace_seconds)
            .build()
            .await
            .map_err(|source| LeaseError::Setup {
                namespace: config.namespace.clone(),
                name: config.name.clone(),
                source,
            })?;
        let (state, task) = manager.watch().await;
        Ok(Self { state, task, config })
    }

    /// The configuration this election runs with.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Whether this process holds the Lease right now.
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Resolves once this process holds the Lease.
    pub async fn acquired(&mut self) {
        if self.state.wait_for(|leader| *leader).await.is_err() {
            // The election task ended; it never hands out leadership again.
            std::future::pending::<()>().await;
        }
        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "acquired leadership");
    }

    /// Resolves once this process no longer holds the Lease (or the election task ended).
    pub async fn lost(&mut self) {
        let _ = self.state.wait_for(|leader| !*leader).await;
        tracing::warn!(lease = %self.config.name, identity = %self.config.identity, "lost leadership");
    }

    /// A receiver of the leadership state, for tasks that need to watch it themselves. Drop it before
    /// [`Leadership::release`], which releases the Lease only once every receiver is gone.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Stops competing and releases the Lease if held, so a successor does not wait for it to expire.
    pub async fn release(self) {
        let Self { state, task, config } = self;
        // Closing the last receiver tells the task to release the lock and end.
        drop(state);
        match task.await {
            Ok(Ok(_)) => tracing::info!(lease = %config.name, "released lease"),
            Ok(Err(e)) => tracing::warn!(lease = %config.name, error = %e, "cannot release lease"),
            Err(e) => tracing::warn!(lease = %config.name, error = %e, "lease task failed"),
        }
    }
}
