//! The outage journal: what the agent knows about outages, kept in the state directory so that it
//! survives an agent restart or a reboot.
//!
//! Every change is written atomically (a temporary file in the same directory, flushed to disk,
//! then renamed over the journal), so a power cut leaves either the old or the new journal, never
//! half of one. A report leaves the journal only once the handler has acknowledged it with a 2xx.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::outage::{Cause, OutageReport};

pub const JOURNAL_FILE: &str = "journal.json";
/// Reports the handler refused as invalid are kept here for a human, never resent.
pub const REJECTED_FILE: &str = "rejected-outages.json";
const FORMAT_VERSION: u32 = 1;

/// Everything the journal holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalState {
    pub version: u32,
    /// When the handler last acknowledged a heartbeat: the start of any "agent was not running" gap.
    pub last_success: Option<DateTime<Utc>>,
    /// The outage in progress, if any.
    pub open: Option<OpenOutage>,
    /// Finished outages not yet acknowledged by the handler, oldest first.
    pub pending: Vec<OutageReport>,
}

/// An outage still in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOutage {
    pub id: String,
    /// The first failed attempt.
    pub start: DateTime<Utc>,
    /// The latest failed attempt: the last moment the agent itself saw the outage.
    pub last_failure: DateTime<Utc>,
    /// How often each cause was diagnosed; the most frequent one is reported.
    pub causes: BTreeMap<String, u32>,
    /// What the latest probe saw.
    pub detail: String,
}

impl OpenOutage {
    pub fn new(id: String, at: DateTime<Utc>, cause: Cause, detail: String) -> OpenOutage {
        let mut outage = OpenOutage {
            id,
            start: at,
            last_failure: at,
            causes: BTreeMap::new(),
            detail: String::new(),
        };
        outage.observe(at, cause, detail);
        outage
    }

    pub fn observe(&mut self, at: DateTime<Utc>, cause: Cause, detail: String) {
        self.last_failure = at;
        *self.causes.entry(cause.as_str().to_owned()).or_default() += 1;
        self.detail = detail;
    }

    /// The cause diagnosed most often (ties go to the more specific, earlier-listed cause).
    pub fn cause(&self) -> Cause {
        Cause::ALL
            .into_iter()
            .max_by_key(|cause| {
                let count = self.causes.get(cause.as_str()).copied().unwrap_or(0);
                // Reverse position so that earlier-listed causes win ties under max_by_key.
                (
                    count,
                    usize::MAX - Cause::ALL.iter().position(|c| c == cause).unwrap_or(0),
                )
            })
            .filter(|cause| self.causes.contains_key(cause.as_str()))
            .unwrap_or(Cause::Unknown)
    }

    /// The finished report, ending at `end`.
    pub fn finish(&self, end: DateTime<Utc>) -> OutageReport {
        let detail: String = self
            .detail
            .chars()
            .take(crate::outage::MAX_DETAIL_CHARS)
            .collect();
        OutageReport {
            id: self.id.clone(),
            start: self.start,
            end: end.max(self.start),
            cause: self.cause(),
            detail,
        }
    }
}

/// Why the journal could not be used.
#[derive(Debug)]
pub enum JournalError {
    Unwritable {
        dir: PathBuf,
        error: io::Error,
    },
    Corrupt {
        path: PathBuf,
        moved_to: PathBuf,
        reason: String,
    },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Unwritable { dir, error } => write!(
                f,
                "state directory {} is not writable ({error}); choose another with --state-dir / HEARTBEAT_STATE_DIR",
                dir.display()
            ),
            JournalError::Corrupt {
                path,
                moved_to,
                reason,
            } => write!(
                f,
                "outage journal {} is corrupt ({reason}); it was kept as {} and a new journal will be started on the next run",
                path.display(),
                moved_to.display()
            ),
        }
    }
}

impl std::error::Error for JournalError {}

/// The journal file and its current contents.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    state: JournalState,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`. A journal that cannot be read is moved
    /// aside, never deleted, and reported.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let unwritable = |error| JournalError::Unwritable {
            dir: dir.to_owned(),
            error,
        };
        fs::create_dir_all(dir).map_err(unwritable)?;
        // Prove we can write here now, rather than discover it in the middle of an outage.
        let probe = dir.join(".write-test");
        fs::write(&probe, b"ok").map_err(unwritable)?;
        let _ = fs::remove_file(&probe);

        let path = dir.join(JOURNAL_FILE);
        let state = match fs::read(&path) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => JournalState {
                version: FORMAT_VERSION,
                ..Default::default()
            },
            Err(err) => return Err(unwritable(err)),
            Ok(bytes) => match serde_json::from_slice::<JournalState>(&bytes) {
                Ok(state) if state.version == FORMAT_VERSION => state,
                Ok(state) => {
                    return Err(set_aside(
                        &path,
                        format!("unknown format version {}", state.version),
                    ));
                }
                Err(err) => return Err(set_aside(&path, err.to_string())),
            },
        };
        Ok(Journal {
            dir: dir.to_owned(),
            state,
        })
    }

    pub fn state(&self) -> &JournalState {
        &self.state
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// Applies `change` and writes the journal atomically. On a write error the change is kept in
    /// memory (the agent goes on) and the error returned for logging.
    pub fn update(&mut self, change: impl FnOnce(&mut JournalState)) -> io::Result<()> {
        change(&mut self.state);
        let bytes = serde_json::to_vec_pretty(&self.state).map_err(io::Error::other)?;
        write_atomically(&self.path(), &bytes)
    }

    /// Keeps reports the handler refused as invalid in a file of their own, for a human to read.
    pub fn set_rejected_aside(
        &self,
        reports: &[OutageReport],
        reason: &str,
    ) -> io::Result<PathBuf> {
        let path = self.dir.join(REJECTED_FILE);
        let mut kept: Vec<serde_json::Value> = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        for report in reports {
            kept.push(serde_json::json!({"report": report, "reason": reason}));
        }
        write_atomically(
            &path,
            &serde_json::to_vec_pretty(&kept).map_err(io::Error::other)?,
        )?;
        Ok(path)
    }
}

fn set_aside(path: &Path, reason: String) -> JournalError {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved_to = path.with_file_name(format!("{JOURNAL_FILE}.corrupt-{stamp}"));
    match fs::rename(path, &moved_to) {
        Ok(()) => JournalError::Corrupt {
            path: path.to_owned(),
            moved_to,
            reason,
        },
        Err(error) => JournalError::Unwritable {
            dir: path.parent().unwrap_or(path).to_owned(),
            error,
        },
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    // Make the rename itself durable where the platform allows opening a directory.
    if let Some(dir) = path.parent()
        && let Ok(dir) = fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("isp-journal-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// What is written is what the next run reads.
    #[test]
    fn survives_a_restart() {
        let dir = temp_dir("restart");
        let at = Utc::now();
        let mut journal = Journal::open(&dir).unwrap();
        journal
            .update(|s| s.open = Some(OpenOutage::new("id1".into(), at, Cause::Isp, "0/3".into())))
            .unwrap();
        let reopened = Journal::open(&dir).unwrap();
        assert_eq!(reopened.state(), journal.state());
        assert!(!dir.join("journal.json.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A corrupt journal is moved aside with a message, not deleted.
    #[test]
    fn corrupt_journal_is_kept_aside() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(JOURNAL_FILE), b"{half a jour").unwrap();
        let err = Journal::open(&dir).unwrap_err();
        let JournalError::Corrupt { moved_to, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(fs::read(moved_to).unwrap(), b"{half a jour");
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(
            Journal::open(&dir).is_ok(),
            "the next run starts a fresh journal"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The most frequently diagnosed cause is the one reported.
    #[test]
    fn majority_cause() {
        let at = Utc::now();
        let mut outage = OpenOutage::new("x".into(), at, Cause::Dns, String::new());
        outage.observe(at, Cause::Isp, String::new());
        outage.observe(at, Cause::Isp, String::new());
        assert_eq!(outage.cause(), Cause::Isp);
        assert_eq!(outage.finish(at).cause, Cause::Isp);
    }
}
