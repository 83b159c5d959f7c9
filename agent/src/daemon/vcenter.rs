//! The real [`Sink`]: custom attributes on this host's HostSystem in vCenter, through
//! `vcenter_client`.
//!
//! One session is kept open between publications. Any failure drops it, so the next attempt
//! starts from a fresh connection: after a vCenter restart or a network cut that is what
//! works, and publications are rare enough (on change, and every heartbeat) that reconnecting
//! costs nothing. Every path that drops a logged-in session logs it out first (bounded by
//! [`LOGOUT_TIMEOUT`]): vCenter keeps an abandoned session for 30 minutes, and an agent
//! failing after login every poll (a wrong `[host] uuid`, a missing privilege) would otherwise
//! pile them up to vCenter's session limit. An expired session inside a healthy connection is re-logged in by the client
//! itself on `NotAuthenticated`.
//!
//! Finding the host: `[host] uuid` if set, else the BIOS UUID read from the SMBIOS file
//! (`--bios-uuid-file`, default `/sys/class/dmi/id/product_uuid`) through
//! `SearchIndex.FindByUuid`; then `FindByDnsName` with the host name, then `FindByIp` with the
//! local address that routes to vCenter. Credentials are only sent after the TLS check passed
//! (the client verifies the certificate during the handshake of the first request).
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mig::report::{FIELD_DOCUMENT, FIELD_SUMMARY, HostReport};
use vcenter_client::{
    BiosUuid, Client, ConnectOptions, Credentials, CustomFieldKey, FaultKind, HostProperty,
    HostRef, TlsPolicy,
};

use super::config::{self, TlsMode, VcenterConfig};
use super::publish::{PublishError, Sink, Target};
use super::sys;

/// Where Linux exposes the SMBIOS system UUID. ESXi has no such file that vmig knows of:
/// there, set `[host] uuid`, or rely on the DNS-name / IP fallback.
pub const DEFAULT_BIOS_UUID_FILE: &str = "/sys/class/dmi/id/product_uuid";

/// How long a logout on a failure path may take: the connection may be the thing that failed.
pub const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);

/// Logs `client` out, at most [`LOGOUT_TIMEOUT`]; failures are only logged (the session is
/// dropped either way).
pub async fn logout_quietly(client: &Client, url: &str) {
    match tokio::time::timeout(LOGOUT_TIMEOUT, client.logout()).await {
        Ok(Ok(())) => tracing::debug!(url, "logged out of vCenter after a failure"),
        Ok(Err(e)) => tracing::debug!(url, error = %e, "vCenter logout after a failure failed"),
        Err(_) => tracing::debug!(url, "vCenter logout after a failure timed out"),
    }
}

/// The managed object type the attribute definitions are created for.
const HOST_TYPE: &str = "HostSystem";

/// How this agent identifies its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    /// `[host] uuid`.
    pub uuid_override: Option<String>,
    /// The SMBIOS UUID file consulted when there is no override.
    pub bios_uuid_file: PathBuf,
}

/// An open session with everything a publication needs.
#[derive(Debug)]
struct Session {
    client: Client,
    host: HostRef,
    host_uuid: String,
    label: String,
    document_key: CustomFieldKey,
    summary_key: CustomFieldKey,
}

/// Publishes to vCenter custom attributes.
#[derive(Debug)]
pub struct VcenterSink {
    cfg: VcenterConfig,
    identity: HostIdentity,
    session: Option<Session>,
}

impl VcenterSink {
    pub fn new(cfg: VcenterConfig, identity: HostIdentity) -> Self {
        VcenterSink {
            cfg,
            identity,
            session: None,
        }
    }

    async fn open(&self) -> Result<Session, PublishError> {
        let client = connect(&self.cfg).await?;
        match self.open_with(&client).await {
            Ok((host, host_uuid, label, document_key, summary_key)) => Ok(Session {
                client,
                host,
                host_uuid,
                label,
                document_key,
                summary_key,
            }),
            Err(e) => {
                logout_quietly(&client, &self.cfg.url).await;
                Err(e)
            }
        }
    }

    /// What [`Self::open`] needs after login: the host and the field keys.
    async fn open_with(
        &self,
        client: &Client,
    ) -> Result<(HostRef, String, String, CustomFieldKey, CustomFieldKey), PublishError> {
        let (host, host_uuid, label) = find_host(client, &self.cfg, &self.identity).await?;
        let vc = |e| self.error(e);
        let missing = missing_fields(client).await.map_err(vc)?;
        if !missing.is_empty() && may_manage_fields(client).await == Some(false) {
            return Err(self.fields_missing(&missing));
        }
        let ensure = async |name| match client.ensure_custom_field(name, Some(HOST_TYPE)).await {
            Ok(d) => Ok(d.key),
            // Real vCenter enforces the privilege on the call itself.
            Err(e) if matches!(e.fault_kind(), Some(FaultKind::NoPermission { .. })) => {
                Err(self.fields_missing(&missing))
            }
            Err(e) => Err(self.error(e)),
        };
        let document_key = ensure(FIELD_DOCUMENT).await?;
        let summary_key = ensure(FIELD_SUMMARY).await?;
        tracing::info!(host = %label, uuid = %host_uuid, user = %self.cfg.username, "connected to vCenter {}", self.cfg.url);
        Ok((host, host_uuid, label, document_key, summary_key))
    }

    /// Drops the session after a failure, logging it out first.
    async fn drop_session(&mut self) {
        if let Some(s) = self.session.take() {
            logout_quietly(&s.client, &self.cfg.url).await;
        }
    }

    fn error(&self, e: vcenter_client::Error) -> PublishError {
        map_error(&self.cfg, e)
    }

    fn fields_missing(&self, missing: &[&str]) -> PublishError {
        PublishError::FieldsMissing {
            url: self.cfg.url.clone(),
            username: self.cfg.username.clone(),
            missing: missing.join(", "),
        }
    }
}

/// The privilege creating the attribute definitions takes (`AddCustomFieldDef`).
pub const MANAGE_FIELDS: &str = "Global.ManageCustomFields";
/// The privilege writing the attribute values on the host takes (`SetField`).
pub const SET_FIELD: &str = "Global.SetCustomField";

/// Which of the agent's two attribute definitions (for HostSystem, or global) vCenter lacks.
pub async fn missing_fields(client: &Client) -> Result<Vec<&'static str>, vcenter_client::Error> {
    let defs = client.custom_field_defs().await?;
    Ok([FIELD_DOCUMENT, FIELD_SUMMARY]
        .into_iter()
        .filter(|name| {
            !defs.iter().any(|d| {
                d.name == *name
                    && d.managed_object_type
                        .as_deref()
                        .is_none_or(|t| t == HOST_TYPE)
            })
        })
        .collect())
}

/// Whether this session may create attribute definitions (on the root folder, where vCenter
/// checks global privileges); `None` when vCenter cannot say (the call failed), in which case
/// the creation itself is tried and its fault reported.
pub async fn may_manage_fields(client: &Client) -> Option<bool> {
    let root = client.service_content().root_folder.as_moref().clone();
    match client.has_privileges(&[root], &[MANAGE_FIELDS]).await {
        Ok(grants) => Some(
            grants
                .iter()
                .any(|g| g.privilege == MANAGE_FIELDS && g.granted),
        ),
        Err(e) => {
            tracing::debug!(error = %e, "cannot ask vCenter for the session's privileges");
            None
        }
    }
}

impl Sink for VcenterSink {
    async fn target(&mut self) -> Result<Target, PublishError> {
        if self.session.is_none() {
            self.session = Some(self.open().await?);
        }
        let Some(s) = &self.session else {
            unreachable!("just opened")
        };
        match s.client.custom_values(s.host.as_moref()).await {
            Ok(values) => {
                let published = values.get(s.document_key).and_then(|text| match HostReport::from_json(text) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::warn!(host = %s.label, error = %e, "ignoring the unreadable {FIELD_DOCUMENT} value on the host");
                        None
                    }
                });
                Ok(Target {
                    host_uuid: s.host_uuid.clone(),
                    host_label: s.label.clone(),
                    published,
                })
            }
            Err(e) => {
                self.drop_session().await;
                Err(map_error(&self.cfg, e))
            }
        }
    }

    async fn write(&mut self, document: &str, summary: &str) -> Result<(), PublishError> {
        let Some(s) = &self.session else {
            return Err(PublishError::Vcenter {
                url: self.cfg.url.clone(),
                detail: "no session".into(),
            });
        };
        let entity = s.host.as_moref();
        let mut result = s
            .client
            .set_custom_value(entity, s.document_key, document)
            .await;
        if result.is_ok() {
            result = s
                .client
                .set_custom_value(entity, s.summary_key, summary)
                .await;
        }
        if let Err(e) = result {
            self.drop_session().await;
            return Err(map_error(&self.cfg, e));
        }
        Ok(())
    }

    async fn post_events(
        &mut self,
        events: &[super::events::MigEvent],
    ) -> Result<(), PublishError> {
        let Some(s) = &self.session else {
            return Err(PublishError::Vcenter {
                url: self.cfg.url.clone(),
                detail: "no session".into(),
            });
        };
        let suffix = format!(" ({})", s.host.as_moref().value());
        let name = s.label.strip_suffix(&suffix).unwrap_or(&s.label);
        let now = super::document::rfc3339(std::time::SystemTime::now());
        for e in events {
            let event = vcenter_client::HostEvent {
                host: s.host.as_moref(),
                host_name: name,
                event_type_id: e.kind.type_id(),
                severity: e.kind.severity(),
                message: &e.message,
                created_time: &now,
            };
            s.client
                .post_host_event(&event)
                .await
                .map_err(|err| map_error(&self.cfg, err))?;
        }
        Ok(())
    }

    async fn close(&mut self) {
        if let Some(s) = self.session.take() {
            match s.client.logout().await {
                Ok(()) => tracing::info!(url = %self.cfg.url, "logged out of vCenter"),
                Err(e) => tracing::warn!(url = %self.cfg.url, error = %e, "vCenter logout failed"),
            }
        }
    }
}

/// Open a logged-in session (TLS is checked before the password is sent).
pub async fn connect(cfg: &VcenterConfig) -> Result<Client, PublishError> {
    let password = config::read_password(&cfg.password_file)?;
    let tls = match &cfg.tls {
        TlsMode::SystemRoots => TlsPolicy::SystemRoots,
        TlsMode::CaFile(path) => TlsPolicy::CaFile(path.clone()),
        TlsMode::Thumbprint(t) => {
            TlsPolicy::Thumbprint(t.parse().map_err(|e: vcenter_client::Error| {
                PublishError::Tls {
                    url: cfg.url.clone(),
                    detail: e.to_string(),
                }
            })?)
        }
        TlsMode::Insecure => TlsPolicy::Insecure,
    };
    let mut opts = ConnectOptions::new(
        &cfg.url,
        Credentials::new(&cfg.username, password.expose()),
        tls,
    );
    // A daemon must notice a dead vCenter quickly; its requests are all small.
    opts.connect_timeout = Duration::from_secs(10);
    opts.read_timeout = Duration::from_secs(60);
    Client::connect(opts).await.map_err(|e| map_error(cfg, e))
}

/// Find this host's HostSystem; returns it, its BIOS UUID and a label for logs.
pub async fn find_host(
    client: &Client,
    cfg: &VcenterConfig,
    identity: &HostIdentity,
) -> Result<(HostRef, String, String), PublishError> {
    let vc = |e| map_error(cfg, e);
    let mut tried = Vec::new();
    let mut found = None;
    let uuid = identity
        .uuid_override
        .clone()
        .or_else(|| read_bios_uuid(&identity.bios_uuid_file));
    if let Some(uuid) = &uuid {
        tried.push(format!("BIOS UUID {uuid}"));
        let parsed: BiosUuid =
            uuid.parse()
                .map_err(|e: vcenter_client::Error| PublishError::Vcenter {
                    url: cfg.url.clone(),
                    detail: e.to_string(),
                })?;
        found = client.find_host_by_uuid(&parsed).await.map_err(vc)?;
    }
    // An explicit [host] uuid is never second-guessed by a name or address match.
    if found.is_none() && identity.uuid_override.is_none() {
        if let Some(name) = sys::hostname() {
            tried.push(format!("DNS name {name}"));
            found = client.find_host_by_dns_name(&name).await.map_err(vc)?;
        }
        if found.is_none()
            && let Some(ip) = local_ip_toward(&cfg.url).await
        {
            tried.push(format!("IP {ip}"));
            found = client.find_host_by_ip(ip).await.map_err(vc)?;
        }
    }
    let Some(host) = found else {
        let tried = if tried.is_empty() {
            "nothing: no BIOS UUID, host name or address known".into()
        } else {
            tried.join(", ")
        };
        return Err(PublishError::HostNotFound {
            url: cfg.url.clone(),
            tried,
        });
    };
    let props = client
        .host(&host, &[HostProperty::Name, HostProperty::BiosUuid])
        .await
        .map_err(vc)?;
    let host_uuid = props
        .bios_uuid
        .map(|u| u.as_str().to_ascii_lowercase())
        .or(uuid)
        .unwrap_or_default();
    let label = format!("{} ({})", props.name.unwrap_or_default(), host.value());
    Ok((host, host_uuid, label))
}

/// The SMBIOS UUID from `path`, if readable and well-formed.
pub fn read_bios_uuid(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => match config::parse_uuid(&text) {
            Ok(u) => Some(u),
            Err(m) => {
                tracing::warn!(file = %path.display(), "ignoring BIOS UUID file: {m}");
                None
            }
        },
        Err(e) => {
            tracing::debug!(file = %path.display(), error = %e, "no BIOS UUID from this file");
            None
        }
    }
}

/// The local address the kernel would use to reach vCenter: on an ESXi host, its management
/// VMkernel address. A connected UDP socket sends nothing; it only asks for the route.
async fn local_ip_toward(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, tail) = v6.split_once(']')?;
            (
                h,
                tail.strip_prefix(':')
                    .map_or(Some(443), |p| p.parse().ok())?,
            )
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, 443u16),
        },
    };
    let remote = tokio::net::lookup_host((host, port)).await.ok()?.next()?;
    let bind = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(remote).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Turn a client error into a [`PublishError`] that says what to fix.
pub fn map_error(cfg: &VcenterConfig, e: vcenter_client::Error) -> PublishError {
    use vcenter_client::Error as E;
    let url = cfg.url.clone();
    match &e {
        E::ThumbprintMismatch { .. } | E::Tls { .. } | E::TlsConfig(_) | E::CaFile { .. } => {
            PublishError::Tls {
                url,
                detail: e.to_string(),
            }
        }
        _ if matches!(e.fault_kind(), Some(FaultKind::InvalidLogin)) => PublishError::Login {
            url,
            username: cfg.username.clone(),
            password_file: cfg.password_file.display().to_string(),
            detail: e.to_string(),
        },
        _ => PublishError::Vcenter {
            url,
            detail: e.to_string(),
        },
    }
}
