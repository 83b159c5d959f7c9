//! What the agent did with the desired layout, per GPU (issue #21): the `layout_state` of a
//! [`GpuReport`](super::GpuReport). The agent writes it on every poll where a desired layout
//! is in force; `vmig layout show` and `vmig rollout` read it. Outside input like the rest of
//! the document, so [`validate`] bounds every string and list.
use serde::{Deserialize, Serialize};

use super::limits::{MAX_ERROR_CHARS, MAX_LIST_ENTRIES, MAX_TEXT_CHARS};

/// Where the layout in force came from (precedence: local config, then host, then cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutSource {
    /// The agent's own config (`[agent] layout_file` + `layout_name`): the host's admin set it,
    /// and it wins over vCenter.
    Local,
    /// The `vmig.layout` attribute of the host's HostSystem.
    VcenterHost,
    /// The `vmig.layout` attribute of the host's cluster.
    VcenterCluster,
}

impl LayoutSource {
    /// The wire spelling (`local`, `vcenter-host`, `vcenter-cluster`).
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutSource::Local => "local",
            LayoutSource::VcenterHost => "vcenter-host",
            LayoutSource::VcenterCluster => "vcenter-cluster",
        }
    }
}

/// The state of one GPU against its desired layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutStateKind {
    /// The GPU matches the layout.
    Applied,
    /// The layout needs a MIG mode change that takes effect only after a GPU reset or host
    /// reboot (`reason` says which, `action` what to do: `vmig rollout`).
    PendingReset,
    /// Getting there would destroy an instance in use (`blocked_by` names the VMs/processes).
    BlockedInUse,
    /// NVML failed while applying (`reason` holds the error).
    Failed,
    /// The layout cannot exist on this GPU, or the desired-layout document is unreadable.
    InvalidLayout,
}

impl LayoutStateKind {
    /// The wire spelling (`applied`, `pending-reset`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            LayoutStateKind::Applied => "applied",
            LayoutStateKind::PendingReset => "pending-reset",
            LayoutStateKind::BlockedInUse => "blocked-in-use",
            LayoutStateKind::Failed => "failed",
            LayoutStateKind::InvalidLayout => "invalid-layout",
        }
    }
}

/// One GPU's state against the layout in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuLayoutState {
    pub state: LayoutStateKind,
    /// Name of the layout (the named config in the layout file).
    pub layout: String,
    /// `version` of the `vmig.layout` document the agent worked from (`None` for a local one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub source: LayoutSource,
    /// Why the GPU is not `applied` (the NVML error, the reason a reset is needed, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the admin should do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// For `blocked-in-use`: who holds the instances in the way (`vm <name>`, `pid …`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
}

/// Bounds on a `layout_state` read back from vCenter.
pub fn validate(s: &GpuLayoutState) -> Result<(), String> {
    let text = |field: &str, v: &str, max: usize| {
        if v.len() > max && v.chars().count() > max {
            Err(format!(
                "layout_state.{field} is longer than {max} characters"
            ))
        } else {
            Ok(())
        }
    };
    text("layout", &s.layout, MAX_TEXT_CHARS)?;
    if let Some(r) = &s.reason {
        text("reason", r, MAX_ERROR_CHARS)?;
    }
    if let Some(a) = &s.action {
        text("action", a, MAX_ERROR_CHARS)?;
    }
    if s.blocked_by.len() > MAX_LIST_ENTRIES {
        return Err(format!(
            "layout_state.blocked_by has {} entries, more than {MAX_LIST_ENTRIES}",
            s.blocked_by.len()
        ));
    }
    for b in &s.blocked_by {
        text("blocked_by entry", b, MAX_TEXT_CHARS)?;
    }
    if s.version.is_some_and(|v| v > super::MAX_GENERATION) {
        return Err("layout_state.version is above 2^53 - 1".into());
    }
    Ok(())
}
