//! What the agent's two JSON state files, the outage journal (`journal`) and the history
//! (`history`), share: how one is read (bounded, versioned) and what happens to one that cannot be
//! used. Such a file is evidence, so it is never deleted or overwritten: it is renamed aside with
//! the time and pid in its name, and the agent says so and starts a new one.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use chrono::Utc;
use serde::de::DeserializeOwned;

/// The most a state file is read. Both are bounded far below it (the journal holds the open and
/// unacknowledged outages, the history at most `history::MAX_OUTAGES` outages and
/// `history::MAX_QUALITY_DAYS` days); a larger file is not one the agent wrote.
pub const MAX_STATE_BYTES: u64 = 16 << 20;

/// A state file's format version, the first thing checked after parsing.
pub trait Versioned {
    fn version(&self) -> u32;
}

/// The file's contents: `None` when there is none yet, `Err` with the reason when it cannot be
/// used (a directory, unreadable, empty, too large, not JSON of this shape, another version).
pub fn read<T: DeserializeOwned + Versioned>(
    path: &Path,
    version: u32,
) -> Result<Option<T>, String> {
    if path.is_dir() {
        return Err("it is a directory, not a file".to_owned());
    }
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(format!("cannot be read: {err}")),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot be read: {err}"))?;
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(format!("it is larger than {} MiB", MAX_STATE_BYTES >> 20));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("it is empty".to_owned());
    }
    match serde_json::from_slice::<T>(&bytes) {
        Ok(state) if state.version() == version => Ok(Some(state)),
        Ok(state) => Err(format!("unknown format version {}", state.version())),
        Err(err) => Err(err.to_string()),
    }
}

/// How a state file is named in the agent's notices: "outage journal" and "journal" for
/// `journal.json`, "history" twice for `history.json`.
pub struct Naming<'a> {
    pub file_name: &'a str,
    pub what: &'a str,
    pub short: &'a str,
    pub unusable: &'a str,
}

/// Moves an unusable state file aside and returns the notice that says where it went.
pub fn set_aside(path: &Path, naming: &Naming<'_>, reason: &str) -> String {
    let Naming {
        file_name,
        what,
        short,
        unusable,
    } = naming;
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let moved_to = path.with_file_name(format!(
        "{file_name}.corrupt-{stamp}-{}",
        std::process::id()
    ));
    match fs::rename(path, &moved_to) {
        Ok(()) => format!(
            "{what} {} is {unusable} ({reason}); kept it as {} and started a new {short}",
            path.display(),
            moved_to.display()
        ),
        Err(err) => format!(
            "{what} {} is {unusable} ({reason}) and could not be moved aside ({err}); starting a new {short} in memory",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct State {
        version: u32,
    }

    impl Versioned for State {
        fn version(&self) -> u32 {
            self.version
        }
    }

    const NAMING: Naming<'static> = Naming {
        file_name: "state.json",
        what: "test state",
        short: "state",
        unusable: "unusable",
    };

    fn temp_dir(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "isp-monitor-state-file-{label}-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_what_it_can_and_names_what_it_cannot() {
        let dir = temp_dir("read");
        let path = dir.join("state.json");
        assert!(read::<State>(&path, 1).unwrap().is_none(), "no file yet");
        for (text, expected) in [
            (r#"{"version": 1}"#.to_owned(), Ok(1)),
            (
                r#"{"version": 2}"#.to_owned(),
                Err("unknown format version 2"),
            ),
            (" \n".to_owned(), Err("it is empty")),
            ("{".to_owned(), Err("EOF while parsing an object")),
        ] {
            fs::write(&path, &text).unwrap();
            let got = read::<State>(&path, 1).map(|s| s.unwrap().version);
            match expected {
                Ok(version) => assert_eq!(got, Ok(version), "{text}"),
                Err(reason) => assert!(
                    got.as_ref().is_err_and(|err| err.starts_with(reason)),
                    "{text}: {got:?}"
                ),
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A file larger than the bound is refused after reading just past the bound, and moving it
    /// aside keeps every byte of it.
    #[test]
    fn a_file_past_the_bound_is_refused_and_kept_whole() {
        let dir = temp_dir("large");
        let path = dir.join("state.json");
        let mut text = br#"{"version": 1, "pad": ""#.to_vec();
        text.resize(MAX_STATE_BYTES as usize + 10, b'x');
        text.extend_from_slice(br#""}"#);
        fs::write(&path, &text).unwrap();
        let reason = read::<State>(&path, 1).err().unwrap();
        assert_eq!(reason, "it is larger than 16 MiB");
        let notice = set_aside(&path, &NAMING, &reason);
        assert!(
            notice.starts_with(&format!(
                "test state {} is unusable (it is larger than 16 MiB); kept it as ",
                path.display()
            )),
            "{notice}"
        );
        assert!(notice.ends_with(" and started a new state"), "{notice}");
        assert!(!path.exists());
        let kept: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(fs::read(&kept[0]).unwrap(), text);
        fs::remove_dir_all(&dir).unwrap();
    }
}
