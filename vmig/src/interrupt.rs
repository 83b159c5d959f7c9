//! SIGINT/SIGTERM during a change: vmig never abandons a vCenter call half-way. The first
//! signal sets a flag that `assign`, `unassign`, `repair` and `plan --apply` check between
//! vCenter calls; they record the step they reached in the VM's reservation and stop with advice naming
//! `vmig repair`. A second signal exits at once (the journal still lets `repair` finish).
//! Read-only commands do not install this: Ctrl-C ends them immediately.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Starts listening for SIGINT and SIGTERM (call inside the runtime).
pub fn install() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot catch SIGINT/SIGTERM; an interrupted change needs `vmig repair`"
            );
            return;
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("vmig: second signal: exiting now; run `vmig repair` afterwards");
                    std::process::exit(130);
                }
                eprintln!(
                    "vmig: signal received: finishing the current vCenter call, then stopping (again to exit at once)"
                );
            }
        });
    }
}
