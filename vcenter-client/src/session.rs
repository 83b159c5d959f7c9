//! The session calls on [`Client`]: `Logout`, `SessionIsActive`, `TerminateSession`,
//! `CurrentTime` (the keep-alive). Credentials and `Login` are in `credentials`.

use crate::client::Client;
use crate::credentials::UserSession;
use crate::error::Result;
use crate::moref::{MoRef, SessionKey};
use crate::soap::decode::Node;
use crate::soap::encode::Request;

impl Client {
    /// `SessionManager.SessionIsActive`: whether `key` is a live session of
    /// `user`. Privilege `Sessions.ValidateSession`; ESXi answers `NotImplemented`.
    pub async fn session_is_active(&self, key: &SessionKey, user: &str) -> Result<bool> {
        let mut r = Request::new("SessionIsActive", &self.service_content().session_manager);
        r.text("sessionID", &key.0)?;
        r.text("userName", user)?;
        let resp = self.invoke("SessionIsActive", r.finish()).await?;
        resp.child("returnval")
            .map(Node::parse_bool)
            .transpose()
            .map(|b| b.unwrap_or(false))
    }

    /// `SessionManager.TerminateSession` for other sessions (not this one).
    /// Privilege `Sessions.TerminateSession`.
    pub async fn terminate_sessions(&self, keys: &[SessionKey]) -> Result<()> {
        let mut r = Request::new("TerminateSession", &self.service_content().session_manager);
        for k in keys {
            r.text("sessionId", &k.0)?;
        }
        self.invoke("TerminateSession", r.finish()).await.map(drop)
    }

    /// `ServiceInstance.CurrentTime`: the cheapest authenticated round trip,
    /// used as a keep-alive (it re-logs in if the session had expired).
    /// Returns the server's xsd:dateTime text.
    pub async fn current_time(&self) -> Result<String> {
        let r = Request::new(
            "CurrentTime",
            &MoRef::new("ServiceInstance", "ServiceInstance"),
        );
        let resp = self.invoke("CurrentTime", r.finish()).await?;
        resp.child_string("returnval")
            .ok_or_else(|| resp.bad("CurrentTime returnval"))
    }

    /// `SessionManager.Logout`. Later calls fail with `NotAuthenticated`
    /// instead of logging in again.
    pub async fn logout(&self) -> Result<()> {
        self.inner
            .logged_out
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let r = Request::new("Logout", &self.service_content().session_manager);
        let out = self.call_once("Logout", r.finish()).await.map(drop);
        self.inner.transport.clear_cookie();
        out
    }

    /// The session from the most recent (re-)login.
    pub fn session(&self) -> Option<UserSession> {
        self.inner.session.read().ok().and_then(|s| s.clone())
    }
}
