//! The state file: one JSON document shared by every process that uses the simulated machine.
//!
//! A real driver is one piece of kernel state that the agent, nvidia-smi and CUDA programs all
//! see. The simulator gets the same effect with one file: every NVML call and every
//! control-binary command runs under an exclusive lock on a sibling `<state>.lock` file, and
//! changes are written atomically (temporary file + rename) so a crash never leaves half a
//! state.
//!
//! Parsing the file on every call made a resident client (the agent polls ~hundreds of NVML
//! calls every few seconds) spend nearly all its CPU in serde, which no real driver does. So a
//! [`Store`] keeps the last state it read or wrote, with the file's [`Version`], and parses
//! again only when the version changed. The version is the file's identity and times
//! (device, inode, size, mtime and ctime in ns, which another process's rename or in-place
//! edit changes) plus a write counter that every [`Store`] writer bumps in the lock file, so
//! two writes in one timestamp tick that reuse a freed inode are still told apart.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// Which version of the state file a cached state was parsed from (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    /// Bumped in `<state>.lock` by every [`Store`] write, under the lock.
    writes: u64,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

/// The last state this [`Store`] (and its clones) read or wrote.
#[derive(Debug)]
struct Cached {
    version: Version,
    state: SimState,
}

#[derive(Debug, Default)]
struct Slot {
    cached: Option<Cached>,
    /// How many times the file was parsed (see [`Store::parses`]).
    parses: u64,
}

/// A state file path and the operations on it. Clones share one parsed-state cache.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    cache: Arc<Mutex<Slot>>,
}

/// Offset 0 of the lock file holds the write counter as 8 little-endian bytes; an empty lock
/// file (older writers, fresh file) reads as 0.
const COUNTER_LEN: usize = 8;

fn write_counter(lock: &File) -> u64 {
    let mut buf = [0u8; COUNTER_LEN];
    match lock.read_at(&mut buf, 0) {
        Ok(COUNTER_LEN) => u64::from_le_bytes(buf),
        // Short or failed read: treat as "unknown", which only costs a re-parse when the
        // file's own identity did not change either.
        _ => 0,
    }
}

impl Store {
    /// A store for `path` (nothing is touched yet).
    pub fn new(path: impl Into<PathBuf>) -> Store {
        Store {
            path: path.into(),
            cache: Arc::new(Mutex::new(Slot::default())),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Slot> {
        // A panic in a caller's closure cannot leave the cache half-written: it is replaced
        // whole or not at all.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The current version of the state file; `lock` is the held lock file.
    fn version(&self, lock: &File) -> Result<Version, StoreError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(self.io("stat", &self.path)(e)),
        };
        let ns = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Ok(Version {
            writes: write_counter(lock),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// How many times this store and its clones parsed the state file: a state read while
    /// the file is unchanged comes from the cache and does not count.
    pub fn parses(&self) -> u64 {
        self.cache().parses
    }

    /// Make the cache hold the state file's current content (parsing only if it changed)
    /// and return the guard; `cached` is `Some` on success.
    fn refresh(&self, lock: &File) -> Result<MutexGuard<'_, Slot>, StoreError> {
        let mut slot = self.cache();
        let version = self.version(lock)?;
        if slot.cached.as_ref().is_some_and(|c| c.version == version) {
            return Ok(slot);
        }
        // Drop the old state first: if the new one does not parse, nothing stale survives.
        slot.cached = None;
        slot.parses += 1;
        let state = self.parse()?;
        slot.cached = Some(Cached { version, state });
        Ok(slot)
    }

    fn parse(&self) -> Result<SimState, StoreError> {
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

    /// Write `state` and return the file's new version; `lock` is the held lock file.
    fn write(&self, lock: &File, state: &SimState) -> Result<Version, StoreError> {
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
        // Bump the counter before the rename: a crash in between costs other processes one
        // needless re-parse, never a stale state.
        let writes = write_counter(lock).wrapping_add(1);
        lock.write_all_at(&writes.to_le_bytes(), 0)
            .map_err(self.io("write the counter in", &self.lock_path()))?;
        std::fs::rename(&tmp, &self.path).map_err(self.io("rename into place", &self.path))?;
        self.version(lock)
    }

    /// Create the state file; refuses to replace an existing one unless `force`.
    pub fn create(&self, state: &SimState, force: bool) -> Result<(), StoreError> {
        let lock = self.lock()?;
        if !force && self.path.exists() {
            return Err(StoreError::Exists {
                path: self.path.clone(),
            });
        }
        let mut slot = self.cache();
        slot.cached = None;
        let version = self.write(&lock, state)?;
        slot.cached = Some(Cached {
            version,
            state: state.clone(),
        });
        Ok(())
    }

    /// Read the state under the lock (a copy of the cached one when the file is unchanged).
    pub fn load(&self) -> Result<SimState, StoreError> {
        self.read(SimState::clone)
    }

    /// Let `f` look at the current state under the lock, without copying it. The state is
    /// parsed only if the file changed since this store last read or wrote it.
    pub fn read<R>(&self, f: impl FnOnce(&SimState) -> R) -> Result<R, StoreError> {
        let lock = self.lock()?;
        let slot = self.refresh(&lock)?;
        match slot.cached.as_ref() {
            Some(c) => Ok(f(&c.state)),
            None => Err(StoreError::Missing {
                path: self.path.clone(),
            }),
        }
    }

    /// Read, let `f` change the state, and write it back if it changed — all under one lock,
    /// so concurrent processes see each other's changes in a consistent order.
    pub fn update<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> Result<R, StoreError> {
        let lock = self.lock()?;
        let mut slot = self.refresh(&lock)?;
        let Some(cached) = slot.cached.as_mut() else {
            return Err(StoreError::Missing {
                path: self.path.clone(),
            });
        };
        // `f` works on a copy: if writing fails, the cache still matches the file.
        let mut state = cached.state.clone();
        let r = f(&mut state);
        if state != cached.state {
            // Forget the old state before writing: a failed write may have half-happened
            // (counter bumped, rename not), and the next call must look at the file again.
            slot.cached = None;
            let version = self.write(&lock, &state)?;
            slot.cached = Some(Cached { version, state });
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

    fn a100() -> SimState {
        SimState::new(&["a100-pcie-40gb".into()]).unwrap()
    }

    #[test]
    fn an_unchanged_file_is_parsed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("state.json"));
        store.create(&a100(), false).unwrap();
        for _ in 0..5 {
            assert!(!store.read(|s| s.gpus[0].mig_mode.pending).unwrap());
        }
        assert_eq!(store.parses(), 0, "create fills the cache");
        // A clone (what the library hands each call) shares the cache.
        let clone = store.clone();
        clone.load().unwrap();
        assert_eq!(store.parses(), 0);
        // A fresh store (another process) parses once, then reuses.
        let other = Store::new(store.path());
        other.load().unwrap();
        other.load().unwrap();
        assert_eq!(other.parses(), 1);
    }

    #[test]
    fn own_writes_update_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("state.json"));
        store.create(&a100(), false).unwrap();
        store.update(|s| s.set_mig_mode(0, true)).unwrap().unwrap();
        assert!(store.read(|s| s.gpus[0].mig_mode.pending).unwrap());
        // An update that changes nothing writes nothing.
        let before = std::fs::metadata(store.path()).unwrap().ino();
        store.update(|s| s.gpus.len()).unwrap();
        assert_eq!(std::fs::metadata(store.path()).unwrap().ino(), before);
        assert_eq!(store.parses(), 0, "own writes never need a re-parse");
        // What the cache holds is what the file holds.
        assert_eq!(
            Store::new(store.path()).load().unwrap(),
            store.load().unwrap()
        );
    }

    #[test]
    fn changes_by_others_are_seen_at_the_next_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let agent = Store::new(&path);
        agent.create(&a100(), false).unwrap();
        let cli = Store::new(&path);
        // Many quick writes by "another process" (within one timestamp tick, possibly
        // reusing freed inodes): each one is seen, thanks to the write counter.
        for i in 0..50 {
            let enable = i % 2 == 0;
            cli.update(|s| s.set_mig_mode(0, enable)).unwrap().unwrap();
            assert_eq!(
                agent.read(|s| s.gpus[0].mig_mode.pending).unwrap(),
                enable,
                "write {i}"
            );
        }
        assert_eq!(agent.parses(), 50);
        // A hand edit in place (same inode, no counter bump) is seen too, by its size and times.
        let mut edited = agent.load().unwrap();
        edited.driver_version = "999.99.99.1".into();
        std::fs::write(&path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
        assert_eq!(
            agent.read(|s| s.driver_version.clone()).unwrap(),
            "999.99.99.1"
        );
        // A broken or vanished file is reported, never answered from the cache.
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(agent.load(), Err(StoreError::Corrupt { .. })));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(agent.load(), Err(StoreError::Missing { .. })));
    }
}
