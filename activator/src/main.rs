//! `zeroscale-activator`: parse flags, set up logging, run until SIGTERM, drain.

use clap::Parser;
use zeroscale_activator::{Activator, ActivatorConfig, Args};
use zeroscale_common::shutdown;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    args.log.init();
    // One worker runs everything on one thread: no cross-thread wake-ups on the request path, which
    // is what the latency target wants on a small node; more workers add throughput.
    let mut runtime = if args.worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if args.worker_threads > 1 {
        runtime.worker_threads(args.worker_threads);
    }
    let runtime = match runtime.enable_all().build() {
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
