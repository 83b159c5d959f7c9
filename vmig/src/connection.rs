//! Logging in to every vCenter a command names, concurrently.

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
