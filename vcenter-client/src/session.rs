//! Login sessions: credentials, `Login`, `Logout`, `SessionIsActive`,
//! `TerminateSession`, `CurrentTime`.
//!
//! The password lives in [`Password`], whose `Debug` and `Display` never
//! print it, so credentials can sit in structs that get logged. The client
//! re-logs in once, transparently, when a call faults with
//! `NotAuthenticated` (vCenter expires idle sessions after 30 minutes).

use std::fmt;

use serde::Serialize;

use crate::client::Client;
use crate::error::Result;
use crate::moref::{MoRef, SessionKey};
use crate::soap::decode::Node;
use crate::soap::encode::Request;

/// A password that never appears in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Self(p.into())
    }

    /// The secret itself; only the `Login` request should call this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A user name and password for `SessionManager.Login`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: Password,
}

impl Credentials {
    /// Builds credentials, e.g. `Credentials::new("svc-vmig@vsphere.local", pw)`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: Password::new(password),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password (redacted when printed).
    pub fn password(&self) -> &Password {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (password ***)", self.user)
    }
}

/// The `UserSession` returned by `Login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSession {
    /// Session key, for `SessionIsActive` / `TerminateSession`.
    pub key: SessionKey,
    /// The logged-in user.
    pub user_name: String,
    /// Full name, if the directory has one.
    pub full_name: Option<String>,
    /// Login time (xsd:dateTime text).
    pub login_time: Option<String>,
}

impl UserSession {
    pub(crate) fn from_node(n: &Node) -> Result<Self> {
        Ok(UserSession {
            key: SessionKey(
                n.child_string("key")
                    .ok_or_else(|| n.bad("a UserSession with a key"))?,
            ),
            user_name: n.child_string("userName").unwrap_or_default(),
            full_name: n.child_string("fullName").filter(|s| !s.is_empty()),
            login_time: n.child_string("loginTime"),
        })
    }
}

pub(crate) fn login_request(session_manager: &MoRef, creds: &Credentials) -> Result<String> {
    let mut r = Request::new("Login", session_manager);
    r.text("userName", creds.user())?;
    r.text("password", creds.password().expose())?;
    Ok(r.finish())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_never_printed() {
        let c = Credentials::new("administrator@vsphere.local", "s3cr3t-P@ss");
        let dbg = format!("{c:?}");
        let disp = format!("{c}");
        for s in [&dbg, &disp] {
            assert!(!s.contains("s3cr3t"), "{s}");
            assert!(s.contains("administrator@vsphere.local"), "{s}");
        }
        assert_eq!(c.password().expose(), "s3cr3t-P@ss");
        assert_eq!(format!("{}", c.password()), "***");
    }

    #[test]
    fn login_request_escapes_password() {
        let r = login_request(
            &MoRef::new("SessionManager", "SessionManager"),
            &Credentials::new("u", "a<b&c"),
        )
        .unwrap();
        assert!(
            r.contains("<userName>u</userName><password>a&lt;b&amp;c</password></Login>"),
            "{r}"
        );
    }
}
