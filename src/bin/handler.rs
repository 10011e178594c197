//! The Azure Functions custom handler. The host starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set
//! and forwards heartbeats to it; run alone it serves http://127.0.0.1:7071/api/ping like
//! `func start` does.
//!
//! Exit codes: 0 after a shutdown signal; 1 when it cannot serve (port in use); 2 for bad
//! configuration. Never 0 on a fatal error: the host does not restart a handler that exits 0
//! (docs/platform.md §1).

use std::process::ExitCode;
use std::sync::Arc;

use isp_monitor::handler::{self, AppState};
use isp_monitor::telemetry::Telemetry;
use tokio::net::TcpListener;
use tracing_subscriber::fmt::writer::MakeWriterExt;

fn main() -> ExitCode {
    // Information goes to stdout and problems to stderr: the host files stdout as Information and
    // stderr as Error (docs/platform.md §1), so a startup message on stderr would raise false errors.
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_writer(
            std::io::stderr
                .with_max_level(tracing::Level::WARN)
                .or_else(std::io::stdout),
        )
        .init();

    let env = |name: &str| std::env::var(name).ok();
    let port = match handler::port_from_env(env) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("handler: {message}");
            return ExitCode::from(2);
        }
    };
    // Built before the runtime: the exporter's blocking HTTP client must not live inside it.
    let telemetry = Arc::new(Telemetry::from_env(env));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("handler: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let state = AppState::new(Arc::clone(&telemetry));
    let served = runtime.block_on(async move {
        // IPv4 loopback: the host always calls http://127.0.0.1:{port} (docs/platform.md §1).
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|err| format!("cannot listen on 127.0.0.1:{port}: {err}"))?;
        tracing::info!("handler listening on http://127.0.0.1:{port} (heartbeats: /api/ping)");
        handler::serve(listener, state, async {
            isp_monitor::shutdown_signal().await;
            tracing::info!("shutdown signal received");
        })
        .await
        .map_err(|err| format!("server failed: {err}"))
    });
    runtime.shutdown_background();
    // Flush after the server has stopped, bounded, outside the runtime (the call blocks).
    telemetry.shutdown();

    match served {
        Ok(()) => {
            tracing::info!("handler stopped");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("handler: {message}");
            ExitCode::from(1)
        }
    }
}
