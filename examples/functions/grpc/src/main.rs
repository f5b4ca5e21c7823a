//! Example function: a gRPC echo over h2c (see the library's docs).

use std::process::ExitCode;

use zeroscale_echo_grpc::server::{self, Drain};
use zeroscale_echo_grpc::{Config, EchoService};

#[tokio::main]
async fn main() -> ExitCode {
    let result = async {
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let listener = server::bind(config.port).await.map_err(|e| e.to_string())?;
        let shutdown = server::termination().map_err(|e| e.to_string())?;
        eprintln!(
            "zeroscale-echo-grpc listening (gRPC over h2c) on 0.0.0.0:{}",
            config.port
        );
        let shutdown = async {
            shutdown.await;
            eprintln!("shutting down: no new connections, waiting for the calls in flight");
        };
        let service = EchoService::new(&config.pod);
        server::serve(listener, service, config.drain_timeout, shutdown)
            .await
            .map_err(|e| e.to_string())
    };
    match result.await {
        Ok(Drain::Complete) => ExitCode::SUCCESS,
        Ok(Drain::TimedOut) => {
            eprintln!("zeroscale-echo-grpc: drain timeout passed, open calls were cut");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zeroscale-echo-grpc: {e}");
            ExitCode::FAILURE
        }
    }
}
