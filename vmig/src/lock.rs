//! Mutual exclusion built on the one atomic create-if-absent vCenter offers to API clients
//! without extra installs: `CustomFieldsManager.AddCustomFieldDef` fails with `DuplicateName`
//! when a field of that name exists (vCenter checks and adds under one lock).
//!
//! Two kinds of lock, always taken in this order (a fixed order cannot deadlock):
//! - the **VM lock** `vmig.lock.vm.<vm-id>` (type VirtualMachine), held for a whole
//!   `assign`/`unassign`/`repair` of that VM, so one VM is changed by one vmig at a time;
//! - the **host lock** `vmig.lock.<host-id>` (type HostSystem), held only around "re-check
//!   capacity, write the reservation", so one slice is booked once.
//!
//! Taking a lock: create the field; `DuplicateName` → someone holds it: wait and retry (up to
//! a deadline); then write the holder (`who`, `what`, `since`) as the field's value on the
//! object, so others can name the holder. Releasing: remove the field definition **by key**.
//!
//! **Fencing token.** vCenter hands out custom-field keys from one increasing counter and
//! never reuses one, so the key of the lock field is a fencing token: a lock broken and taken
//! again has a higher key. A holder checks [`Lock::check`] (the field still exists with its
//! key) just before every write it makes under the lock, and the reservation records the
//! host lock's key, so readers can tell a late write by a broken holder from the write of
//! the holder that broke it (higher token wins; see `reservation::apply`).
//!
//! **Time is vCenter's.** `since` and `renewed` are written in vCenter's time
//! (`ServiceInstance.CurrentTime`) and a breaker judges them by vCenter's current time, so
//! an admin workstation whose clock is wrong neither breaks a live lock nor keeps a dead one.
//! A lock is stale when its last `renewed` (or `since`) is more than [`stale_after`] old by
//! vCenter's clock. A lock whose value cannot be read (none yet, or unparseable) is stale
//! only after it was seen unchanged for that long, again by vCenter's clock.
//! Privilege: `Global.ManageCustomFields`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use vcenter_client::{Client, CustomFieldKey, Error, FaultKind, HostRef, MoRef, VmRef};

use crate::times::{format_time, parse_time, vcenter_now};

/// A held lock not renewed for this long (by vCenter's clock) is presumed dead and broken.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// Name prefix of lock fields.
pub const LOCK_PREFIX: &str = "vmig.lock.";
/// Name prefix of VM lock fields.
pub const VM_LOCK_PREFIX: &str = "vmig.lock.vm.";
/// Override of [`STALE_AFTER`] in seconds (docs/admin-guide.md; the tests use 2 s).
pub const STALE_ENV: &str = "VMIG_LOCK_STALE_S";

/// The stale period: [`STALE_AFTER`], or the test override from [`STALE_ENV`].
pub fn stale_after() -> Duration {
    std::env::var(STALE_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(STALE_AFTER, Duration::from_secs)
}

/// Who holds a lock (the lock field's value on the object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@client-host`, free text.
    pub who: String,
    /// What it is doing, e.g. `assign VM web-01`.
    pub what: String,
    /// RFC 3339 vCenter time the lock was taken.
    pub since: String,
    /// RFC 3339 vCenter time the holder last said it is alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<String>,
}

impl Holder {
    /// The last time the holder was known alive.
    fn alive_at(&self) -> Option<OffsetDateTime> {
        parse_time(self.renewed.as_deref().unwrap_or(&self.since))
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.who, self.what)
    }
}

/// What is locked.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A host (booking its slices).
    Host(&'a HostRef),
    /// A VM (changing it).
    Vm(&'a VmRef),
    /// A cluster (`vmig rollout`: one rollout per cluster at a time, so `--max-unavailable`
    /// holds across admins). Named `vmig.lock.<cluster-id>` (`domain-c…`, never a host id).
    Cluster(&'a vcenter_client::ClusterRef),
}

impl Target<'_> {
    fn field_name(&self) -> String {
        match self {
            Target::Host(h) => format!("{LOCK_PREFIX}{}", h.value()),
            Target::Vm(v) => format!("{VM_LOCK_PREFIX}{}", v.value()),
            Target::Cluster(c) => format!("{LOCK_PREFIX}{}", c.value()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Target::Host(_) => HostRef::KIND,
            Target::Vm(_) => VmRef::KIND,
            Target::Cluster(_) => vcenter_client::ClusterRef::KIND,
        }
    }

    fn entity(&self) -> MoRef {
        match self {
            Target::Host(h) => h.as_moref().clone(),
            Target::Vm(v) => v.as_moref().clone(),
            Target::Cluster(c) => c.as_moref().clone(),
        }
    }
}

/// Why the lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else held it for the whole wait.
    #[error("{what} is locked by {holder} for another vmig change; try again shortly")]
    Busy {
        /// `host H1` or `VM web-01`.
        what: String,
        /// Who holds it, as far as known.
        holder: String,
    },
    /// The lock was broken while this vmig held it (it stalled past the stale time).
    #[error(
        "the lock on {what} was broken by {by} while this vmig was stalled; nothing was written"
    )]
    Lost {
        /// `host H1` or `VM web-01`.
        what: String,
        /// Who broke it, as far as known.
        by: String,
    },
    /// vCenter refused.
    #[error(transparent)]
    Vcenter(#[from] Error),
}

/// A held lock; call [`Lock::release`] (dropping it leaves the lock until it goes stale).
#[derive(Debug)]
#[must_use = "a lock must be released"]
pub struct Lock {
    client: Client,
    name: String,
    entity: MoRef,
    key: CustomFieldKey,
    what: String,
    holder: Holder,
    renewed_at: Instant,
}

impl Lock {
    /// The fencing token: the lock field's key, higher for every later lock.
    pub fn token(&self) -> i64 {
        i64::from(self.key.0)
    }

    /// `host H1` or `VM web-01`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether this lock still exists (nobody broke it); call just before each write made
    /// under it. [`LockError::Lost`] names who broke it when a new holder is known.
    pub async fn check(&self) -> Result<(), LockError> {
        let defs = self.client.custom_field_defs().await?;
        if defs
            .iter()
            .any(|d| d.name == self.name && d.key == self.key)
        {
            return Ok(());
        }
        let by = match defs.iter().find(|d| d.name == self.name) {
            Some(d) => self
                .client
                .custom_values(&self.entity)
                .await
                .ok()
                .and_then(|v| v.get(d.key).map(str::to_string))
                .and_then(|v| serde_json::from_str::<Holder>(&v).ok())
                .map_or_else(|| "another vmig".to_string(), |h| h.describe()),
            None => "another vmig".to_string(),
        };
        Err(LockError::Lost {
            what: self.what.clone(),
            by,
        })
    }

    /// Says "still alive" (vCenter time) when the last renewal is a quarter of the stale
    /// period old; cheap to call often. A lock already broken is reported as lost.
    pub async fn renew_if_due(&mut self) -> Result<(), LockError> {
        if self.renewed_at.elapsed() < stale_after() / 4 {
            return Ok(());
        }
        self.check().await?;
        let now = vcenter_now(&self.client).await?;
        self.holder.renewed = Some(format_time(now));
        let value = serde_json::to_string(&self.holder).unwrap_or_default();
        self.client
            .set_custom_value(&self.entity, self.key, &value)
            .await?;
        self.renewed_at = Instant::now();
        Ok(())
    }

    /// Removes the lock field (by key, so a newer holder's lock is never removed).
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

/// Takes the lock of `target` (named `what` in messages, e.g. `host H1`), waiting up to
/// `wait` while someone else holds it and breaking it when it is stale by vCenter's clock.
pub async fn acquire(
    client: &Client,
    target: Target<'_>,
    what: &str,
    who: &str,
    doing: &str,
    wait: Duration,
) -> Result<Lock, LockError> {
    let name = target.field_name();
    let entity = target.entity();
    let stale = time::Duration::try_from(stale_after()).unwrap_or(time::Duration::MAX);
    let start = Instant::now();
    // Locks whose value could not be read: (key, value as seen, vCenter time first seen).
    let mut unreadable: Vec<(CustomFieldKey, Option<String>, OffsetDateTime)> = Vec::new();
    let mut pause = Duration::from_millis(50);
    loop {
        match client
            .add_custom_field_def(&name, Some(target.kind()))
            .await
        {
            Ok(def) => {
                return claim(client, def.key, name, entity, what, who, doing).await;
            }
            Err(e) if matches!(e.fault_kind(), Some(FaultKind::DuplicateName { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        // Held: by whom, alive when?
        let Some(def) = client
            .custom_field_defs()
            .await?
            .into_iter()
            .find(|d| d.name == name)
        else {
            continue; // released meanwhile
        };
        let raw = client
            .custom_values(&entity)
            .await?
            .get(def.key)
            .map(str::to_string);
        let current = raw
            .as_deref()
            .and_then(|v| serde_json::from_str::<Holder>(v).ok());
        let now = vcenter_now(client).await?;
        let is_stale = match current.as_ref().and_then(Holder::alive_at) {
            Some(t) => now - t > stale,
            None => {
                // No readable time: stale once seen unchanged for the whole stale period.
                let first = match unreadable
                    .iter()
                    .find(|(k, v, _)| *k == def.key && *v == raw)
                {
                    Some((_, _, t)) => *t,
                    None => {
                        unreadable.push((def.key, raw.clone(), now));
                        now
                    }
                };
                now - first > stale
            }
        };
        if is_stale {
            tracing::warn!(
                lock = %name,
                holder = current.as_ref().map_or_else(|| "unknown".to_string(), Holder::describe),
                "breaking a stale vmig lock (not renewed within {}s by vCenter's clock)",
                stale.whole_seconds()
            );
            remove_field(client, def.key).await?;
            continue;
        }
        // Ctrl-C while waiting: give up now (nothing was written yet).
        if start.elapsed() >= wait || crate::interrupt::interrupted() {
            return Err(LockError::Busy {
                what: what.to_string(),
                holder: current.map_or_else(|| "an unknown vmig".to_string(), |h| h.describe()),
            });
        }
        tracing::info!(lock = %name, "waiting for another vmig's lock");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// Writes the holder record on a freshly created lock field.
async fn claim(
    client: &Client,
    key: CustomFieldKey,
    name: String,
    entity: MoRef,
    what: &str,
    who: &str,
    doing: &str,
) -> Result<Lock, LockError> {
    let written = async {
        let now = vcenter_now(client).await?;
        let holder = Holder {
            who: who.to_string(),
            what: doing.to_string(),
            since: format_time(now),
            renewed: None,
        };
        let value = serde_json::to_string(&holder).unwrap_or_default();
        client.set_custom_value(&entity, key, &value).await?;
        Ok::<_, Error>(holder)
    }
    .await;
    match written {
        Ok(holder) => Ok(Lock {
            client: client.clone(),
            name,
            entity,
            key,
            what: what.to_string(),
            holder,
            renewed_at: Instant::now(),
        }),
        Err(e) => {
            let _ = remove_field(client, key).await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_alive_at_its_last_renewal() {
        let mut h = Holder {
            who: "a@vc".into(),
            what: "assign".into(),
            since: "2026-01-01T00:00:00Z".into(),
            renewed: None,
        };
        assert_eq!(h.alive_at(), parse_time("2026-01-01T00:00:00Z"));
        h.renewed = Some("2026-01-01T00:01:30Z".into());
        assert_eq!(h.alive_at(), parse_time("2026-01-01T00:01:30Z"));
        h.renewed = Some("garbage".into());
        assert_eq!(
            h.alive_at(),
            None,
            "unreadable: judged by observation instead"
        );
        // Older holders without `renewed` still parse.
        let old: Holder =
            serde_json::from_str(r#"{"who":"a","what":"b","since":"2026-01-01T00:00:00Z"}"#)
                .unwrap();
        assert!(old.renewed.is_none());
    }
}
