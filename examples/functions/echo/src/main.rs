//! Example function: echoes requests, sleeps, streams, WebSockets, overlap detection.

use zeroscale_echo::{Config, server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env();
    let result = async {
        // A slow start on purpose (ECHO_START_DELAY_MS): nothing listens yet, as in a heavy runtime's boot.
        tokio::time::sleep(config.start_delay).await;
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
