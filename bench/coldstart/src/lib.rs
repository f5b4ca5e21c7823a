//! `bench/coldstart`: cold starts, a burst from zero and their platform share, measured on the local
//! cluster with Zeroscale installed (SPEC §9 P3–P5). See `docs/benchmarks.md`.

pub mod api_load;
pub mod cluster;
pub mod drain;
pub mod figures;
pub mod phase;
pub mod prom;
pub mod run;
pub mod stats;
pub mod svg;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The cluster could not be reached.
    #[error("cluster: {0}")]
    Cluster(#[from] zeroscale_e2e::ClusterError),
    /// A kubectl call failed.
    #[error("kubectl: {0}")]
    Kubectl(#[from] zeroscale_e2e::KubectlError),
    /// An API call failed.
    #[error("kubernetes api: {0}")]
    Kube(#[from] kube::Error),
    /// The functions could not be set up.
    #[error("setup: {0}")]
    Setup(String),
    /// Writing the outputs failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Serialising the outputs failed.
    #[error("cannot serialise the results: {0}")]
    Json(#[from] serde_json::Error),
}
