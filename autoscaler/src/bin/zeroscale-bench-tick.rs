//! `zeroscale-bench-tick`: the cost of one autoscaler decision tick over many busy functions (P7).
//!
//! Every function is active (it has ready pods and a report each second), so none is skipped as idle
//! at zero: this is the worst case for a tick. Reports are recorded outside the timed region; the
//! tick itself (window averages, decision, bounds, scale-to-zero rules for every function) is timed,
//! and the median over `runs` ticks is reported.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use zeroscale_autoscaler::kpa::{DeciderSpec, MultiScaler, Observation, TICK_INTERVAL};
use zeroscale_common::signals::{FunctionKey, Stats};

/// Flags of `zeroscale-bench-tick`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "zeroscale-bench-tick",
    version,
    about = "Time one autoscaler decision tick over many synthetic functions"
)]
struct BenchTickArgs {
    /// Functions in the tick.
    #[arg(long, default_value_t = 1000)]
    functions: usize,
    /// Timed ticks; the median is reported.
    #[arg(long, default_value_t = 501)]
    runs: usize,
    /// Also write `{"autoscaler.tick_1000_fns_us": ...}` as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    match bench(&BenchTickArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zeroscale-bench-tick: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the benchmark cannot report.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    /// The output cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// Median wall time of one tick over `functions` busy functions, in microseconds.
fn tick_median_us(functions: usize, runs: usize) -> f64 {
    let mut scaler = MultiScaler::new(Duration::from_secs(3));
    let keys: Vec<FunctionKey> = (0..functions)
        .map(|i| FunctionKey::new("bench", format!("fn-{i}")))
        .collect();
    let mut now = Duration::from_secs(10_000);
    for key in &keys {
        scaler.set_spec(key, DeciderSpec::default(), now);
    }
    let mut samples = Vec::with_capacity(runs);
    let mut decided = 0usize;
    // A warm-up window fills the buckets before timing starts.
    for run in 0..runs + 30 {
        for second in 0..TICK_INTERVAL.as_secs() {
            let at = now + Duration::from_secs(second);
            for (i, key) in keys.iter().enumerate() {
                for replica in ["activator-a", "activator-b"] {
                    let stats = Stats {
                        function: key.clone(),
                        activator: replica.to_string(),
                        period_ms: 1000,
                        concurrency: ((i + run) % 150) as f64,
                        requests: 10,
                        queued: 0,
                    };
                    scaler.record_stats(at, &stats);
                }
            }
        }
        now += TICK_INTERVAL;
        let started = std::time::Instant::now();
        scaler.tick(
            now,
            |_| {
                Some(Observation {
                    ready: 3,
                    current: 3,
                    activator_ready: true,
                })
            },
            |_, _, d| decided += usize::from(d.desired >= 0),
        );
        let elapsed = started.elapsed();
        if run >= 30 {
            samples.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    debug_assert_eq!(
        decided,
        functions * (runs + 30),
        "every function decided on every tick"
    );
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

/// Times the ticks and reports the median.
fn bench(args: &BenchTickArgs) -> Result<(), Box<dyn std::error::Error>> {
    let median = tick_median_us(args.functions, args.runs.max(1));
    println!(
        "one tick over {} functions: median {median:.1} µs over {} runs",
        args.functions, args.runs
    );
    if let Some(path) = &args.out {
        let key = format!("autoscaler.tick_{}_fns_us", args.functions);
        let json = serde_json::json!({ key: (median * 10.0).round() / 10.0 });
        write(path, &serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    let err = |source| BenchError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}
