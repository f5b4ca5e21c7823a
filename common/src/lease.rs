//! Leader election on a `coordination.k8s.io/v1` Lease, built on `kube-lease-manager`.
//!
//! Controllers that must act alone (the operator, the autoscaler) start a [`Leadership`], wait for
//! [`Leadership::acquired`], do their work while racing it against [`Leadership::lost`], and call
//! [`Leadership::release`] on shutdown, which frees the Lease. A standby watches the Lease and takes it
//! as soon as it is released (the lease manager alone would sleep until the old lock expired); after a
//! crash, without a release, it takes over once the lease expires (`duration_seconds`).
//!
//! Needs RBAC on `leases` in the Lease's namespace: get, list, watch, create, patch, update.
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

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Pause after an API error of the lease manager before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

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
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    config: LeaseConfig,
}

impl Leadership {
    /// Creates the Lease if needed and starts competing for it.
    pub async fn start(client: Client, config: LeaseConfig) -> Result<Self, LeaseError> {
        let manager = new_manager(&client, &config).await?;
        let (sender, state) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let released = released(Api::namespaced(client.clone(), &config.namespace), &config.name);
        let election = Election {
            client,
            config: config.clone(),
            sender,
        };
        let task = tokio::spawn(election.compete(manager, stopped, released));
        Ok(Self {
            state,
            stop,
            task,
            config,
        })
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

    /// A receiver of the leadership state, for tasks that need to watch it themselves. It sees `false`
    /// once [`Leadership::release`] has run.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.state.clone()
    }

    /// Stops competing and releases the Lease if held, so that a successor does not wait for it to expire.
    pub async fn release(self) {
        let Self {
            stop, task, config, ..
        } = self;
        let _ = stop.send(());
        if let Err(e) = task.await {
            tracing::warn!(lease = %config.name, error = %e, "lease task failed");
        }
    }
}

/// Yields whenever the Lease has no holder (for example because its leader released it), so a waiting
/// standby re-reads it at once: the lease manager alone would sleep until the old lock's expiry.
fn released(api: Api<Lease>, name: &str) -> impl Stream<Item = ()> + Send + 'static {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    watcher(api, config)
        .default_backoff()
        .applied_objects()
        .filter_map(|lease| async move {
            let holder = lease.ok()?.spec?.holder_identity;
            holder.is_none_or(|h| h.is_empty()).then_some(())
        })
}

async fn new_manager(client: &Client, config: &LeaseConfig) -> Result<LeaseManager, LeaseError> {
    LeaseManagerBuilder::new(client.clone(), config.name.clone())
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
        })
}

/// The background side of a [`Leadership`].
struct Election {
    client: Client,
    config: LeaseConfig,
    sender: watch::Sender<bool>,
}

impl Election {
    /// Keeps the lock (or waits for it) and publishes the state until `stopped`, then releases the Lease.
    async fn compete(
        self,
        mut manager: LeaseManager,
        mut stopped: oneshot::Receiver<()>,
        released: impl Stream<Item = ()> + Send,
    ) {
        let name = &self.config.name;
        let mut released = std::pin::pin!(released);
        loop {
            let leading = *self.sender.borrow();
            let mut fresh_look = false;
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                changed = manager.changed() => match changed {
                    Ok(is_leader) => {
                        self.sender.send_replace(is_leader);
                    }
                    Err(e) => {
                        tracing::warn!(lease = %name, error = %e, "leader election error");
                        tokio::select! {
                            _ = &mut stopped => break,
                            () = tokio::time::sleep(ERROR_PAUSE) => {}
                        }
                    }
                },
                // Only a standby looks again; a leader's renewals are never interrupted.
                Some(()) = released.next(), if !leading => fresh_look = true,
            }
            if fresh_look {
                // The manager caches the lock until it expires; a new one reads the Lease afresh.
                match new_manager(&self.client, &self.config).await {
                    Ok(fresh) => manager = fresh,
                    Err(e) => tracing::warn!(lease = %name, error = %e, "cannot re-read the lease"),
                }
            }
        }
        self.sender.send_replace(false);
        match manager.release().await {
            Ok(()) => tracing::info!(lease = %name, "released lease"),
            Err(e) => tracing::warn!(lease = %name, error = %e, "cannot release lease"),
        }
    }
}
