//! `zeroscale-simulate`: replays an invocation trace through keep-alive policies and reports cold
//! starts and pod-seconds (see `docs/simulator.md`). Every flag is also an environment variable
//! `ZEROSCALE_AUTOSCALER_<FLAG>`, as when this was `zeroscale-autoscaler simulate`.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;
use zeroscale_autoscaler::sim::{self, Policy, analysis, params, plot, report};

fn duration(value: &str) -> Result<Duration, String> {
    zeroscale_crds::duration::parse(value).map_err(|e| e.to_string())
}

/// Flags of `zeroscale-simulate`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "zeroscale-simulate",
    version,
    about = "Replay an invocation trace through a keep-alive policy and report cold starts and pod-seconds"
)]
struct SimulateArgs {
    /// Directory holding `invocations.csv` and `durations.csv`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_TRACE")]
    trace: PathBuf,
    /// `kpa`, `predictive`, `fixed_1m`, `fixed_5m`, `fixed_10m`, `fixed_20m`, `fixed_60m`, any
    /// `fixed_<N>m`, or `all`.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_POLICY", default_value = "all")]
    policy: String,
    /// Where to write the JSON report (a list of reports for `all`); stdout when unset.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_OUT")]
    out: Option<PathBuf>,
    /// Seed of the arrival and duration sampling.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_SEED", default_value_t = 1)]
    seed: u64,
    /// Time from a scale-up until the new pod can serve.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_COLD_START", default_value = "1s", value_parser = duration)]
    cold_start: Duration,
    /// Also draw cold-start % against idle pod-seconds, one point per policy, as SVG here.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_PLOT")]
    plot: Option<PathBuf>,
    /// Also write the flat benchmark keys (`sim.<policy>.cold_start_pct`, ...) as JSON here.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_BENCH_OUT")]
    bench_out: Option<PathBuf>,
    /// The predictive policy with other parameters than the autoscaler's defaults, as
    /// `key=value,...` (the parameter search; see docs/simulator.md).
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_PREDICTIVE_PARAMS", default_value = "")]
    predictive_params: String,
    /// Also print, to stderr, where the predictive policy's idle pod-seconds differ from the
    /// KPA's (by what held the pod, per function); needs `kpa` and `predictive` among the policies.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_IDLE_SPLIT")]
    idle_split: bool,
    /// Also print, to stderr, the cold starts of `kpa`, `predictive` and `fixed_10m` by what the
    /// invocation found (no pod, only starting pods, every ready pod busy), and the functions with
    /// the most cold starts under `predictive` that `fixed_10m` avoids; needs those three policies.
    #[arg(long, env = "ZEROSCALE_AUTOSCALER_COLD_SPLIT")]
    cold_split: bool,
}

fn main() -> ExitCode {
    match simulate(&SimulateArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zeroscale-simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: &SimulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let policies = Policy::select(&args.policy)?;
    let started = std::time::Instant::now();
    let params = params::parse(&args.predictive_params)?;
    let reports = sim::simulate_with(&args.trace, &policies, args.seed, args.cold_start, &params)?;
    for r in &reports {
        eprintln!(
            "{:<10} invocations {:>8}  cold starts {:>7} ({:6.3} %)  queued {:6.3} %  p75/function {:6.2} %  idle pod-s {:>12.0}  total pod-s {:>12.0}",
            r.policy,
            r.invocations,
            r.cold_starts,
            r.cold_start_pct,
            r.queued_pct,
            r.per_function_cold_start_pct_p75,
            r.idle_pod_seconds,
            r.total_pod_seconds
        );
    }
    eprintln!(
        "simulated {} policies in {:.2} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    if args.idle_split {
        let find = |name: &str| reports.iter().find(|r| r.policy == name);
        let (Some(kpa), Some(predictive)) = (find("kpa"), find("predictive")) else {
            return Err("--idle-split needs the kpa and predictive policies (--policy all)".into());
        };
        eprint!("{}", analysis::idle_split(kpa, predictive, 20));
    }
    if args.cold_split {
        let find = |name: &str| reports.iter().find(|r| r.policy == name);
        let (Some(_), Some(predictive), Some(fixed)) = (find("kpa"), find("predictive"), find("fixed_10m"))
        else {
            return Err(
                "--cold-split needs the kpa, predictive and fixed_10m policies (--policy all)".into(),
            );
        };
        let all: Vec<_> = reports.iter().collect();
        eprint!("{}", analysis::cold_split(&all, predictive, fixed, 25));
    }
    let json = match reports.as_slice() {
        [one] => serde_json::to_string_pretty(one)?,
        many => serde_json::to_string_pretty(many)?,
    };
    match &args.out {
        Some(path) => sim::write(path, &json)?,
        None => println!("{json}"),
    }
    if let Some(path) = &args.plot {
        let name = args.trace.file_name().map_or_else(
            || args.trace.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let title = format!("Keep-alive policies on {name}");
        sim::write(path, &plot::svg(&reports, &title))?;
    }
    if let Some(path) = &args.bench_out {
        sim::write(
            path,
            &serde_json::to_string_pretty(&report::bench_keys(&reports))?,
        )?;
    }
    Ok(())
}
