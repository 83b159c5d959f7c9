//! The desired layout as the daemon holds it (issue #21): what is in force, where it comes
//! from ([`DesiredSource`]; vCenter in `reconcile_vcenter.rs`) and the per-GPU states it
//! produced. Plain data shared by the reconciler, the loops and the observer.

use std::sync::Arc;

use mig::layout_file::LayoutFile;
use mig::report::{GpuLayoutState, LayoutSource, LayoutStateKind};

/// The desired layout in force on this host, as the agent works from it.
#[derive(Debug, Clone)]
pub struct DesiredInForce {
    pub source: LayoutSource,
    /// The named config.
    pub name: String,
    /// The `vmig.layout` document's version (`None` for a local layout).
    pub version: Option<u64>,
    /// The parsed layout file, or why the desired layout cannot be used (every GPU is then
    /// reported `invalid-layout` with that reason, and nothing is changed).
    pub file: Result<LayoutFile, String>,
    /// SHA-256 of the text it was read from: two admins may write the same version with
    /// different content, and the agent must follow whichever is there.
    pub digest: String,
}

/// The digest [`DesiredInForce::digest`] holds.
pub fn digest(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

impl DesiredInForce {
    /// What identifies one desired layout: a change of it triggers a new attempt.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}",
            self.source.as_str(),
            self.name,
            self.version,
            self.digest,
            match &self.file {
                Ok(_) => "ok".to_string(),
                Err(e) => e.clone(),
            }
        )
    }

    /// `all-balanced v3 (vcenter-cluster)`, for logs.
    pub fn label(&self) -> String {
        match self.version {
            Some(v) => format!("{} v{v} ({})", self.name, self.source.as_str()),
            None => format!("{} ({})", self.name, self.source.as_str()),
        }
    }

    pub(super) fn state(
        &self,
        state: LayoutStateKind,
        reason: Option<String>,
        action: Option<String>,
    ) -> GpuLayoutState {
        GpuLayoutState {
            state,
            layout: self.name.clone(),
            version: self.version,
            source: self.source,
            reason,
            action,
            blocked_by: Vec::new(),
        }
    }
}

/// Where the desired layout comes from (vCenter in the daemon; scripted in tests).
// The daemon runs on a current-thread runtime, so these futures never need to be `Send`.
#[allow(async_fn_in_trait)]
pub trait DesiredSource {
    /// The desired layout in force now: `Ok(None)` when none is set; `Err` when it cannot be
    /// read (the caller keeps working from the last one it read).
    async fn fetch(&mut self) -> Result<Option<DesiredInForce>, String>;

    /// End any session (logout).
    async fn close(&mut self);
}

/// A source that never has a desired layout (reconcile off).
#[derive(Debug, Default)]
pub struct NoDesired;

impl DesiredSource for NoDesired {
    async fn fetch(&mut self) -> Result<Option<DesiredInForce>, String> {
        Ok(None)
    }

    async fn close(&mut self) {}
}

/// Per-GPU states by GPU UUID.
pub type States = Vec<(String, GpuLayoutState)>;

/// A shareable desired layout (the fetch loop hands it to the observe loop).
pub type SharedDesired = Option<Arc<DesiredInForce>>;
