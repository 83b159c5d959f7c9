//! Logging in to every vCenter a command names, concurrently, and out again: vCenter keeps
//! an abandoned session for 30 minutes and limits how many it holds, so every session vmig
//! opens is logged out when the command ends, failed or not, and when another vCenter's
//! login fails.

use std::time::Duration;

use crate::AdminError;

/// A logged-in vCenter and how it was reached.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The resolved settings.
    pub target: crate::connect_opts::Target,
    /// The session.
    pub client: vcenter_client::Client,
}

/// Connects to every target concurrently; the first failure is returned.
pub async fn connect_all(
    targets: Vec<crate::connect_opts::Target>,
) -> Result<Vec<Connection>, AdminError> {
    let attempts = futures_util::future::join_all(targets.into_iter().map(|target| async move {
        match vcenter_client::Client::connect(target.connect_options()).await {
            Ok(client) => Ok(Connection { target, client }),
            Err(source) => Err(AdminError::Vcenter {
                vcenter: target.host.clone(),
                source,
            }),
        }
    }))
    .await;
    if attempts.iter().any(Result::is_err) {
        let opened: Vec<Connection> = attempts
            .iter()
            .filter_map(|a| a.as_ref().ok().cloned())
            .collect();
        logout_all(&opened).await;
    }
    attempts.into_iter().collect()
}

/// vCenter's current time (the first connection's): what analyses, locks, reservations and
/// expiries are judged by, never the workstation's clock.
pub async fn vcenter_time(conns: &[Connection]) -> Result<time::OffsetDateTime, AdminError> {
    let Some(c) = conns.first() else {
        return Ok(time::OffsetDateTime::now_utc());
    };
    crate::times::vcenter_now(&c.client)
        .await
        .map_err(|source| AdminError::Vcenter {
            vcenter: c.target.host.clone(),
            source,
        })
}

/// How long logging out of one vCenter may take at the end of a command.
pub const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs out of every connection concurrently, each within [`LOGOUT_TIMEOUT`]; failures only
/// matter to vCenter's session count, so they are ignored.
pub async fn logout_all(conns: &[Connection]) {
    futures_util::future::join_all(conns.iter().map(|c| async move {
        let _ = tokio::time::timeout(LOGOUT_TIMEOUT, c.client.logout()).await;
    }))
    .await;
}
