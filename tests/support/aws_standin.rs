//! tests/aws/sns_standin.py, run from the Rust tests: a loopback SNS (and CloudWatch
//! DescribeAlarms) stand-in that checks every request's signature with botocore's signer and
//! prints one JSON record per request it received. Needs tests/aws/.venv (tests/aws/install.sh).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running stand-in; stopped (by its pid, which this test started) when dropped.
pub struct AwsStandIn {
    child: Child,
    /// Held open: the stand-in stops when its stdin closes.
    _stdin: ChildStdin,
    pub port: u16,
    records: Receiver<Value>,
}

impl Drop for AwsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AwsStandIn {
    /// Starts the stand-in with these arguments, or returns None (after saying why) when its
    /// Python is not installed; under CI a missing Python fails the test instead.
    pub fn start<I, S>(args: I) -> Option<AwsStandIn>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let repo = super::repo_root();
        let python = repo.join("tests/aws/.venv/bin/python");
        if !python.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "tests/aws/.venv is missing: run tests/aws/install.sh"
            );
            eprintln!("skipping: tests/aws/.venv is missing (run tests/aws/install.sh)");
            return None;
        }
        let mut child = Command::new(python)
            .arg(repo.join("tests/aws/sns_standin.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the stand-in");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("stand-in output").expect("a line");
        let port = first
            .strip_prefix("port ")
            .expect("port line")
            .parse()
            .unwrap();
        let (tx, records) = channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str::<Value>(&line).expect("a JSON record"));
            }
        });
        Some(AwsStandIn {
            child,
            _stdin: stdin,
            port,
            records,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next request's record, waiting up to 10 s for it.
    pub fn next_record(&self) -> Value {
        self.records
            .recv_timeout(Duration::from_secs(10))
            .expect("a request reached the stand-in")
    }

    /// Every record received so far, waiting `linger` for stragglers.
    pub fn drain(&self, linger: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        let deadline = Instant::now() + linger;
        while let Ok(r) = self
            .records
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            out.push(r);
        }
        out
    }
}

/// A temporary path for the file of alarms the stand-in answers DescribeAlarms from (`--alarms`).
pub fn temp_alarms_path(label: &str) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "isp-monitor-{label}-{}-{n}.json",
        std::process::id()
    ))
}
