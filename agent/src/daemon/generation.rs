//! The `generation` counter of the published document and where it survives restarts.
//!
//! The counter grows by one with every change of the observed state. It is kept in a small
//! JSON state file beside the configuration (`/etc/vmig/agent.toml` → `/etc/vmig/agent.state`),
//! written only when the state changes. That file is a convenience, not the authority: ESXi
//! keeps most of its file system in memory, so after a reboot the file may be gone. Before
//! every publication the agent reads back what vCenter holds and moves its counter above it
//! ([`GenerationStore::raise_above`]), which is what guarantees that an older generation never
//! replaces a newer one.
//!
//! Overflow rule: the counter never passes [`MAX_GENERATION`] (2^53 − 1, the largest integer
//! every JSON reader holds exactly). A document in vCenter above it is invalid to every reader
//! (`mig::report` validation), so the agent ignores it and overwrites it with its own count;
//! [`GenerationStore::raise_above`] also refuses such a value, and a state file holding one is
//! clamped. Nothing here adds past the maximum, so no value from outside can make it panic.
use std::path::{Path, PathBuf};

use mig::report::MAX_GENERATION;
use serde::{Deserialize, Serialize};

/// The state file that belongs to a configuration file.
pub fn state_path_for(config: &Path) -> PathBuf {
    config.with_extension("state")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    generation: u64,
    fingerprint: String,
}

/// The current generation and the fingerprint of the state it names.
#[derive(Debug)]
pub struct GenerationStore {
    path: Option<PathBuf>,
    state: StateFile,
    warned: bool,
}

impl GenerationStore {
    /// Load the store from `path` (a missing or unreadable file starts from 0), or keep it in
    /// memory only when `path` is `None`.
    pub fn open(path: Option<PathBuf>) -> Self {
        let state = path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str::<StateFile>(&text).ok())
            .map(|mut s| {
                s.generation = s.generation.min(MAX_GENERATION);
                s
            })
            .unwrap_or_default();
        GenerationStore {
            path,
            state,
            warned: false,
        }
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    /// Record an observation; returns its generation (a new one if the state changed).
    pub fn record(&mut self, fingerprint: &str) -> u64 {
        if self.state.fingerprint != fingerprint {
            self.state.fingerprint = fingerprint.to_string();
            // At the maximum a change keeps the number: readers still see the new document.
            self.state.generation = self.state.generation.saturating_add(1).min(MAX_GENERATION);
            self.save();
        }
        self.state.generation
    }

    /// Make sure the current generation is above `published` (a generation found in vCenter
    /// that this agent did not write, or wrote before losing its state file).
    /// A `published` value at or above [`MAX_GENERATION`] is not followed (no document can be
    /// above it): the counter stays and the next publication overwrites that value.
    pub fn raise_above(&mut self, published: u64) -> u64 {
        if published >= MAX_GENERATION {
            tracing::warn!(
                found = published,
                max = MAX_GENERATION,
                "vCenter holds a generation no agent writes; overwriting it with this agent's count"
            );
            return self.state.generation;
        }
        if self.state.generation <= published {
            self.state.generation = published + 1;
            self.save();
        }
        self.state.generation
    }

    fn save(&mut self) {
        let Some(path) = &self.path else { return };
        let text = serde_json::to_string(&self.state).unwrap_or_default();
        // Write-then-rename so a crash never leaves a half-written file behind.
        let tmp = path.with_extension("state.tmp");
        let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result
            && !self.warned
        {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot save the generation counter; continuing in memory (vCenter's copy keeps generations monotonic)"
            );
            self.warned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_changes_and_survives_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = state_path_for(&dir.path().join("agent.toml"));
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("agent.state")
        );
        let mut s = GenerationStore::open(Some(path.clone()));
        assert_eq!(s.record("a"), 1);
        assert_eq!(s.record("a"), 1);
        assert_eq!(s.record("b"), 2);
        drop(s);
        let mut s = GenerationStore::open(Some(path.clone()));
        assert_eq!(
            s.record("b"),
            2,
            "same state after restart keeps its generation"
        );
        assert_eq!(s.raise_above(1), 2);
        assert_eq!(s.raise_above(9), 10);
        drop(s);
        assert_eq!(GenerationStore::open(Some(path)).generation(), 10);
    }

    #[test]
    fn never_overflows() {
        let mut s = GenerationStore::open(None);
        assert_eq!(
            s.raise_above(u64::MAX),
            0,
            "an impossible value is not followed"
        );
        assert_eq!(s.raise_above(MAX_GENERATION), 0);
        assert_eq!(s.raise_above(MAX_GENERATION - 1), MAX_GENERATION);
        assert_eq!(s.record("x"), MAX_GENERATION, "saturates at the maximum");
        assert_eq!(s.record("y"), MAX_GENERATION);

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("agent.state");
        std::fs::write(
            &path,
            format!(r#"{{"generation":{},"fingerprint":"a"}}"#, u64::MAX),
        )
        .expect("write");
        let mut s = GenerationStore::open(Some(path));
        assert_eq!(s.generation(), MAX_GENERATION);
        assert_eq!(s.record("b"), MAX_GENERATION);
    }

    #[test]
    fn unwritable_path_still_counts() {
        let mut s = GenerationStore::open(Some(PathBuf::from("/nonexistent-dir/agent.state")));
        assert_eq!(s.record("a"), 1);
        assert_eq!(s.record("b"), 2);
    }
}
