//! The outage journal: what the agent knows about outages, kept in the state directory so that it
//! survives an agent restart or a reboot.
//!
//! Every change is written atomically (a temporary file with a name of its own in the same
//! directory, flushed to disk, then renamed over the journal), so a power cut leaves either the old
//! or the new journal, never half of one. A report leaves the journal only once the handler has
//! acknowledged it with a 2xx.
//!
//! Nothing on disk can stop the agent: a journal that cannot be parsed (corrupt, empty, a
//! directory) is set aside and a new one started; when a write fails (a full disk) the journal
//! lives on in memory and every later change, and every tick of the loop, tries the write again.
//! [`Journal::saved`] is what the disk is known to hold, so that a report is never sent in a
//! version a stale file could contradict after a crash (see `state::sendable`).
//!
//! One agent per state directory: [`Journal::open`] takes an exclusive lock on `agent.lock`
//! (`std::fs::File::try_lock`, flock(2) on Unix; docs/platform.md §9) and writes its pid there, so a
//! second agent is refused with the holder's pid. The lock goes with the process, however it ends.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::state_file::{self, Naming, Versioned};
use crate::outage::{Cause, OutageReport};

pub const JOURNAL_FILE: &str = "journal.json";
/// Reports the handler refused as invalid are kept here for a human, never resent.
pub const REJECTED_FILE: &str = "rejected-outages.json";
/// Held locked by the running agent; holds its pid.
pub const LOCK_FILE: &str = "agent.lock";
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
    /// False from the first failed attempt until the quick retries and the diagnosis confirm the
    /// outage: persisted at once, so the start is not lost if the agent dies in between.
    #[serde(default = "yes")]
    pub confirmed: bool,
}

fn yes() -> bool {
    true
}

impl OpenOutage {
    pub fn new(id: String, at: DateTime<Utc>, cause: Cause, detail: String) -> OpenOutage {
        let mut outage = OpenOutage {
            id,
            start: at,
            last_failure: at,
            causes: BTreeMap::new(),
            detail: String::new(),
            confirmed: true,
        };
        outage.observe(at, cause, detail);
        outage
    }

    /// The first failed attempt, before it is confirmed or diagnosed.
    pub fn suspected(id: String, at: DateTime<Utc>, detail: String) -> OpenOutage {
        OpenOutage {
            id,
            start: at,
            last_failure: at,
            causes: BTreeMap::new(),
            detail,
            confirmed: false,
        }
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

/// Why the agent cannot run on this state directory at all.
#[derive(Debug)]
pub enum JournalError {
    /// The directory does not exist and cannot be created.
    NoDirectory { dir: PathBuf, error: io::Error },
    /// Another agent holds the lock.
    Locked { dir: PathBuf, pid: Option<u32> },
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::NoDirectory { dir, error } => write!(
                f,
                "state directory {} is not writable ({error}); choose another with --state-dir / HEARTBEAT_STATE_DIR",
                dir.display()
            ),
            JournalError::Locked { dir, pid } => {
                let holder = match pid {
                    Some(pid) => format!("pid {pid}"),
                    None => "pid unknown".to_owned(),
                };
                write!(
                    f,
                    "another heartbeat-agent ({holder}) is using the state directory {}; stop it first, or give this one its own --state-dir / HEARTBEAT_STATE_DIR",
                    dir.display()
                )
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// The journal file, its current contents, and what the disk is known to hold.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    state: JournalState,
    /// The contents of the journal file as last read or written.
    saved: JournalState,
    /// `state` differs from `saved`: a write is owed.
    dirty: bool,
    /// The last write failed (so its error is reported once, not on every attempt).
    failing: bool,
    /// Held for the life of the process: the exclusive lock on the state directory.
    _lock: Option<fs::File>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, locked for this process. Returns the
    /// journal and lines the user should read (a journal set aside, a directory that cannot be
    /// written). Fails only when there is no directory at all or another agent holds it.
    pub fn open(dir: &Path) -> Result<(Journal, Vec<String>), JournalError> {
        let mut notices = Vec::new();
        if let Err(error) = fs::create_dir_all(dir)
            && !dir.is_dir()
        {
            return Err(JournalError::NoDirectory {
                dir: dir.to_owned(),
                error,
            });
        }
        let lock = match lock(dir) {
            Ok(lock) => Some(lock),
            Err(LockError::Held(pid)) => {
                return Err(JournalError::Locked {
                    dir: dir.to_owned(),
                    pid,
                });
            }
            Err(LockError::Io(err)) => {
                notices.push(format!(
                    "cannot lock {} ({err}); running without the lock, so make sure no other agent uses this state directory",
                    dir.join(LOCK_FILE).display()
                ));
                None
            }
        };

        let path = dir.join(JOURNAL_FILE);
        let fresh = JournalState {
            version: FORMAT_VERSION,
            ..Default::default()
        };
        let state = match read_journal(&path) {
            Ok(Some(state)) => state,
            Ok(None) => fresh.clone(),
            Err(reason) => {
                notices.push(state_file::set_aside(&path, &NAMING, &reason));
                fresh.clone()
            }
        };
        let mut journal = Journal {
            dir: dir.to_owned(),
            saved: state.clone(),
            state,
            dirty: false,
            failing: false,
            _lock: lock,
        };
        // Prove the directory can be written now, rather than discover it in the middle of an
        // outage; the agent goes on either way.
        journal.dirty = true;
        if let Some(notice) = journal.flush() {
            notices.push(notice);
        }
        Ok((journal, notices))
    }

    pub fn state(&self) -> &JournalState {
        &self.state
    }

    /// What the journal file is known to hold.
    pub fn saved(&self) -> &JournalState {
        &self.saved
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    /// Applies `change` and writes the journal. Returns a line for the user when the write fails
    /// for the first time or works again after failing; the change is kept in memory either way.
    pub fn update<T>(
        &mut self,
        change: impl FnOnce(&mut JournalState) -> T,
    ) -> (T, Option<String>) {
        let result = change(&mut self.state);
        self.dirty = self.dirty || self.state != self.saved;
        (result, self.flush())
    }

    /// Writes the journal if a write is owed (the loop calls this on every tick, so a write that
    /// failed is retried). Returns a line for the user as [`Journal::update`] does.
    pub fn flush(&mut self) -> Option<String> {
        if !self.dirty {
            return None;
        }
        let written = serde_json::to_vec_pretty(&self.state)
            .map_err(io::Error::other)
            .and_then(|bytes| write_atomically(&self.path(), &bytes));
        match written {
            Ok(()) => {
                self.saved = self.state.clone();
                self.dirty = false;
                let recovered = std::mem::replace(&mut self.failing, false);
                recovered.then(|| {
                    format!(
                        "the outage journal {} is written again",
                        self.path().display()
                    )
                })
            }
            Err(err) => {
                let first = !std::mem::replace(&mut self.failing, true);
                first.then(|| {
                    format!(
                        "cannot write the outage journal {} ({err}); keeping it in memory and trying again on every change",
                        self.path().display()
                    )
                })
            }
        }
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

/// The journal file's contents: `None` when there is none yet, `Err` with the reason when it
/// cannot be used.
fn read_journal(path: &Path) -> Result<Option<JournalState>, String> {
    state_file::read(path, FORMAT_VERSION)
}

impl Versioned for JournalState {
    fn version(&self) -> u32 {
        self.version
    }
}

const NAMING: Naming<'static> = Naming {
    file_name: JOURNAL_FILE,
    what: "outage journal",
    short: "journal",
    unusable: "corrupt",
};

enum LockError {
    Held(Option<u32>),
    Io(io::Error),
}

/// Takes the exclusive lock on the state directory and writes our pid into the lock file.
fn lock(dir: &Path) -> Result<fs::File, LockError> {
    let path = dir.join(LOCK_FILE);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.take(32).read_to_string(&mut text);
            return Err(LockError::Held(text.trim().parse().ok()));
        }
        Err(fs::TryLockError::Error(err)) => return Err(LockError::Io(err)),
    }
    // The pid is for the message a second agent prints; failing to write it (a full disk) does
    // not weaken the lock.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.flush());
    Ok(file)
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new file, never half of one
/// (also used by the history).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    // A name of our own for every write, so no two writers (nor two writes) share a temp file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("journal");
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)
    })();
    if let Err(err) = written {
        // A full disk must not fill up further with half-written temporary files.
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
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

    /// What is written is what the next run reads; no temporary file is left behind.
    #[test]
    fn survives_a_restart() {
        let dir = temp_dir("restart");
        let at = Utc::now();
        let state = {
            let (mut journal, notices) = Journal::open(&dir).unwrap();
            assert!(notices.is_empty(), "{notices:?}");
            let ((), notice) = journal.update(|s| {
                s.open = Some(OpenOutage::new("id1".into(), at, Cause::Isp, "0/3".into()))
            });
            assert_eq!(notice, None);
            assert_eq!(journal.saved(), journal.state());
            journal.state().clone()
        };
        let (reopened, _) = Journal::open(&dir).unwrap();
        assert_eq!(reopened.state(), &state);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "no temporary file left: {names:?}"
        );
        drop(reopened);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Corrupt, empty and directory journals are moved aside with a line, not deleted, and a new
    /// journal starts at once.
    #[test]
    fn unusable_journals_are_kept_aside() {
        for (label, make, reason) in [
            ("corrupt", "{half a jour", "key must be a string"),
            ("empty", "", "it is empty"),
            ("dir", "/", "it is a directory"),
        ] {
            let dir = temp_dir(label);
            fs::create_dir_all(&dir).unwrap();
            let path = dir.join(JOURNAL_FILE);
            if make == "/" {
                fs::create_dir(&path).unwrap();
            } else {
                fs::write(&path, make).unwrap();
            }
            let (journal, notices) = Journal::open(&dir).unwrap();
            assert_eq!(notices.len(), 1, "{notices:?}");
            assert!(
                notices[0].contains("is corrupt") && notices[0].contains(reason),
                "{notices:?}"
            );
            assert_eq!(journal.state().open, None);
            let aside = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().contains(".corrupt-"))
                .expect("kept aside");
            if make != "/" {
                assert_eq!(fs::read(aside).unwrap(), make.as_bytes());
            }
            assert!(path.is_file(), "{label}: a new journal is written at once");
            drop(journal);
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    /// A second journal on the same directory is refused while the first is open, naming its pid.
    #[test]
    fn one_journal_per_directory() {
        let dir = temp_dir("lock");
        let (first, _) = Journal::open(&dir).unwrap();
        let err = Journal::open(&dir).unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "another heartbeat-agent (pid {})",
                std::process::id()
            )),
            "{err}"
        );
        drop(first);
        assert!(
            Journal::open(&dir).is_ok(),
            "free again once the holder is gone"
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
