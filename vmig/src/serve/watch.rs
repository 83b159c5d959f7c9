//! One vCenter's watcher: a private update collector over every host and VM, a full read,
//! then `WaitForUpdatesEx` for as long as it works.
//!
//! The collector is created *before* the full read, so a change made while the inventory is
//! being read is also delivered as an update afterwards (applying it twice is harmless).
//! Any error — `InvalidCollectorVersion`, a lost session or collector after a vCenter
//! restart, a network error — ends the round: the watcher marks the vCenter down, waits
//! (doubling up to a minute) and starts over with a new collector and a full read. The
//! client logs in again by itself on the first `NotAuthenticated`.

use std::time::Duration;

use vcenter_client::{Client, FilterSpec, UpdateCollector, is_invalid_collector_version};

use super::State;
use super::model::{Effect, HOST_PATHS, VM_PATHS};
use crate::Connection;
use crate::inventory::{self, NoProgress, Scope, VmSelection};

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
        first_answer_and_sync(conn, i, scope, state, &mut uc).await?;
        *backoff = Duration::from_secs(1);
        loop {
            let Some(set) = c.wait_for_updates(&mut uc, MAX_WAIT).await? else {
                continue;
            };
            if state.apply(i, &set) == Effect::Resync {
                sync(conn, i, scope, state).await?;
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

/// The collector's first answer, overlapped with the full read.
///
/// The first answer is the whole filtered set; the inventory reader reads it (and the device
/// lists the filter leaves out) its own way, so the answer's objects are read one by one and
/// dropped: kept whole, it took over 200 MB at 40,000 VMs. The full read starts as soon as
/// the answer's first object arrives: vCenter has then taken the answer's snapshot, so what
/// the read sees is that state or newer, and every change after the snapshot comes as an
/// update later (applied twice at worst, which is harmless). Waiting for the whole answer
/// first cost 1.5–3.6 s of the initial sync at 2,500 hosts (docs/performance.md). vCenter may
/// split the answer (`truncated`: the rest follows, still as `enter`); a change delivered in
/// a later part would be lost to a read that began before it, so a split answer is followed
/// by a second full read.
async fn first_answer_and_sync(
    conn: &Connection,
    i: usize,
    scope: &Scope,
    state: &State,
    uc: &mut UpdateCollector,
) -> vcenter_client::Result<()> {
    let c = &conn.client;
    let began = std::time::Instant::now();
    let (arrived, arriving) = tokio::sync::oneshot::channel::<()>();
    let mut arrived = Some(arrived);
    let mut first_at = None;
    let answer = async {
        let (mut objects, mut parts) = (0, 0);
        while let Some(read) = c
            .wait_for_updates_each(uc, Duration::ZERO, |object| {
                if let Some(tx) = arrived.take() {
                    first_at = Some(began.elapsed());
                    let _ = tx.send(());
                }
                drop(object);
            })
            .await?
        {
            objects += read.objects;
            parts += 1;
            if !read.truncated {
                break;
            }
        }
        // An empty answer (no host, no VM) has no first object.
        if let Some(tx) = arrived.take() {
            let _ = tx.send(());
        }
        tracing::info!(
            vcenter = %conn.target.host,
            "the collector's first answer: {objects} objects in {parts} part(s), {} ms (the first after {} ms)",
            began.elapsed().as_millis(),
            first_at.unwrap_or_default().as_millis()
        );
        vcenter_client::Result::Ok(parts)
    };
    let read = async {
        // The sender is dropped unsent only when the answer failed: its error ends the round.
        match arriving.await {
            Ok(()) => sync(conn, i, scope, state).await,
            Err(_) => Ok(()),
        }
    };
    let (parts, read) = tokio::join!(answer, read);
    let parts = parts?;
    read?;
    if parts > 1 {
        sync(conn, i, scope, state).await?;
    }
    Ok(())
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

async fn sync(
    conn: &Connection,
    i: usize,
    scope: &Scope,
    state: &State,
) -> Result<(), vcenter_client::Error> {
    let host = &conn.target.host;
    let inv = inventory::collect_with(&conn.client, host, scope, VmSelection::Report, &NoProgress)
        .await
        .map_err(|e| match e {
            crate::AdminError::Vcenter { source, .. } => source,
            other => vcenter_client::Error::NotFound(other.to_string()),
        })?;
    let now = crate::times::vcenter_now(&conn.client).await?;
    state.replace(i, inv, now);
    tracing::info!(vcenter = %host, "inventory read");
    Ok(())
}
