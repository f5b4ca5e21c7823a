//! `zeroscale-activator`: parse flags, set up logging, run until SIGTERM, drain.

use clap::Parser;
use zeroscale_activator::{Activator, ActivatorConfig, Args};
use zeroscale_common::shutdown;

/// jemalloc rather than the system allocator: glibc keeps the pages a burst of parked requests freed
/// in its arenas, jemalloc's background thread hands them back to the OS within its decay time (10 s).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's one background thread, which purges freed pages on a timer even while the
/// activator is idle (without it, purging happens only during later allocations).
fn return_freed_memory_in_background() -> Result<(), tikv_jemalloc_ctl::Error> {
    tikv_jemalloc_ctl::max_background_threads::write(1)?;
    tikv_jemalloc_ctl::background_thread::write(true)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let _log = args.log.init();
    if let Err(e) = return_freed_memory_in_background() {
        // Memory is still freed for reuse, only returned to the OS later: worth a warning, not a stop.
        tracing::warn!(error = %e, "cannot start the allocator's background thread");
    }
    // One worker runs everything on one thread: no cross-thread wake-ups on the request path, which
    // is what the latency target wants on a small node; more workers add throughput.
    let runtime = match zeroscale_common::runtime::build(args.worker_threads) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    let tracing = match runtime.block_on(async { args.tracing.install() }) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot export traces");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let shutdown = shutdown::on_signal();
        let activator = match Activator::start(ActivatorConfig::from(&args)).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "activator cannot start");
                return std::process::ExitCode::FAILURE;
            }
        };
        activator.run_until(&shutdown, args.drain_delay).await;
        tracing::info!("drained");
        std::process::ExitCode::SUCCESS
    });
    // The last spans go out before the runtime that sends them stops.
    if let Some(tracing) = tracing {
        runtime.block_on(async { tokio::task::spawn_blocking(|| tracing.shutdown()).await.ok() });
    }
    code
}
