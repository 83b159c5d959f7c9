//! The state both daemon loops (observe/publish in `run.rs`, sampling, desired layout) share
//! on the daemon's one thread, and keep across configuration reloads.

use std::time::Duration;

use mig::report::GpuReport;

use super::generation::GenerationStore;

/// How long `close` (logout) may take at shutdown: SIGTERM must end the process within 2 s.
pub const CLOSE_TIMEOUT: Duration = Duration::from_millis(1000);

/// The latest observation, with its generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub gpus: Vec<GpuReport>,
    pub observed_at: String,
    pub generation: u64,
}

/// State shared by the two loops, and kept across configuration reloads.
#[derive(Debug)]
pub struct Shared {
    pub store: GenerationStore,
    pub latest: Option<Latest>,
    /// The generation last written to vCenter, if any in this process.
    pub published: Option<u64>,
    /// The desired layout in force, as last read (`reconcile.rs`; `[layout] source`).
    pub desired: super::desired::SharedDesired,
    /// Rolling utilization windows (`sampling.rs`), attached to each publication.
    pub usage: super::usage_state::UsageState,
    /// MIG events waiting to be posted to vCenter (`events.rs`).
    pub events: super::events::EventOutbox,
}

impl Shared {
    pub fn new(store: GenerationStore) -> Self {
        Shared {
            store,
            latest: None,
            published: None,
            desired: None,
            usage: super::usage_state::UsageState::default(),
            events: super::events::EventOutbox::default(),
        }
    }
}
