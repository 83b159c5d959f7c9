//! One vCenter's watcher: a private update collector over every host and VM, a full read,
//! then `WaitForUpdatesEx` for as long as it works.
//!
//! The full read comes first, then the collector's first answer, newer than the read, is
//! applied to what the read found ([`sync_then_first_answer`]): a change made during the read
//! is in that answer, and one made after it is delivered as an update (applying one twice is
//! harmless). Since the vCenter simulator's collector misses changes made while it collects
//! its first answer, one more full read follows the answer, with the updates flowing beside
//! it (the check read).
//!
//! Any error — `InvalidCollectorVersion`, a lost session or collector after a vCenter
//! restart, a network error — ends the round: the watcher marks the vCenter down, waits
//! (doubling up to a minute) and starts over with a new collector and a full read. The
//! client logs in again by itself on the first `NotAuthenticated`.

use std::time::Duration;

use vcenter_client::{Client, FilterSpec, UpdateCollector, is_invalid_collector_version};

use super::State;
use super::model::{Effect, HOST_PATHS, VM_PATHS, Watched};
use crate::Connection;
use crate::inventory::{self, NoProgress, Scope, VcenterInventory, VmSelection};

/// The longest a `WaitForUpdatesEx` stays open; well under the client's read timeout.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// The longest pause between two failed rounds.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Keeps vCenter `i`'s model current; never returns.
pub async fn watch(conn: &Connection, i: usize, scope: &Scope, state: &State) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let e = round(conn, i, scope, state, &mut backoff).await;
        let why = if is_invalid_collector_version(&e) {
            "the collector's version is no longer valid".to_string()
        } else {
            e.to_string()
        };
        tracing::warn!(vcenter = %conn.target.host, "re-reading the inventory: {why}");
        state.failed(i, why);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A full read, then updates until something fails.
async fn round(
    conn: &Connection,
    i: usize,
    scope: &Scope,
    state: &State,
    backoff: &mut Duration,
) -> vcenter_client::Error {
    let c = &conn.client;
    let (mut uc, view) = match collector(c).await {
        Ok(x) => x,
        Err(e) => return e,
    };
    let outcome: vcenter_client::Result<std::convert::Infallible> = async {
        let read_after = sync_then_first_answer(conn, i, scope, state, &mut uc).await?;
        *backoff = Duration::from_secs(1);
        // The check read: see `sync_then_first_answer`. Updates keep flowing beside it and are
        // applied at once (so a change shows as fast as ever); they are also kept, to be
        // applied again on top of the check's result, which may predate them.
        let check = read(conn, scope);
        tokio::pin!(check);
        let mut during_check = (!read_after).then(Vec::new);
        let mut deferred_resync = false;
        loop {
            let wait = c.wait_for_updates(&mut uc, MAX_WAIT);
            tokio::pin!(wait);
            let set = loop {
                tokio::select! {
                    set = &mut wait => break set?,
                    checked = &mut check, if during_check.is_some() => {
                        let (inv, now) = checked?;
                        let since = during_check.take().unwrap_or_default();
                        let effect = state.replace_then_apply(i, inv, now, &since);
                        tracing::info!(
                            vcenter = %conn.target.host,
                            "check read: {} update set(s) applied again, {effect:?}",
                            since.len()
                        );
                        if effect == Effect::Resync || deferred_resync {
                            sync(conn, i, scope, state).await?;
                        }
                    }
                }
            };
            let Some(set) = set else { continue };
            let effect = state.apply(i, &set);
            match &mut during_check {
                // Kept to be applied again on the check read's result; a full read this
                // update asks for waits until then (the check read may already hold it).
                Some(kept) => {
                    deferred_resync |= effect == Effect::Resync;
                    kept.push(set);
                }
                None if effect == Effect::Resync => sync(conn, i, scope, state).await?,
                None => {}
            }
        }
    }
    .await;
    // Best effort: both are gone anyway if the session is.
    let _ = c.destroy_update_collector(&uc).await;
    let _ = c.destroy_view(&view).await;
    match outcome {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

/// The full read, then the collector's first answer applied to it; whether a full read was
/// made after the answer (then no check read is needed).
///
/// The first snapshot is made from the read as soon as it ends: it is what `vmig report`
/// would show then, and the read has vCenter to itself (made beside the answer, both were
/// slower, docs/performance.md). The first answer (`WaitForUpdatesEx` from no version) is the
/// whole filtered set as it is when asked, so newer than the read: its objects are kept in a
/// compact form ([`Watched`]: kept as parsed XML the answer took over 200 MB at 40,000 VMs)
/// and applied to the model when it is complete ([`State::reconcile`]), and every later
/// change comes as an update from its version on. vCenter may split the answer
/// (`truncated`; the rest follows at once, still as `enter`): every part is kept.
///
/// The vCenter simulator (govmomi 0.24) starts tracking changes only after it has collected
/// the first answer, object by object, so a change made while it collects may be in neither
/// the answer nor a later update. So the caller makes one more full read once the answer is
/// in (the check read, beside the updates): one more read at start, and on the simulator
/// updates delivered during it come later, since it is busy serving it.
async fn sync_then_first_answer(
    conn: &Connection,
    i: usize,
    scope: &Scope,
    state: &State,
    uc: &mut UpdateCollector,
) -> vcenter_client::Result<bool> {
    let c = &conn.client;
    let answer = async {
        let began = std::time::Instant::now();
        let mut objects = Vec::new();
        let mut parts = 0;
        while let Some(read) = c
            .wait_for_updates_each(uc, Duration::ZERO, |object| {
                objects.push(Watched::of(&object));
            })
            .await?
        {
            parts += 1;
            if !read.truncated {
                break;
            }
        }
        tracing::info!(
            vcenter = %conn.target.host,
            "the collector's first answer: {} objects in {parts} part(s), {} ms",
            objects.len(),
            began.elapsed().as_millis()
        );
        vcenter_client::Result::Ok(objects)
    };
    sync(conn, i, scope, state).await?;
    let answer = answer.await?;
    if state.reconcile(i, &answer) == Effect::Resync {
        sync(conn, i, scope, state).await?;
        return Ok(true);
    }
    Ok(false)
}

async fn collector(
    c: &Client,
) -> vcenter_client::Result<(UpdateCollector, vcenter_client::ContainerViewRef)> {
    let root = c.service_content().root_folder.as_moref().clone();
    let view = c
        .create_container_view(&root, &["HostSystem", "VirtualMachine"], true)
        .await?;
    let spec = FilterSpec::container_view_types(
        &view,
        &[("HostSystem", HOST_PATHS), ("VirtualMachine", VM_PATHS)],
    );
    match c.create_update_collector(&spec).await {
        Ok(uc) => Ok((uc, view)),
        Err(e) => {
            let _ = c.destroy_view(&view).await;
            Err(e)
        }
    }
}

/// Reads vCenter `i` in full and replaces its model.
async fn sync(
    conn: &Connection,
    i: usize,
    scope: &Scope,
    state: &State,
) -> Result<(), vcenter_client::Error> {
    let (inv, now) = read(conn, scope).await?;
    state.replace(i, inv, now);
    tracing::info!(vcenter = %conn.target.host, "inventory read");
    Ok(())
}

/// The inventory as `vmig report` reads it, and vCenter's clock just after.
async fn read(
    conn: &Connection,
    scope: &Scope,
) -> Result<(VcenterInventory, time::OffsetDateTime), vcenter_client::Error> {
    let host = &conn.target.host;
    let inv = inventory::collect_with(&conn.client, host, scope, VmSelection::Report, &NoProgress)
        .await
        .map_err(|e| match e {
            crate::AdminError::Vcenter { source, .. } => source,
            other => vcenter_client::Error::NotFound(other.to_string()),
        })?;
    let now = crate::times::vcenter_now(&conn.client).await?;
    Ok((inv, now))
}
