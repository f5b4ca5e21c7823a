//! `zeroscale-autoscaler`: parses the command line and runs the autoscaler (`run`, also the default).

use std::process::ExitCode;

use clap::Parser;
use zeroscale_autoscaler::{args::Cli, shell};

fn main() -> ExitCode {
    match shell::run_blocking(Cli::parse().run_args()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zeroscale-autoscaler: {e}");
            ExitCode::FAILURE
        }
    }
}
