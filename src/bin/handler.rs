//! The Azure Functions custom handler. The host starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set
//! and forwards heartbeats to it; run alone it serves http://127.0.0.1:7071/api/ping like
//! `func start` does.
//!
//! Exit codes: 0 after a shutdown signal (and for `--help`, `--version`); 1 when it cannot serve
//! (port in use); 2 for bad arguments or configuration. Never 0 on a fatal error: the host does
//! not restart a handler that exits 0 (docs/platform.md §1). Fatal messages go to stderr as
//! `handler: error: …`: the host files a stderr line as an error only when it says "error".

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use isp_monitor::handler::core::Core;
use isp_monitor::handler::log::LogWriter;
use isp_monitor::handler::{self, AppState, Limits};
use isp_monitor::telemetry::Telemetry;
use tokio::net::TcpListener;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// How long exit waits for queued log lines to reach stdout.
const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// ISP Monitor's heartbeat receiver: the Azure Functions custom handler.
///
/// On the platform the Functions host starts it and sets the port; run alone it serves
/// http://127.0.0.1:7071/api/ping. Telemetry goes to Application Insights when
/// APPLICATIONINSIGHTS_CONNECTION_STRING is set.
#[derive(Parser, Debug)]
#[command(name = "handler", version)]
struct Options {
    /// Port to listen on (127.0.0.1) when the host's FUNCTIONS_CUSTOMHANDLER_PORT is not set;
    /// the host's variable always wins.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Seconds a connection may wait for a complete request head, idle keep-alive included.
    #[arg(long, value_name = "SECONDS", env = "HANDLER_HEADER_TIMEOUT", default_value = "10", value_parser = seconds)]
    header_timeout: Duration,
    /// Seconds a request body may take to arrive.
    #[arg(long, value_name = "SECONDS", env = "HANDLER_BODY_TIMEOUT", default_value = "10", value_parser = seconds)]
    body_timeout: Duration,
    /// Open connections at once; more are answered 503.
    #[arg(long, value_name = "N", env = "HANDLER_MAX_CONNECTIONS", default_value = "512", value_parser = clap::value_parser!(u32).range(1..100_000))]
    max_connections: u32,
}

fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0 to 3600"
        )),
    }
}

fn main() -> ExitCode {
    // --help, --version and argument errors print and exit here (0, 0, 2) before anything starts.
    let options = Options::parse();

    // Every stdout line, ours and tracing's, goes through the log queue so a stuck reader can
    // never block serving. Information goes to stdout and problems to stderr: the host files
    // stdout as Information and a stderr line as Warning or Error by its words (docs/platform.md §1).
    let log = LogWriter::stdout();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_writer(
            std::io::stderr
                .with_max_level(tracing::Level::WARN)
                .or_else(log.clone()),
        )
        .init();

    let env = |name: &str| std::env::var(name).ok();
    let port = match handler::port_from_env(env, options.port) {
        Ok(port) => port,
        Err(message) => {
            eprintln!("handler: error: {message}");
            return ExitCode::from(2);
        }
    };
    let limits = Limits {
        header_timeout: options.header_timeout,
        body_timeout: options.body_timeout,
        max_connections: options.max_connections as usize,
        ..Limits::default()
    };
    // Built before the runtime: the exporter's blocking HTTP client must not live inside it.
    let telemetry = Arc::new(Telemetry::from_env(env));
    let core = Arc::new(Core::new(
        Arc::clone(&telemetry),
        log.clone(),
        Core::site_from_env(env),
    ));

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("handler: error: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let state = AppState::new(core, &limits);
    let served = runtime.block_on(async move {
        // IPv4 loopback: the host always calls http://127.0.0.1:{port} (docs/platform.md §1).
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|err| format!("cannot listen on 127.0.0.1:{port}: {err}"))?;
        tracing::info!("handler listening on http://127.0.0.1:{port} (heartbeats: /api/ping)");
        handler::serve(listener, handler::app(state), &limits, async {
            isp_monitor::shutdown_signal().await;
            tracing::info!("shutdown signal received");
        })
        .await
        .map_err(|err| format!("server failed: {err}"))
    });
    runtime.shutdown_background();
    // Flush after the server has stopped, bounded, outside the runtime (the call blocks).
    telemetry.shutdown();

    let code = match served {
        Ok(()) => {
            tracing::info!("handler stopped");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("handler: error: {message}");
            ExitCode::from(1)
        }
    };
    log.flush(LOG_FLUSH_TIMEOUT);
    code
}
