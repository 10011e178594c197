//! Log lines that never block an answer: a bounded queue drained by one writer thread.
//!
//! The handler's stdout is a pipe the Functions host reads (docs/platform.md §1). When the reader
//! falls behind the pipe fills, and a write on it blocks; done inside a request, that stalls the
//! request, then every tokio worker, then `GET /`. So requests only *enqueue* a finished line; the
//! writer thread does the blocking write. When the queue is full the line is dropped and counted,
//! and the count is reported on stderr (the host files a line containing "warn" as a warning,
//! docs/platform.md §1) as soon as
//! the writer gets going again: lines can be lost under a stuck reader, never silently.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Lines waiting for the writer. A line is about 300 bytes, so a full queue is about 300 KiB;
/// 1,024 lines is a second of the benchmark's peak rate and days of a real deployment's.
pub const LOG_QUEUE_LINES: usize = 1024;

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

/// A handle to the queue; cheap to clone, shared by every request and by `tracing`'s output.
#[derive(Clone)]
pub struct LogWriter {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl LogWriter {
    /// Lines go to this process's stdout.
    pub fn stdout() -> LogWriter {
        LogWriter::to(std::io::stdout(), std::io::stderr(), LOG_QUEUE_LINES)
    }

    /// Lines go to `out`, drop warnings to `warnings`, through a queue of `capacity` lines.
    pub fn to(
        out: impl Write + Send + 'static,
        warnings: impl Write + Send + 'static,
        capacity: usize,
    ) -> LogWriter {
        let (queue, lines) = sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || drain(lines, out, warnings, &counter))
            .expect("spawn the log writer thread");
        LogWriter { queue, dropped }
    }

    /// Queues one line (a newline is added). Never blocks: a full queue drops the line and counts it.
    pub fn line(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        self.send(line);
    }

    fn send(&self, bytes: Vec<u8>) {
        match self.queue.try_send(Message::Line(bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer thread is gone (it never exits while a handle lives); nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits at most `timeout` for every line queued so far to be written: call it before exit.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (done_tx, done_rx) = sync_channel(1);
        let mut message = Message::Flush(done_tx);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

/// Writes queued lines until every handle is gone. Lines waiting together are written with one
/// `write` (up to [`BATCH_BYTES`]): under load that is one system call per burst, not per line.
fn drain(
    lines: Receiver<Message>,
    mut out: impl Write,
    mut warnings: impl Write,
    dropped: &AtomicU64,
) {
    let mut batch = Vec::with_capacity(BATCH_BYTES);
    while let Ok(first) = lines.recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Line(bytes) => {
                    batch.extend_from_slice(&bytes);
                    if batch.len() < BATCH_BYTES {
                        next = lines.try_recv().ok();
                    }
                }
                Message::Flush(done) => {
                    write_batch(&mut out, &mut batch);
                    let _ = out.flush();
                    let _ = done.try_send(());
                    next = lines.try_recv().ok();
                }
            }
        }
        write_batch(&mut out, &mut batch);
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                warnings,
                "handler: warning: {lost} log lines dropped: stdout is not being read fast enough"
            );
        }
    }
}

/// Largest batch of lines written at once.
const BATCH_BYTES: usize = 64 * 1024;

fn write_batch(out: &mut impl Write, batch: &mut Vec<u8>) {
    if !batch.is_empty() {
        // A closed stdout must not stop anything; the telemetry row still records it.
        let _ = out.write_all(batch);
        batch.clear();
    }
}

/// `tracing`'s output through the same queue: one formatted event is one `write` here, sent as
/// one line when the buffer is dropped, so startup and shutdown messages cannot block either.
pub struct EventBuffer {
    writer: LogWriter,
    bytes: Vec<u8>,
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            self.writer.send(std::mem::take(&mut self.bytes));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer {
            writer: self.clone(),
            bytes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that blocks until released, like a pipe nobody reads.
    #[derive(Clone)]
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>, Arc<Mutex<Vec<u8>>>);

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.0;
            let mut guard = open.lock().unwrap();
            while !*guard {
                guard = cv.wait(guard).unwrap();
            }
            self.1.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// With the output blocked, `line` still returns at once; the overflow is counted, and the
    /// count is reported once the output moves again.
    #[test]
    fn a_blocked_output_drops_and_counts_instead_of_blocking() {
        let gate = Gate(Default::default(), Default::default());
        let warnings = Gate(
            Arc::new((Mutex::new(true), Default::default())),
            Default::default(),
        );
        let log = LogWriter::to(gate.clone(), warnings.clone(), 4);
        let started = Instant::now();
        for n in 0..100 {
            log.line(format!("{n}").into_bytes());
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        *gate.0.0.lock().unwrap() = true;
        gate.0.1.notify_all();
        assert!(log.flush(Duration::from_secs(5)));
        let written = String::from_utf8(gate.1.lock().unwrap().clone()).unwrap();
        let kept = written.lines().count();
        let warned = String::from_utf8(warnings.1.lock().unwrap().clone()).unwrap();
        let dropped: usize = warned
            .lines()
            .map(|l| {
                l.strip_prefix("handler: warning: ")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("unexpected warning {l:?}"))
            })
            .sum();
        assert_eq!(kept + dropped, 100, "{written:?} {warned:?}");
        assert!(dropped >= 90, "{dropped}");
    }
}
