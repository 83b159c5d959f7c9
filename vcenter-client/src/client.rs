//! The [`Client`]: connection setup, `RetrieveServiceContent`, login, and the
//! one place where calls are sent and retried after a session expiry.
//!
//! A `Client` is an `Arc` around shared state, so clones are cheap and all of
//! them share one HTTP connection pool and one session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::credentials::{Credentials, UserSession, login_request};
use crate::error::{Error, Result};
use crate::moref::{FolderRef, MoRef};
use crate::soap::decode::{self, Mode, Node};
use crate::soap::encode::Request;
use crate::tls::TlsPolicy;
use crate::transport::{Timeouts, Transport};
use crate::version::{self, ApiVersion};

/// How to reach and log in to a vCenter.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// `https://vcenter.example.com` or `…/sdk` (`http://` only for simulators).
    pub url: String,
    /// User and password for `SessionManager.Login`.
    pub credentials: Credentials,
    /// How to trust the server certificate.
    pub tls: TlsPolicy,
    /// Speak this API version instead of negotiating one.
    pub api_version: Option<ApiVersion>,
    /// TCP connect timeout (default 30 s).
    pub connect_timeout: Duration,
    /// Longest silence while reading a response (default 300 s: a full
    /// inventory page can take a while to produce).
    pub read_timeout: Duration,
}

impl ConnectOptions {
    /// Options with default timeouts and a negotiated API version.
    pub fn new(url: impl Into<String>, credentials: Credentials, tls: TlsPolicy) -> Self {
        Self {
            url: url.into(),
            credentials,
            tls,
            api_version: None,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
        }
    }
}

/// `AboutInfo` from the service content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AboutInfo {
    /// Product name, e.g. `VMware vCenter Server`.
    pub name: String,
    /// Full product name with version and build.
    pub full_name: String,
    /// Product version, e.g. `8.0.3`.
    pub version: String,
    /// Build number.
    pub build: String,
    /// `VirtualCenter` or `HostAgent` (ESXi).
    pub api_type: String,
    /// The newest API version the server implements.
    pub api_version: String,
    /// vCenter instance UUID (absent on ESXi).
    pub instance_uuid: Option<String>,
}

/// The `ServiceContent` managers vmig uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceContent {
    /// The inventory root folder.
    pub root_folder: FolderRef,
    /// The default `PropertyCollector`.
    pub property_collector: MoRef,
    /// `ViewManager` (absent on very old servers).
    pub view_manager: Option<MoRef>,
    /// `SessionManager`.
    pub session_manager: MoRef,
    /// `SearchIndex`.
    pub search_index: MoRef,
    /// `CustomFieldsManager` (vCenter only).
    pub custom_fields_manager: Option<MoRef>,
    /// `TaskManager`.
    pub task_manager: Option<MoRef>,
    /// `OptionManager` of the server's advanced settings (`setting`).
    pub setting: Option<MoRef>,
    /// `AuthorizationManager` (roles, permissions, privilege checks).
    pub authorization_manager: Option<MoRef>,
    /// `EventManager` (events: `post_host_event`, `host_events`).
    pub event_manager: Option<MoRef>,
    /// Product and API information.
    pub about: AboutInfo,
}

impl ServiceContent {
    pub(crate) fn from_node(n: &Node) -> Result<Self> {
        let req = |name: &str| -> Result<MoRef> {
            n.child(name)
                .ok_or_else(|| Error::Decode {
                    context: "ServiceContent".into(),
                    detail: format!("missing <{name}>"),
                })?
                .to_moref()
        };
        let opt = |name: &str| n.child(name).and_then(|c| c.to_moref().ok());
        let about = n.child("about").ok_or_else(|| Error::Decode {
            context: "ServiceContent".into(),
            detail: "missing <about>".into(),
        })?;
        let s = |name: &str| about.child_string(name).unwrap_or_default();
        let root = req("rootFolder")?;
        Ok(ServiceContent {
            root_folder: FolderRef::try_from(root).map_err(|e| Error::Decode {
                context: "ServiceContent.rootFolder".into(),
                detail: e.to_string(),
            })?,
            property_collector: req("propertyCollector")?,
            view_manager: opt("viewManager"),
            session_manager: req("sessionManager")?,
            search_index: req("searchIndex")?,
            custom_fields_manager: opt("customFieldsManager"),
            task_manager: opt("taskManager"),
            setting: opt("setting"),
            authorization_manager: opt("authorizationManager"),
            event_manager: opt("eventManager"),
            about: AboutInfo {
                name: s("name"),
                full_name: s("fullName"),
                version: s("version"),
                build: s("build"),
                api_type: s("apiType"),
                api_version: s("apiVersion"),
                instance_uuid: about.child_string("instanceUuid"),
            },
        })
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) transport: Transport,
    credentials: Credentials,
    service: ServiceContent,
    login_lock: tokio::sync::Mutex<()>,
    pub(crate) session: RwLock<Option<UserSession>>,
    pub(crate) logged_out: AtomicBool,
}

/// A logged-in vim25 client. Cheap to clone; clones share the connection
/// pool and the session.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl Client {
    /// Connects: negotiates the API version from `/sdk/vimServiceVersions.xml`
    /// (falling back to `about.apiVersion`), reads the service content and
    /// logs in. A wrong password is [`crate::FaultKind::InvalidLogin`]; a
    /// certificate problem is [`Error::Tls`] or [`Error::ThumbprintMismatch`].
    pub async fn connect(opts: ConnectOptions) -> Result<Client> {
        let transport = Transport::new(
            &opts.url,
            opts.tls.clone(),
            Timeouts {
                connect: opts.connect_timeout,
                read: opts.read_timeout,
            },
        )?;
        let mut negotiated = false;
        if let Some(v) = &opts.api_version {
            transport.set_version(v.clone());
            negotiated = true;
        } else if let Some(doc) = transport.service_versions().await?
            && let Some(v) = version::negotiate(&doc)
        {
            transport.set_version(v);
            negotiated = true;
        }
        let r = Request::new(
            "RetrieveServiceContent",
            &MoRef::new("ServiceInstance", "ServiceInstance"),
        );
        let resp = call_whole(&transport, "RetrieveServiceContent", r.finish()).await?;
        let sc = ServiceContent::from_node(
            resp.child("returnval")
                .ok_or_else(|| resp.bad("RetrieveServiceContent returnval"))?,
        )?;
        if !negotiated && let Ok(v) = sc.about.api_version.parse::<ApiVersion>() {
            transport.set_version(v.capped());
        }
        tracing::debug!(url = %transport.url(), version = %transport.version(), "connected");
        let client = Client {
            inner: Arc::new(Inner {
                transport,
                credentials: opts.credentials,
                service: sc,
                login_lock: tokio::sync::Mutex::new(()),
                session: RwLock::new(None),
                logged_out: AtomicBool::new(false),
            }),
        };
        client.login().await?;
        Ok(client)
    }

    /// The server's service content (managers and `about`).
    pub fn service_content(&self) -> &ServiceContent {
        &self.inner.service
    }

    /// The API version sent in `SOAPAction`.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.transport.version()
    }

    /// The `/sdk` URL in use.
    pub fn url(&self) -> String {
        self.inner.transport.url().to_string()
    }

    /// `SessionManager.Login` with the connect credentials (privilege
    /// `System.Anonymous`). Called by [`Client::connect`] and after a
    /// `NotAuthenticated` fault; call it yourself only after [`Client::logout`].
    pub async fn login(&self) -> Result<UserSession> {
        // vcsim refuses a Login that carries a still-valid session cookie.
        self.inner.transport.clear_cookie();
        let body = login_request(&self.inner.service.session_manager, &self.inner.credentials)?;
        let resp = self.call_once("Login", body).await?;
        let session = UserSession::from_node(
            resp.child("returnval")
                .ok_or_else(|| resp.bad("Login returnval"))?,
        )?;
        if !self.inner.transport.has_cookie() {
            return Err(Error::Decode {
                context: "Login response".into(),
                detail: "the server set no vmware_soap_session cookie".into(),
            });
        }
        if let Ok(mut s) = self.inner.session.write() {
            *s = Some(session.clone());
        }
        self.inner.logged_out.store(false, Ordering::SeqCst);
        tracing::debug!(user = %session.user_name, "logged in");
        Ok(session)
    }

    /// Sends one call, no retry.
    pub(crate) async fn call_once(&self, method: &str, body: String) -> Result<Node> {
        call_whole(&self.inner.transport, method, body).await
    }

    /// Sends one call; on `NotAuthenticated` logs in again (once) and retries.
    pub(crate) async fn invoke(&self, method: &str, body: String) -> Result<Node> {
        let generation = self.inner.transport.cookie_generation();
        match self.call_once(method, body.clone()).await {
            Err(e) if e.is_not_authenticated() && self.may_relogin() => {
                self.relogin(generation).await?;
                self.call_once(method, body).await
            }
            other => other,
        }
    }

    pub(crate) fn may_relogin(&self) -> bool {
        !self.inner.logged_out.load(Ordering::SeqCst)
    }

    /// Logs in again unless another task already did since `generation`.
    pub(crate) async fn relogin(&self, generation: u64) -> Result<()> {
        let _guard = self.inner.login_lock.lock().await;
        if self.inner.transport.cookie_generation() != generation
            && self.inner.transport.has_cookie()
        {
            return Ok(());
        }
        tracing::info!(url = %self.inner.transport.url(), "session not authenticated; logging in again");
        self.login().await.map(drop)
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.inner.transport
    }
}

async fn call_whole(t: &Transport, method: &str, body: String) -> Result<Node> {
    let root = t
        .call(method, body, Mode::Whole, &mut |_| {
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .await?
        .ok_or_else(|| Error::Decode {
            context: format!("{method} response"),
            detail: "parsing stopped early".into(),
        })?;
    decode::into_response(root, method)
}
