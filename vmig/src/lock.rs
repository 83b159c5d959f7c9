//! A per-host mutual-exclusion lock built on the one atomic create-if-absent vCenter offers
//! to API clients without extra installs: `CustomFieldsManager.AddCustomFieldDef` fails with
//! `DuplicateName` when a field of that name exists (vCenter checks and adds under one lock).
//!
//! Why not compare-and-set on the reservation values themselves: `SetField` is a blind
//! write, and "write, re-read, lowest timestamp wins" lets two writers both win when one
//! writer's clock (or a slow request) puts an earlier timestamp behind a later write. A lock
//! makes `assign`'s "check capacity, then record the reservation" step atomic per host:
//!
//! 1. create field `vmig.lock.<host-id>` (type HostSystem); `DuplicateName` → someone holds
//!    it: wait and retry (up to a deadline);
//! 2. write the holder (`who`, time) as the lock field's value on the host, so others can
//!    name the holder and break a lock whose holder died;
//! 3. (caller) re-read reservations and the host's report, re-check capacity, write the
//!    VM's `vmig.reservation`;
//! 4. remove the field definition **by its key** (keys are never reused, so a breaker can
//!    never remove a newer holder's lock).
//!
//! A lock older than [`STALE_AFTER`], or one whose holder wrote no value within
//! [`UNCLAIMED_AFTER`] of being seen, is broken. Privilege: `Global.ManageCustomFields`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use vcenter_client::{Client, CustomFieldKey, Error, FaultKind, HostRef};

use crate::times::{format_time, parse_time};

/// A held lock older than this is presumed dead and broken.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// A lock with no holder value this long after we first saw it is presumed dead.
pub const UNCLAIMED_AFTER: Duration = Duration::from_secs(10);
/// Name prefix of lock fields.
pub const LOCK_PREFIX: &str = "vmig.lock.";

/// Who holds a lock (the lock field's value on the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@client-host`, free text.
    pub who: String,
    /// What it is doing, e.g. `assign VM web-01`.
    pub what: String,
    /// RFC 3339 time the lock was taken.
    pub since: String,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("host {host} is locked by {holder} for another vmig change; try again shortly")]
    Busy {
        /// The host name.
        host: String,
        /// Who holds it, as far as known.
        holder: String,
    },
    /// vCenter refused.
    #[error(transparent)]
    Vcenter(#[from] Error),
}

/// A held lock; call [`HostLock::release`] (dropping it leaves the lock until it goes stale).
#[derive(Debug)]
#[must_use = "a lock must be released"]
pub struct HostLock {
    client: Client,
    key: CustomFieldKey,
}

impl HostLock {
    /// Removes the lock field (by key).
    pub async fn release(self) -> Result<(), Error> {
        remove_field(&self.client, self.key).await
    }
}

/// Removes a lock field by key; one already removed (by a breaker, or a retried request)
/// counts as removed: the goal is reached.
async fn remove_field(client: &Client, key: CustomFieldKey) -> Result<(), Error> {
    match client.remove_custom_field_def(key).await {
        Ok(()) => Ok(()),
        Err(e) if e.fault().is_some_and(|f| f.type_name == "NotFound") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes the lock of `host`, waiting up to `wait` while someone else holds it.
pub async fn acquire(
    client: &Client,
    host: &HostRef,
    host_name: &str,
    holder: Holder,
    wait: Duration,
) -> Result<HostLock, LockError> {
    let name = format!("{LOCK_PREFIX}{}", host.value());
    let start = Instant::now();
    // When we first saw each unclaimed lock key.
    let mut unclaimed: Vec<(CustomFieldKey, Instant)> = Vec::new();
    let mut pause = Duration::from_millis(50);
    loop {
        match client
            .add_custom_field_def(&name, Some(HostRef::KIND))
            .await
        {
            Ok(def) => {
                let value = serde_json::to_string(&holder).unwrap_or_default();
                if let Err(e) = client
                    .set_custom_value(host.as_moref(), def.key, &value)
                    .await
                {
                    let _ = remove_field(client, def.key).await;
                    return Err(e.into());
                }
                return Ok(HostLock {
                    client: client.clone(),
                    key: def.key,
                });
            }
            Err(e) if matches!(e.fault_kind(), Some(FaultKind::DuplicateName { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        // Held: by whom, since when?
        let Some(def) = client
            .custom_field_defs()
            .await?
            .into_iter()
            .find(|d| d.name == name)
        else {
            continue; // released meanwhile
        };
        let current = client
            .custom_values(host.as_moref())
            .await?
            .get(def.key)
            .and_then(|v| serde_json::from_str::<Holder>(v).ok());
        let stale = match &current {
            Some(h) => parse_time(&h.since).is_none_or(|t| {
                let age = time::OffsetDateTime::now_utc() - t;
                age > time::Duration::try_from(STALE_AFTER).unwrap_or(time::Duration::MAX)
            }),
            None => {
                let seen = match unclaimed.iter().find(|(k, _)| *k == def.key) {
                    Some((_, t)) => *t,
                    None => {
                        unclaimed.push((def.key, Instant::now()));
                        Instant::now()
                    }
                };
                seen.elapsed() > UNCLAIMED_AFTER
            }
        };
        if stale {
            tracing::warn!(host = host_name, holder = ?current, "breaking a stale vmig lock");
            remove_field(client, def.key).await?;
            continue;
        }
        if start.elapsed() >= wait {
            return Err(LockError::Busy {
                host: host_name.to_string(),
                holder: current.map_or_else(
                    || "an unknown vmig".to_string(),
                    |h| format!("{} ({})", h.who, h.what),
                ),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// A holder record for now.
pub fn holder(who: &str, what: &str) -> Holder {
    Holder {
        who: who.to_string(),
        what: what.to_string(),
        since: format_time(time::OffsetDateTime::now_utc()),
    }
}
