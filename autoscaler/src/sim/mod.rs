//! The trace-driven simulator: replays an Azure Functions 2019 sample through a keep-alive policy
//! and reports cold starts and pod-seconds. See `docs/simulator.md` for the model; the binary
//! `zeroscale-simulate` (`src/bin/zeroscale-simulate.rs`) runs it from the command line.
//!
//! The `kpa` policy runs the same [`crate::kpa::FunctionScaler`] the autoscaler runs in the cluster.

pub mod accounting;
pub mod analysis;
pub mod fixed;
pub mod kpa;
pub mod params;
pub mod plot;
pub mod report;
pub mod trace;
pub mod workload;

use std::{path::Path, time::Duration};

use report::{FunctionReport, Model, PolicyReport};
use trace::{MINUTES, TraceFunction};
use workload::{Invocation, Micros, SECOND};

/// Every policy, in the order `all` runs them.
pub const POLICIES: [&str; 7] = [
    "kpa",
    "predictive",
    "fixed_1m",
    "fixed_5m",
    "fixed_10m",
    "fixed_20m",
    "fixed_60m",
];

/// Why a simulation cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The trace cannot be loaded.
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    /// The policy name is unknown.
    #[error(
        "unknown policy {0:?}: use kpa, predictive, fixed_1m, fixed_5m, fixed_10m, fixed_20m, fixed_60m or all"
    )]
    UnknownPolicy(String),
    /// An output cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A `--predictive-params` entry is malformed.
    #[error(transparent)]
    Params(#[from] params::ParamsError),
    /// JSON encoding failed.
    #[error("cannot encode the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// A keep-alive policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Knative KPA defaults through the real decider.
    Kpa,
    /// The predictive policy on the 0 ↔ 1 boundary, KPA defaults above, through the real decider.
    Predictive,
    /// A pod stays this many minutes after its last invocation.
    Fixed(u64),
}

impl Policy {
    /// Parses a policy name.
    pub fn parse(name: &str) -> Result<Self, SimError> {
        match name {
            "kpa" => return Ok(Policy::Kpa),
            "predictive" => return Ok(Policy::Predictive),
            _ => {}
        }
        name.strip_prefix("fixed_")
            .and_then(|m| m.strip_suffix('m'))
            .and_then(|m| m.parse().ok())
            .filter(|&m| m > 0)
            .map(Policy::Fixed)
            .ok_or_else(|| SimError::UnknownPolicy(name.to_string()))
    }

    /// The policies `name` selects: the one it names, or every one of [`POLICIES`] for `all`.
    pub fn select(name: &str) -> Result<Vec<Self>, SimError> {
        match name {
            "all" => POLICIES.iter().map(|p| Self::parse(p)).collect(),
            one => Ok(vec![Self::parse(one)?]),
        }
    }

    /// The policy's name.
    pub fn name(self) -> String {
        match self {
            Policy::Kpa => "kpa".to_string(),
            Policy::Predictive => "predictive".to_string(),
            Policy::Fixed(m) => format!("fixed_{m}m"),
        }
    }
}

/// A trace with its invocations generated, ready to run under any policy.
pub struct Workload {
    functions: Vec<(String, Vec<Invocation>)>,
    model: Model,
}

/// The end of the trace's day.
pub const HORIZON: Micros = MINUTES as Micros * 60 * SECOND;

impl Workload {
    /// Generates the invocations of `functions` with `seed`.
    pub fn new(functions: &[TraceFunction], seed: u64, cold_start: Duration, trace: &Path) -> Self {
        let functions = functions
            .iter()
            .map(|f| (f.hash.clone(), workload::generate(f, seed)))
            .collect();
        let model = Model {
            trace: trace.display().to_string(),
            seed,
            arrivals: "per minute: count i.i.d. uniform arrival times (Poisson process given the count), SplitMix64",
            durations: "per invocation: inverse-transform sample of the piecewise-linear percentile profile",
            capacity: "one invocation per pod at a time",
            cold_start_seconds: cold_start.as_secs_f64(),
        };
        Self { functions, model }
    }

    /// Runs `policy` over every function.
    pub fn run(&self, policy: Policy) -> PolicyReport {
        self.run_with(policy, &crate::kpa::PredictiveParams::default())
    }

    /// Runs `policy` over every function, the predictive policy with `params`.
    pub fn run_with(&self, policy: Policy, params: &crate::kpa::PredictiveParams) -> PolicyReport {
        let cold_start = (self.model.cold_start_seconds * SECOND as f64) as Micros;
        let spec = kpa::default_spec();
        let predictive = kpa::predictive_spec();
        let per_function = self
            .functions
            .iter()
            .map(|(hash, invs)| {
                let tally = match policy {
                    Policy::Kpa => kpa::simulate(invs, &spec, cold_start, HORIZON),
                    Policy::Predictive => kpa::simulate_with(invs, &predictive, params, cold_start, HORIZON),
                    Policy::Fixed(m) => fixed::simulate(invs, m * 60 * SECOND, cold_start, HORIZON),
                };
                FunctionReport::new(hash, &tally)
            })
            .collect();
        PolicyReport::new(&policy.name(), self.model.clone(), per_function)
    }
}

/// Runs `policies` over the trace in `dir`.
pub fn simulate(
    dir: &Path,
    policies: &[Policy],
    seed: u64,
    cold_start: Duration,
) -> Result<Vec<PolicyReport>, SimError> {
    simulate_with(
        dir,
        policies,
        seed,
        cold_start,
        &crate::kpa::PredictiveParams::default(),
    )
}

/// [`simulate`] with the predictive policy's parameters `params` (the parameter search).
pub fn simulate_with(
    dir: &Path,
    policies: &[Policy],
    seed: u64,
    cold_start: Duration,
    params: &crate::kpa::PredictiveParams,
) -> Result<Vec<PolicyReport>, SimError> {
    let functions = trace::load(dir)?;
    let workload = Workload::new(&functions, seed, cold_start, dir);
    Ok(policies.iter().map(|&p| workload.run_with(p, params)).collect())
}

/// Writes `text` to `path`, creating its directory first.
pub fn write(path: &Path, text: &str) -> Result<(), SimError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SimError::Write {
            path: parent.display().to_string(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| SimError::Write {
        path: path.display().to_string(),
        source,
    })
}
