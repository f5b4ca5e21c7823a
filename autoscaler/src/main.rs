//! `zeroscale-autoscaler`: parses the command line and runs the chosen subcommand.

fn main() -> std::process::ExitCode {
    zeroscale_autoscaler::args::main()
}
