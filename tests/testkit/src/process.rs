//! Child processes that cannot outlive their test.
//!
//! A test that panics half-way still drops its guards, so every child gets SIGTERM (a chance
//! to clean up, which vcsim needs to delete its VM files), then SIGKILL, and is reaped so no
//! zombie remains. Only the guard's own child is ever signalled, by its PID.
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::{Result, io_err};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// Owns a child process; drop terminates and reaps it.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    /// Spawns `cmd`; `name` appears in error messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<ChildGuard> {
        let child = cmd
            .spawn()
            .map_err(io_err(format!("starting {name} ({cmd:?})")))?;
        Ok(ChildGuard::new(name, child))
    }

    /// Takes ownership of an already spawned child.
    pub fn new(name: &str, child: Child) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    /// The child's PID, or `None` once it was stopped through this guard.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The child, e.g. to take its stdout.
    ///
    /// # Panics
    /// After [`ChildGuard::stop`]: there is no child any more.
    pub fn child_mut(&mut self) -> &mut Child {
        let name = &self.name;
        self.child
            .as_mut()
            .unwrap_or_else(|| panic!("{name} was already stopped"))
    }

    /// `Some(status)` when the child has exited (it is then reaped), `None` while it runs.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            None => Ok(None),
            Some(c) => c
                .try_wait()
                .map_err(io_err(format!("waiting for {}", self.name))),
        }
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL; always reaps. Returns the exit status, or
    /// `None` when the child was already stopped through this guard.
    pub fn stop(&mut self) -> Result<Option<ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let what = format!("stopping {} (pid {})", self.name, child.id());
        if let Some(status) = child.try_wait().map_err(io_err(what.clone()))? {
            return Ok(Some(status));
        }
        terminate(child.id());
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().map_err(io_err(what.clone()))? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Ignored: the child may exit between the check and the kill.
        let _ = child.kill();
        child.wait().map(Some).map_err(io_err(what))
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("vmig-testkit: {e}");
        }
    }
}

#[allow(
    unsafe_code,
    reason = "std has no way to send SIGTERM (Child::kill sends SIGKILL); libc::kill is the one call"
)]
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours. The PID is our own
    // unreaped child, so it cannot have been recycled for another process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Whether a process with this PID exists and is not a zombie (Linux `/proc`).
///
/// Tests use it to check that a guard really ended its child.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_terminates_and_reaps() {
        let guard = ChildGuard::spawn("sleep", Command::new("sleep").arg("600")).unwrap();
        let pid = guard.pid().unwrap();
        assert!(process_alive(pid));
        drop(guard);
        assert!(!process_alive(pid), "pid {pid} still alive after drop");
    }

    #[test]
    fn stop_reports_exit_status() {
        let mut guard = ChildGuard::spawn("true", &mut Command::new("true")).unwrap();
        while guard.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // try_wait reaped it; stop still answers and leaves nothing to do on drop.
        assert!(guard.stop().unwrap().is_some_and(|s| s.success()));
        assert_eq!(guard.pid(), None);
    }
}
