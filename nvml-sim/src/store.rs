//! The state file: one JSON document shared by every process that uses the simulated machine.
//!
//! A real driver is one piece of kernel state that the agent, nvidia-smi and CUDA programs all
//! see. The simulator gets the same effect by re-reading the file on every NVML call and every
//! control-binary command, under an exclusive lock on a sibling `<state>.lock` file, and by
//! writing changes atomically (temporary file + rename) so a crash never leaves half a state.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::state::SimState;

/// The environment variable naming the state file the library uses.
pub const STATE_ENV: &str = "NVML_SIM_STATE";

/// Failures reading or writing the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "state file {path} does not exist; create it with `nvml-sim --state {path} init --gpu MODEL`"
    )]
    Missing { path: PathBuf },
    #[error("state file {path} already exists; pass --force to overwrite it")]
    Exists { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is not a valid nvml-sim state: {reason}; recreate it with `nvml-sim init --force`"
    )]
    Corrupt { path: PathBuf, reason: String },
}

/// A state file path and the operations on it.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// A store for `path` (nothing is touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store { path: path.into() }
    }

    /// The state file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut s = self.path.as_os_str().to_owned();
        s.push(".lock");
        PathBuf::from(s)
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }

    /// Hold the exclusive lock for the lifetime of the returned file.
    fn lock(&self) -> Result<File, StoreError> {
        let lock_path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(self.io("open lock file", &lock_path))?;
        file.lock().map_err(self.io("lock", &lock_path))?;
        Ok(file)
    }

    fn read(&self) -> Result<SimState, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(self.io("read", &self.path)(e)),
        };
        let state: SimState = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        state.validate().map_err(|reason| StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        })?;
        Ok(state)
    }

    fn write(&self, state: &SimState) -> Result<(), StoreError> {
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut text = serde_json::to_string_pretty(state).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        let mut f = File::create(&tmp).map_err(self.io("create", &tmp))?;
        f.write_all(text.as_bytes())
            .map_err(self.io("write", &tmp))?;
        f.sync_all().map_err(self.io("sync", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(self.io("rename into place", &self.path))?;
        Ok(())
    }

    /// Create the state file; refuses to replace an existing one unless `force`.
    pub fn create(&self, state: &SimState, force: bool) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        if !force && self.path.exists() {
            return Err(StoreError::Exists {
                path: self.path.clone(),
            });
        }
        self.write(state)
    }

    /// Read the state under the lock.
    pub fn load(&self) -> Result<SimState, StoreError> {
        let _lock = self.lock()?;
        self.read()
    }

    /// Read, let `f` change the state, and write it back if it changed — all under one lock,
    /// so concurrent processes see each other's changes in a consistent order.
    pub fn update<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> Result<R, StoreError> {
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let before = state.clone();
        let r = f(&mut state);
        if state != before {
            self.write(&state)?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_update_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("state.json"));
        assert!(matches!(store.load(), Err(StoreError::Missing { .. })));
        let state = SimState::new(&["a100-pcie-40gb".into()]).unwrap();
        store.create(&state, false).unwrap();
        assert!(matches!(
            store.create(&state, false),
            Err(StoreError::Exists { .. })
        ));
        store.update(|s| s.set_mig_mode(0, true)).unwrap().unwrap();
        let loaded = store.load().unwrap();
        assert!(loaded.gpus[0].mig_mode.pending);
        assert_eq!(loaded.gpus[0].uuid, state.gpus[0].uuid);
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Store::new(&path).load(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
