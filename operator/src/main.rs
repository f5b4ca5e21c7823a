//! `zeroscale-operator`: reconciles Zeroscale Functions. See `docs/operator.md`.

use std::process::ExitCode;

use clap::Parser;
use zeroscale_common::shutdown;
use zeroscale_operator::{Args, run};

fn main() -> ExitCode {
    let args = Args::parse();
    let _log = args.log.init();
    let runtime = match zeroscale_common::runtime::build(args.worker_threads) {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    // The signal listener is spawned on the runtime, so the token is made inside it.
    match runtime.block_on(async { run(args, shutdown::on_signal()).await }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %zeroscale_operator::error::chain(&e), "operator failed");
            ExitCode::FAILURE
        }
    }
}
