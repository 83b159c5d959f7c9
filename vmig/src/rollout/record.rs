//! The rollout's progress, kept in vCenter (`vmig.rollout` on the cluster) so that a rollout
//! interrupted anywhere (Ctrl-C, a crash, a lost connection, `--reboot admin` waiting for a
//! reboot) is resumed by running the same command again, from any workstation.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The custom attribute holding the record (global definition; set on the cluster).
pub const FIELD_ROLLOUT: &str = "vmig.rollout";
pub const SCHEMA_V1: &str = "vmig.rollout/v1";
/// Largest record accepted (one short line per host).
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Most hosts a record may list (vSphere clusters hold at most 96 hosts today).
pub const MAX_HOSTS: usize = 1024;

/// Where one host stands in the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// `EnterMaintenanceMode_Task` was started.
    Entering,
    /// In maintenance mode, waiting for the agent's report.
    InMaintenance,
    /// `RebootHost_Task` was started.
    Rebooting,
    /// In maintenance mode, waiting for the admin to reboot it (`--reboot admin`).
    WaitingForReboot,
    /// The agent reported the layout applied and the host left maintenance mode.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Entering => "entering-maintenance",
            Phase::InMaintenance => "in-maintenance",
            Phase::Rebooting => "rebooting",
            Phase::WaitingForReboot => "waiting-for-reboot",
            Phase::Done => "done",
        }
    }
}

/// One host's entry: its phase and the desired layout it is being brought to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub phase: Phase,
    /// `all-balanced v3`: an entry for an older desired layout is started over.
    pub layout: String,
}

/// The `vmig.rollout` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub schema: String,
    pub started_by: String,
    pub started_at: String,
    pub updated_at: String,
    pub hosts: BTreeMap<String, HostEntry>,
}

impl Record {
    /// Reads a record back; anything unreadable or out of bounds is `Err` with the reason
    /// (the caller then refuses to guess and says how to start over).
    pub fn parse(text: &str) -> Result<Record, String> {
        if text.len() > MAX_RECORD_BYTES {
            return Err(format!(
                "{} bytes, more than {MAX_RECORD_BYTES}",
                text.len()
            ));
        }
        let r: Record = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if r.schema != SCHEMA_V1 {
            return Err(format!(
                "schema `{}`, not {SCHEMA_V1}",
                r.schema.chars().take(40).collect::<String>()
            ));
        }
        if r.hosts.len() > MAX_HOSTS {
            return Err(format!("{} hosts, more than {MAX_HOSTS}", r.hosts.len()));
        }
        let long = |s: &str| s.chars().count() > 256 || s.chars().any(char::is_control);
        if long(&r.started_by)
            || long(&r.started_at)
            || long(&r.updated_at)
            || r.hosts.iter().any(|(h, e)| long(h) || long(&e.layout))
        {
            return Err("a name or time is too long or holds control characters".into());
        }
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_hostile_records() {
        let mut r = Record {
            schema: SCHEMA_V1.into(),
            started_by: "admin".into(),
            started_at: "2026-12-02T10:00:00Z".into(),
            updated_at: "2026-12-02T10:00:00Z".into(),
            hosts: BTreeMap::new(),
        };
        r.hosts.insert(
            "esx-1".into(),
            HostEntry {
                phase: Phase::WaitingForReboot,
                layout: "all-balanced v2".into(),
            },
        );
        assert_eq!(Record::parse(&r.to_json()).unwrap(), r);
        assert!(Record::parse("{").is_err());
        assert!(Record::parse(&"x".repeat(MAX_RECORD_BYTES + 1)).is_err());
        assert!(Record::parse(&r.to_json().replace("vmig.rollout/v1", "v9")).is_err());
        assert!(Record::parse(&r.to_json().replace("esx-1", "esx\\u001b1")).is_err());
        assert!(Record::parse(&r.to_json().replace("waiting-for-reboot", "exploded")).is_err());
    }
}
