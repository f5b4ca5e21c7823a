//! `coldstart-bench`: runs the cold-start and burst benchmark against the installed system and writes
//! its figures (`figures.json`), every sample (`samples.json`) and a plot (`coldstart.svg`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use zeroscale_bench_coldstart::figures::ColdStart;
use zeroscale_bench_coldstart::run::Target;
use zeroscale_bench_coldstart::stats::{Summary, round2};
use zeroscale_bench_coldstart::{BenchError, cluster, phase, svg};

/// Cold starts and a burst from zero on the local cluster.
#[derive(Debug, Parser)]
struct Args {
    /// The activator's external URL (`ZEROSCALE_ACTIVATOR` from `.zeroscale/activator.env`).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR")]
    activator: String,
    /// Admin URLs of the activator replicas, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:9191")]
    activator_admin: Vec<String>,
    /// Admin URLs of the autoscaler replicas, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:9192")]
    autoscaler_admin: Vec<String>,
    /// Admin URLs of the operator replicas, comma-separated (empty: the operator's requests are not
    /// reported).
    #[arg(long, value_delimiter = ',')]
    operator_admin: Vec<String>,
    /// Cold starts to measure (one fresh Function each).
    #[arg(long, default_value_t = 20)]
    cold_starts: usize,
    /// Concurrent requests of the burst from zero (0 skips it).
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// The function image.
    #[arg(long, default_value = zeroscale_e2e::ECHO_IMAGE)]
    image: String,
    /// The activator's external domain.
    #[arg(long, default_value = "example.com")]
    domain: String,
    /// Output directory.
    #[arg(long, default_value = "target/bench/coldstart")]
    out: PathBuf,
    /// The period, ms, over whose phases the cold starts (and the burst) are spread by a wait before
    /// each (`phase::stagger`); 0 runs them back to back.
    #[arg(long, default_value_t = phase::KUBELET_RELIST.as_millis() as u64)]
    phase_period_ms: u64,
}

fn write(path: &Path, text: &str) -> Result<(), BenchError> {
    std::fs::write(path, text).map_err(|source| BenchError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn ms(v: Option<f64>) -> serde_json::Value {
    v.map_or(serde_json::Value::Null, |v| json!(round2(v)))
}

async fn run(args: Args) -> Result<(), BenchError> {
    std::fs::create_dir_all(&args.out).map_err(|source| BenchError::Write {
        path: args.out.display().to_string(),
        source,
    })?;
    let client = zeroscale_e2e::try_client().await?;
    let ns = zeroscale_e2e::TestNamespace::new(&client, "bench-coldstart").await;
    let mut names: Vec<String> = (0..args.cold_starts).map(|i| format!("cold-{i:02}")).collect();
    if args.burst > 0 {
        names.push("burst".into());
    }
    cluster::create_at_zero(ns.name(), &names, &args.image, Duration::from_secs(120)).await?;
    // The activator and the autoscaler learn new Functions through watches; give them a moment, so a
    // request does not race the function's registration (that would measure the watch, not a cold start).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let target = Target {
        activator: args.activator.clone(),
        activator_admin: args.activator_admin.clone(),
        autoscaler_admin: args.autoscaler_admin.clone(),
        operator_admin: args.operator_admin.clone(),
        namespace: ns.name().to_string(),
        domain: args.domain.clone(),
        port: 8080,
    };
    let mut samples: Vec<ColdStart> = Vec::new();
    let period = Duration::from_millis(args.phase_period_ms);
    for (i, name) in names.iter().take(args.cold_starts).enumerate() {
        tokio::time::sleep(phase::stagger(i, period)).await;
        let sample = target.cold_start(name).await?;
        eprintln!(
            "coldstart: {name}: status {} e2e {:.1} ms, serving {:?}, container start {:?} (watched {:?}), \
             arrival→patch {:?}, ready→forward {:?} (address known {:?}, forwarded {:?} after it){}",
            sample.status,
            sample.e2e_ms,
            sample.serving_ms.map(round2),
            sample.container_start_ms.map(round2),
            sample.container_start_watched_ms.map(round2),
            sample.arrival_to_patch_ms.map(round2),
            sample.ready_to_forward_ms.map(round2),
            sample.ready_to_address_ms.map(round2),
            sample.address_to_forward_ms.map(round2),
            sample
                .excluded
                .as_deref()
                .map(|e| format!(" (excluded: {e})"))
                .unwrap_or_default()
        );
        samples.push(sample);
    }
    let burst = if args.burst > 0 {
        tokio::time::sleep(phase::stagger(args.cold_starts, period)).await;
        let b = target.burst("burst", args.burst).await?;
        eprintln!("coldstart: burst: {b:?}");
        Some(b)
    } else {
        None
    };

    let pick = |f: fn(&ColdStart) -> Option<f64>| samples.iter().filter_map(f).collect::<Vec<_>>();
    let e2e = pick(|s| (s.status == 200).then_some(s.e2e_ms));
    let to_patch = pick(|s| s.arrival_to_patch_ms);
    let to_forward = pick(|s| s.ready_to_forward_ms);
    let (to_address, address_to_forward) = (
        Summary::of(&pick(|s| s.ready_to_address_ms)),
        Summary::of(&pick(|s| s.address_to_forward_ms)),
    );
    let serving = pick(|s| s.serving_ms);
    let container_start = pick(|s| s.container_start_ms);
    let container_watched = pick(|s| s.container_start_watched_ms);
    let (e2e_s, patch_s, forward_s) = (
        Summary::of(&e2e),
        Summary::of(&to_patch),
        Summary::of(&to_forward),
    );
    let figures = json!({
        "coldstart": {
            "count": samples.len(),
            "errors": samples.iter().filter(|s| s.status != 200).count(),
            "e2e_p50_ms": ms(e2e_s.as_ref().map(|s| s.p50)),
            "e2e_p95_ms": ms(e2e_s.as_ref().map(|s| s.p95)),
            "e2e_max_ms": ms(e2e_s.as_ref().map(|s| s.max)),
            "pod_serving_p50_ms": ms(Summary::of(&serving).map(|s| s.p50)),
            "container_start_p50_ms": ms(Summary::of(&container_start).map(|s| s.p50)),
            "container_start_max_ms": ms(Summary::of(&container_start).map(|s| s.max)),
            "container_start_watched_p50_ms": ms(Summary::of(&container_watched).map(|s| s.p50)),
            "container_start_samples": container_start.len(),
            "arrival_to_patch_p99_ms": ms(patch_s.as_ref().map(|s| s.p99)),
            "arrival_to_patch_p50_ms": ms(patch_s.as_ref().map(|s| s.p50)),
            "arrival_to_patch_samples": to_patch.len(),
            "arrival_to_demand_p50_ms": ms(Summary::of(&pick(|s| s.arrival_to_demand_ms)).map(|s| s.p50)),
            "demand_to_patch_p50_ms": ms(Summary::of(&pick(|s| s.demand_to_patch_ms)).map(|s| s.p50)),
            "ready_to_forward_p99_ms": ms(forward_s.as_ref().map(|s| s.p99)),
            "ready_to_forward_p50_ms": ms(forward_s.as_ref().map(|s| s.p50)),
            "ready_to_forward_samples": to_forward.len(),
            "ready_to_address_p50_ms": ms(to_address.as_ref().map(|s| s.p50)),
            "ready_to_address_p99_ms": ms(to_address.as_ref().map(|s| s.p99)),
            "address_to_forward_p50_ms": ms(address_to_forward.as_ref().map(|s| s.p50)),
            "address_to_forward_p99_ms": ms(address_to_forward.as_ref().map(|s| s.p99)),
        },
        "burst": burst.as_ref().map_or(json!({}), |b| json!({
            "requests": b.requests,
            "errors": b.errors,
            "max_latency_ms": round2(b.max_latency_ms),
            "ready_ms": ms(b.ready_ms),
            "max_over_ready_ms": ms(b.max_over_ready_ms),
            "over_ready_p50_ms": ms(b.over_ready_p50_ms),
            "over_ready_p90_ms": ms(b.over_ready_p90_ms),
            "pods_serving": b.drain.pods_serving_ms.len(),
            "last_pod_serving_ms": ms(b.drain.last_pod_ms()),
            "drain_answers_per_s": b.drain.answers_per_s.map(f64::round),
            "drain_longest_gap_ms": ms(b.drain.longest_gap_ms),
            "drain_longest_gap_from_ms": ms(b.drain.longest_gap_from_ms),
            "drain_first_answer_ms": ms(b.drain.first_answer_ms),
            "hand_over_address_known_ms": ms(b.hand_over.address_known_ms),
            "hand_over_first_forward_ms": ms(b.hand_over.first_forward_ms),
            "apiserver_requests": b.api_load.apiserver_requests,
            "apiserver_cpu_ms": ms(b.api_load.apiserver_cpu_ms),
            "operator_api_requests": b.api_load.operator_requests,
            "excluded": b.excluded,
            // Not rounded to ms: bench.sh measures the footprint a fixed time after it.
            "ended_unix": b.ended_unix,
        })),
    });
    write(
        &args.out.join("figures.json"),
        &serde_json::to_string_pretty(&figures)?,
    )?;
    let detail = json!({"cold_starts": samples, "burst": burst, "summaries": {
        "e2e_ms": e2e_s, "arrival_to_patch_ms": patch_s, "ready_to_forward_ms": forward_s,
        "ready_to_address_ms": to_address, "address_to_forward_ms": address_to_forward,
        "container_start_ms": Summary::of(&container_start),
        "container_start_watched_ms": Summary::of(&container_watched) }});
    write(
        &args.out.join("samples.json"),
        &serde_json::to_string_pretty(&detail)?,
    )?;
    let plot = svg::cdf(
        &format!(
            "Cold starts of the echo function ({} runs), local cluster (real containers)",
            samples.len()
        ),
        &[
            svg::Series {
                label: "request → answer (e2e)",
                samples: &e2e,
                color: "#d62728",
            },
            svg::Series {
                label: "request → pod able to serve",
                samples: &serving,
                color: "#1f77b4",
            },
            svg::Series {
                label: "pod scheduled → container running",
                samples: &container_watched,
                color: "#2ca02c",
            },
        ],
        &[("P4 p50 ≤ 700 ms", 700.0), ("P4 p95 ≤ 1.5 s", 1500.0)],
    );
    write(&args.out.join("coldstart.svg"), &plot)?;
    println!("{}", serde_json::to_string_pretty(&figures)?);
    ns.delete().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coldstart-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
