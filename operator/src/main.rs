//! `zeroscale-operator`: reconciles Zeroscale Functions. See `docs/operator.md`.

use std::process::ExitCode;

use clap::Parser;
use zeroscale_common::shutdown;
use zeroscale_operator::{Args, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    args.log.init();
    match run(args, shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %zeroscale_operator::error::chain(&e), "operator failed");
            ExitCode::FAILURE
        }
    }
}
