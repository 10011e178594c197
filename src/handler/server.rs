//! The HTTP/1.1 server: hyper's connection builder under our own accept loop, so every wait has a
//! timeout and every buffer a bound (`axum::serve` exposes neither: with it, 500 connections each
//! sending 390 KiB of headers took the handler from 4.6 MB to 207 MB, and an unfinished request
//! was never closed).
//!
//! The only legitimate client is the Functions host on loopback, which limits what the public can
//! send anyway; these bounds are for everything else that can reach the port.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How long in-flight requests may take to finish after a shutdown signal before we stop anyway,
/// so a stalled client cannot hold the process open.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server's bounds. Each is a command-line option of the `handler` binary.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From the moment a connection waits for a request until its headers are complete. hyper
    /// starts this clock as soon as a keep-alive connection goes idle, so it is also the idle
    /// keep-alive timeout: a connection idle this long is closed. 10 s: a heartbeat's headers are
    /// one packet, and the host opens a new loopback connection cheaply when an idle one is gone.
    pub header_timeout: Duration,
    /// How long a request body may take to arrive once the headers are in. 10 s: a heartbeat body
    /// is a few KiB, already buffered by the host before it forwards.
    pub body_timeout: Duration,
    /// Largest request head (request line and headers) in bytes; hyper's read buffer bound, so
    /// also the most a slow header sender can make us hold. 16 KiB: a heartbeat's headers with
    /// the host's additions are under 2 KiB.
    pub max_header_bytes: usize,
    /// Open connections at once. Beyond it a connection is answered 503 and closed at once, so
    /// file descriptors never run out (1,100 held connections against a limit of 1,024 made a
    /// normal request wait 8 s). 512: the host needs a handful; 512 × 16 KiB bounds buffers at 8 MB.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 512,
        }
    }
}

/// hyper's smallest allowed read buffer.
const MIN_BUFFER_BYTES: usize = 8192;

/// Serves `app` until `shutdown` completes, then lets open requests finish for at most
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUFFER_BYTES))
        .keep_alive(true);
    let max_connections = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let service = TowerToHyperService::new(app);
    let mut accept_failing = false;

    let mut stopping = stopping_rx.clone();
    loop {
        let accepted = tokio::select! {
            _ = stopping.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                accept_failing = false;
                stream
            }
            Err(err) => {
                // Out of file descriptors, most likely: say so once, wait a little, go on.
                if !accept_failing {
                    tracing::warn!("cannot accept connections: {err}; retrying");
                    accept_failing = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            refuse_busy(stream, max_connections);
            continue;
        };
        let connection = builder.serve_connection(TokioIo::new(stream), service.clone());
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let stop = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            tokio::select! {
                _ = connection.as_mut() => return,
                () = stop => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.as_mut().await;
        });
    }
    drop(listener);
    // Every connection holds a slot until it is done: all slots back means all connections closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after shutdown; stopping anyway");
    }
    Ok(())
}

/// Answers a connection over the bound with a 503 and closes it. Reads what the client sent
/// (briefly, bounded) before closing, so the close is a FIN the client can read the answer
/// before, not a reset that discards it.
fn refuse_busy(mut stream: TcpStream, max_connections: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let reason = format!("the handler is at its connection limit ({max_connections}); try again");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{reason}",
        reason.len()
    );
    tokio::spawn(async move {
        let wait = Duration::from_millis(500);
        let _ = tokio::time::timeout(wait, stream.write_all(answer.as_bytes())).await;
        let _ = tokio::time::timeout(wait, stream.shutdown()).await;
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(wait, async {
            let mut left: usize = 64 * 1024;
            while left > 0 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    });
}
