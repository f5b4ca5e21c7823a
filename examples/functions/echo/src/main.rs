//! Example function: echoes requests, sleeps, streams, WebSockets, overlap detection.

use zeroscale_echo::{Config, server};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::from_env();
    if let Err(e) = config.fail_percent() {
        eprintln!("zeroscale-echo: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // Held for the life of the process (ECHO_ALLOC_AT_START): past a memory limit, the kernel kills
    // the container before it ever listens.
    let _held = match config.alloc_at_start() {
        Ok(bytes) => bytes.map(zeroscale_echo::alloc::touch),
        Err(e) => {
            eprintln!("zeroscale-echo: ECHO_ALLOC_AT_START: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
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
