//! NVML off the runtime thread. The daemon's runtime has one thread; an NVML call that never
//! returns (a hung driver) on it would stop the heartbeat and leave SIGTERM unanswered. So the
//! NVML-backed observer lives on a thread of its own and the loop awaits each call with a
//! deadline: a call not back in time is reported as a stall ("NVML stalled on GPU 0 …"), and
//! until it returns, every further call is answered with the same stall at once instead of
//! queueing behind it. The thread is never joined: if the driver never answers, exiting the
//! process is what ends it.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

type Job<T> = Box<dyn FnOnce(&mut T) + Send>;

/// What the worker is doing now, set by the work itself (e.g. "on GPU 1"), for stall messages.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<String>>);

impl Progress {
    /// Records where the work is now.
    pub fn set(&self, at: impl Into<String>) {
        if let Ok(mut p) = self.0.lock() {
            *p = at.into();
        }
    }

    fn get(&self) -> String {
        self.0.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// A call that did not return in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("NVML stalled{at}: {what} has not returned after {waited_s} s")]
pub struct Stalled {
    /// `" on GPU 1"` or empty.
    pub at: String,
    /// The call, e.g. "reading the GPUs".
    pub what: String,
    /// Seconds since it started.
    pub waited_s: u64,
}

/// A thread owning a `T`, running one call at a time on it.
pub struct Worker<T> {
    jobs: mpsc::Sender<Job<T>>,
    busy: Arc<AtomicBool>,
    current: Option<(String, Instant)>,
    progress: Progress,
}

impl<T> std::fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("busy", &self.busy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Worker<T> {
    /// Starts the thread `name` and builds its `T` there with `make` (so `T` need not be
    /// `Send`: NVML handles stay on the thread that loaded the library).
    pub fn spawn(
        name: &str,
        make: impl FnOnce(Progress) -> T + Send + 'static,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job<T>>();
        let busy = Arc::new(AtomicBool::new(false));
        let progress = Progress::default();
        let thread_progress = progress.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut state = make(thread_progress.clone());
                // Ends when the Worker (the only sender) is dropped.
                // Each job frees the worker itself, before it answers (see `call`): freeing it
                // here, after the answer, could free the *next* call the caller already made.
                for job in rx {
                    thread_progress.set("");
                    job(&mut state);
                }
            })?;
        Ok(Worker {
            jobs,
            busy,
            current: None,
            progress,
        })
    }

    /// Runs `f` on the thread and waits for it at most `deadline`.
    pub async fn call<R: Send + 'static>(
        &mut self,
        what: &str,
        deadline: Duration,
        f: impl FnOnce(&mut T) -> R + Send + 'static,
    ) -> Result<R, Stalled> {
        if self.busy.load(Ordering::Acquire) {
            return Err(self.stalled());
        }
        let (tx, rx) = oneshot::channel();
        self.busy.store(true, Ordering::Release);
        self.current = Some((what.to_string(), Instant::now()));
        let busy = self.busy.clone();
        let job: Job<T> = Box::new(move |state| {
            let r = f(state);
            // Free before answering: the caller may call again as soon as it has the answer.
            busy.store(false, Ordering::Release);
            let _ = tx.send(r);
        });
        if self.jobs.send(job).is_err() {
            self.busy.store(false, Ordering::Release);
            return Err(self.stalled());
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(r)) => Ok(r),
            // The thread is gone (its work panicked): as good as stalled for ever.
            Ok(Err(_)) | Err(_) => Err(self.stalled()),
        }
    }

    fn stalled(&self) -> Stalled {
        let (what, since) = self
            .current
            .clone()
            .unwrap_or_else(|| ("a call".to_string(), Instant::now()));
        let at = self.progress.get();
        Stalled {
            at: if at.is_empty() {
                at
            } else {
                format!(" on {at}")
            },
            what,
            waited_s: since.elapsed().as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn back_to_back_calls_are_not_stalls() {
        let mut w = Worker::spawn("test-worker", |_| 0u64).expect("spawn");
        for i in 0..1000 {
            let r = w.call("counting", Duration::from_secs(5), move |n| {
                *n += 1;
                *n
            });
            assert_eq!(r.await.ok(), Some(i + 1));
        }
    }

    #[tokio::test]
    async fn a_stalled_call_is_reported_and_later_calls_do_not_queue() {
        // The stalled call waits for a message on this channel.
        let (release, gate) = mpsc::channel::<()>();
        let mut w = Worker::spawn("test-worker", move |_| gate).expect("spawn");
        assert_eq!(
            w.call("adding", Duration::from_secs(5), |_| 1 + 1)
                .await
                .ok(),
            Some(2)
        );
        let e = w
            .call("reading", Duration::from_millis(100), |g| {
                let _ = g.recv();
            })
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("NVML stalled: reading has not returned"),
            "{e}"
        );
        let e = w
            .call("other", Duration::from_secs(5), |_| ())
            .await
            .unwrap_err();
        assert_eq!(
            e.what, "reading",
            "answered at once with the stall in progress"
        );
        release.send(()).expect("release");
        // Free again once the stalled call has returned (soon, however loaded the machine).
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.busy.load(Ordering::Acquire) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            w.call("again", Duration::from_secs(5), |_| 3).await.ok(),
            Some(3)
        );
    }
}
