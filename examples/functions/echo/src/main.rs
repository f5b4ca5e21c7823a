//! Example function: echoes requests, sleeps, streams, WebSockets, overlap detection.

use zeroscale_echo::{Config, server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env();
    let result = async {
        let listener = server::bind(&config).await?;
        eprintln!("zeroscale-echo listening on 0.0.0.0:{}", config.port);
        server::serve(listener, config).await
    };
    match result.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zeroscale-echo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
