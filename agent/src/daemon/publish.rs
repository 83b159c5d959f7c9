//! Where the daemon's documents go: a seam ([`Sink`]) between the loop and vCenter.
//!
//! The loop asks the sink for its [`Target`] (session open, host found, attribute definitions
//! present, what is published there now) and then writes the document and summary. The real
//! sink is `vcenter.rs`; tests of the loop use a scripted one.
use mig::report::HostReport;

/// What a sink knows about the HostSystem it writes to, refreshed before every publication.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The host's BIOS UUID (`hardware.systemInfo.uuid`), published as `host_uuid`.
    pub host_uuid: String,
    /// How to name the host in logs (`esx-01.example.com (host-34)`).
    pub host_label: String,
    /// The document currently stored on the host, if any parses.
    pub published: Option<HostReport>,
}

/// Why a publication failed. Every variant is retried with backoff; the message says what an
/// operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot use the password file: {0}")]
    Password(#[from] super::config::ConfigError),
    #[error(
        "vCenter {url} refused the login of `{username}` ({detail}); check [vcenter] username and the password in {password_file}"
    )]
    Login {
        url: String,
        username: String,
        password_file: String,
        detail: String,
    },
    #[error(
        "TLS check of vCenter {url} failed, so no credentials were sent: {detail}; check [vcenter] ca_file / thumbprint"
    )]
    Tls { url: String, detail: String },
    #[error(
        "this host is not in vCenter {url} (tried {tried}); set [host] uuid to the host's BIOS UUID (hardware.systemInfo.uuid in vCenter)"
    )]
    HostNotFound { url: String, tried: String },
    #[error("vCenter {url}: {detail}")]
    Vcenter { url: String, detail: String },
    #[error(
        "vCenter {url}: the custom attribute(s) {missing} are not defined and `{username}` may not \
         create them (privilege Global.ManageCustomFields); run `vmig setup` once as a vCenter \
         administrator: it creates every attribute vmig uses, and the agent then needs only \
         Global.SetCustomField on its host"
    )]
    FieldsMissing {
        url: String,
        username: String,
        missing: String,
    },
}

/// A place documents are published to.
// The daemon runs on a current-thread runtime, so these futures never need to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Sink {
    /// Open a session if needed, find the host, make sure the attribute definitions exist,
    /// and read what is published now.
    async fn target(&mut self) -> Result<Target, PublishError>;

    /// Store the JSON document and the one-line summary on the host found by [`Sink::target`].
    async fn write(&mut self, document: &str, summary: &str) -> Result<(), PublishError>;

    /// Post MIG events on the host found by [`Sink::target`] (`events.rs`). A sink without an
    /// event log accepts and forgets them.
    async fn post_events(
        &mut self,
        events: &[super::events::MigEvent],
    ) -> Result<(), PublishError> {
        let _ = events;
        Ok(())
    }

    /// End the session (logout); errors are only logged.
    async fn close(&mut self);
}
