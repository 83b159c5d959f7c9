//! One consistent read of every vCenter, analysed: the inventories (read concurrently,
//! keeping only the VMs a report uses) and vCenter's clock, joined by `analysis`. The
//! read-only commands (`report`, `capacity`, `plan`, `simulate`, `rightsize`) and
//! `plan --apply`'s re-check start from it.

use crate::analysis::{self, Analysis};
use crate::inventory::{self, Progress, Scope, VmSelection};
use crate::{AdminError, Connection};

/// Reads every vCenter concurrently, keeping only the VMs a report or capacity answer uses.
pub async fn collect_all(
    conns: &[Connection],
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Vec<inventory::VcenterInventory>, AdminError> {
    futures_util::future::join_all(conns.iter().map(|c| {
        inventory::collect_with(
            &c.client,
            &c.target.host,
            scope,
            VmSelection::Report,
            progress,
        )
    }))
    .await
    .into_iter()
    .collect()
}

/// Reads every vCenter in `conns` within `scope` and analyses it at vCenter's current time.
pub async fn analyse(
    conns: &[Connection],
    scope: &Scope,
    progress: &dyn Progress,
) -> Result<Analysis, AdminError> {
    let invs = collect_all(conns, scope, progress).await?;
    let now = crate::connection::vcenter_time(conns).await?;
    Ok(analysis::analyse(invs, now))
}
