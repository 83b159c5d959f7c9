//! HTTP transport: one pooled reqwest client, the session cookie, SOAPAction.
//!
//! The `vmware_soap_session` cookie is captured from `Set-Cookie` and sent
//! back verbatim (vCenter quotes the value) in an explicit `Cookie` header,
//! rather than through a cookie jar that would withhold a `Secure` cookie on a
//! plain-http test server. Response bodies are fed chunk by chunk to the
//! streaming XML reader; nothing here buffers a whole body.

use std::future::Future;
use std::io;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::RwLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use reqwest::{StatusCode, Url};
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::error::{Error, Result};
use crate::soap::decode::{self, Emit, Mode, Node};
use crate::tls::{self, SeenThumbprint, TlsPolicy};
use crate::version::ApiVersion;

const SESSION_COOKIE: &str = "vmware_soap_session";

/// Session cookie plus a counter bumped on every change, so concurrent
/// callers that all saw `NotAuthenticated` log in only once.
#[derive(Debug, Default)]
struct CookieState {
    cookie: Option<String>,
    generation: u64,
}

#[derive(Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    sdk_url: Url,
    policy: TlsPolicy,
    seen: SeenThumbprint,
    version: RwLock<ApiVersion>,
    cookie: RwLock<CookieState>,
}

/// Timeouts for the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Transport {
    pub(crate) fn new(url: &str, policy: TlsPolicy, timeouts: Timeouts) -> Result<Self> {
        let sdk_url = sdk_url(url)?;
        let seen = SeenThumbprint::default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("vmig-vcenter-client/", env!("CARGO_PKG_VERSION")))
            .gzip(true)
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60));
        if sdk_url.scheme() == "https" {
            builder = builder.use_preconfigured_tls(tls::client_config(&policy, seen.clone())?);
        }
        let http = builder.build().map_err(|e| Error::TlsConfig(chain(&e)))?;
        Ok(Self {
            http,
            sdk_url,
            policy,
            seen,
            version: RwLock::new(ApiVersion::fallback()),
            cookie: RwLock::new(CookieState::default()),
        })
    }

    pub(crate) fn url(&self) -> &Url {
        &self.sdk_url
    }

    pub(crate) fn version(&self) -> ApiVersion {
        self.version
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub(crate) fn set_version(&self, v: ApiVersion) {
        match self.version.write() {
            Ok(mut g) => *g = v,
            Err(p) => *p.into_inner() = v,
        }
    }

    pub(crate) fn cookie_generation(&self) -> u64 {
        self.with_cookie(|c| c.generation)
    }

    pub(crate) fn has_cookie(&self) -> bool {
        self.with_cookie(|c| c.cookie.is_some())
    }

    /// Forgets the session cookie (vcsim refuses `Login` sent with a live one).
    pub(crate) fn clear_cookie(&self) {
        self.with_cookie_mut(|c| {
            c.cookie = None;
            c.generation += 1;
        });
    }

    fn with_cookie<T>(&self, f: impl FnOnce(&CookieState) -> T) -> T {
        match self.cookie.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn with_cookie_mut<T>(&self, f: impl FnOnce(&mut CookieState) -> T) -> T {
        match self.cookie.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn store_cookies(&self, headers: &reqwest::header::HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            if let Some(pair) = v.to_str().ok().and_then(session_cookie_pair) {
                self.with_cookie_mut(|c| {
                    if c.cookie.as_deref() != Some(pair.as_str()) {
                        c.cookie = Some(pair);
                        c.generation += 1;
                    }
                });
            }
        }
    }

    /// Fetches `vimServiceVersions.xml`; `Ok(None)` when the server has none.
    pub(crate) async fn service_versions(&self) -> Result<Option<Node>> {
        let mut url = self.sdk_url.clone();
        url.path_segments_mut()
            .map_err(|()| Error::InvalidInput {
                what: "vCenter URL",
                detail: format!("{} cannot have path segments", self.sdk_url),
            })?
            .push("vimServiceVersions.xml");
        let resp = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.net_err(&url, &e))?;
        if resp.status() != StatusCode::OK {
            return Ok(None);
        }
        let mut reader = BodyReader::new(resp);
        let parsed = decode::parse_async(&mut reader, Mode::Plain, &mut |_| {
            Ok(ControlFlow::Continue(()))
        })
        .await;
        // A server that answers with something other than XML has no version list.
        Ok(parsed.ok().flatten())
    }

    /// Posts one SOAP request and parses the answer; see [`decode::parse_async`].
    pub(crate) async fn call(
        &self,
        method: &str,
        body: String,
        mode: Mode,
        emit: &mut Emit<'_>,
    ) -> Result<Option<Node>> {
        let action = format!("urn:vim25/{}", self.version());
        let mut req = self
            .http
            .post(self.sdk_url.clone())
            .header(CONTENT_TYPE, r#"text/xml; charset="utf-8""#)
            .header("SOAPAction", action)
            .body(body);
        if let Some(c) = self.with_cookie(|c| c.cookie.clone())
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            req = req.header(COOKIE, v);
        }
        tracing::debug!(method, "vim25 call");
        let resp = req
            .send()
            .await
            .map_err(|e| self.net_err(&self.sdk_url, &e))?;
        self.store_cookies(resp.headers());
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::INTERNAL_SERVER_ERROR {
            return Err(Error::HttpStatus {
                url: self.sdk_url.to_string(),
                method: method.to_string(),
                status: status.as_u16(),
                body: snippet(resp).await,
            });
        }
        let mut reader = BodyReader::new(resp);
        match decode::parse_async(&mut reader, mode, emit).await {
            Err(e @ (Error::Xml { .. } | Error::Decode { .. })) if status != StatusCode::OK => {
                Err(Error::HttpStatus {
                    url: self.sdk_url.to_string(),
                    method: method.to_string(),
                    status: status.as_u16(),
                    body: e.to_string(),
                })
            }
            Err(Error::Xml { detail, .. }) if reader.failed.is_some() => Err(Error::Http {
                url: self.sdk_url.to_string(),
                detail: format!("reading the {method} response: {detail}"),
            }),
            other => other,
        }
    }

    /// Turns a reqwest failure into a TLS, thumbprint or network error.
    fn net_err(&self, url: &Url, e: &reqwest::Error) -> Error {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut tls_detail = None;
        while let Some(s) = src {
            if let Some(r) = s.downcast_ref::<rustls::Error>() {
                tls_detail = Some(r.to_string());
                break;
            }
            if let Some(io) = s.downcast_ref::<io::Error>()
                && let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
            {
                tls_detail = Some(r.to_string());
                break;
            }
            src = s.source();
        }
        // hyper wraps the rustls error in io errors whose `source()` skips
        // the wrapped value, so fall back to rustls's own wording.
        let full = chain(e);
        let tls_words = [
            "invalid peer certificate",
            "certificate",
            "handshake",
            "TLS",
        ];
        let Some(detail) = tls_detail.or_else(|| {
            tls_words.iter().any(|w| full.contains(w)).then(|| {
                match full.find("invalid peer certificate") {
                    Some(i) => full[i..].to_string(),
                    None => full.rsplit(": ").next().unwrap_or(&full).to_string(),
                }
            })
        }) else {
            return Error::Http {
                url: url.to_string(),
                detail: full,
            };
        };
        let seen = self.seen.lock().ok().and_then(|s| *s);
        match (&self.policy, seen) {
            (TlsPolicy::Thumbprint(expected), Some(seen)) if *expected != seen => {
                Error::ThumbprintMismatch {
                    url: url.to_string(),
                    expected: *expected,
                    seen,
                }
            }
            _ => Error::Tls {
                url: url.to_string(),
                detail,
                seen,
            },
        }
    }
}

/// Normalises a user-supplied vCenter address to its `/sdk` endpoint and
/// drops any `user:password@` part (credentials travel only in `Login`).
pub(crate) fn sdk_url(url: &str) -> Result<Url> {
    let mut u = Url::parse(url.trim()).map_err(|e| Error::InvalidInput {
        what: "vCenter URL",
        detail: format!("{url:?}: {e} (expected e.g. https://vcenter.example.com/sdk)"),
    })?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(Error::InvalidInput {
            what: "vCenter URL",
            detail: format!("{url:?}: scheme must be https (or http for a local simulator)"),
        });
    }
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    if u.path() == "/" || u.path().is_empty() {
        u.set_path("/sdk");
    }
    Ok(u)
}

/// Extracts `vmware_soap_session=<value>` (quotes kept) from one `Set-Cookie`.
pub(crate) fn session_cookie_pair(set_cookie: &str) -> Option<String> {
    let pair = set_cookie.split(';').next()?.trim();
    let (name, value) = pair.split_once('=')?;
    (name.trim() == SESSION_COOKIE && !value.trim().is_empty() && value.trim() != "\"\"")
        .then(|| format!("{SESSION_COOKIE}={}", value.trim()))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

async fn snippet(mut resp: reqwest::Response) -> String {
    let mut out = Vec::new();
    while out.len() < 1024 {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c),
            _ => break,
        }
    }
    out.truncate(1024);
    String::from_utf8_lossy(&out).trim().to_string()
}

type ChunkFuture =
    Pin<Box<dyn Future<Output = (reqwest::Response, reqwest::Result<Option<Bytes>>)> + Send>>;

enum ReadState {
    Idle(reqwest::Response),
    Waiting(ChunkFuture),
    Done,
}

/// `AsyncBufRead` over a response body, one network chunk at a time.
pub(crate) struct BodyReader {
    state: ReadState,
    chunk: Bytes,
    failed: Option<String>,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("buffered", &self.chunk.len())
            .finish()
    }
}

impl BodyReader {
    pub(crate) fn new(resp: reqwest::Response) -> Self {
        Self {
            state: ReadState::Idle(resp),
            chunk: Bytes::new(),
            failed: None,
        }
    }
}

impl AsyncBufRead for BodyReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                return Poll::Ready(Ok(&this.chunk[..]));
            }
            match std::mem::replace(&mut this.state, ReadState::Done) {
                ReadState::Idle(mut resp) => {
                    this.state = ReadState::Waiting(Box::pin(async move {
                        let r = resp.chunk().await;
                        (resp, r)
                    }));
                }
                ReadState::Waiting(mut fut) => match fut.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = ReadState::Waiting(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready((resp, Ok(Some(bytes)))) => {
                        this.chunk = bytes;
                        this.state = ReadState::Idle(resp);
                    }
                    Poll::Ready((_, Ok(None))) => return Poll::Ready(Ok(&[])),
                    Poll::Ready((_, Err(e))) => {
                        let msg = chain(&e);
                        this.failed = Some(msg.clone());
                        return Poll::Ready(Err(io::Error::other(msg)));
                    }
                },
                ReadState::Done => return Poll::Ready(Ok(&[])),
            }
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.chunk.advance(amt.min(this.chunk.len()));
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = match self.as_mut().poll_fill_buf(cx) {
            Poll::Ready(Ok(buf)) => {
                let n = buf.len().min(out.remaining());
                out.put_slice(&buf[..n]);
                n
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_vcenter_cookie_is_kept_verbatim() {
        let real = r#"vmware_soap_session="6898e317c3fdc0c061e9a5f6ee8b200e2561852d"; Path=/; HttpOnly; Secure;"#;
        assert_eq!(
            session_cookie_pair(real).unwrap(),
            r#"vmware_soap_session="6898e317c3fdc0c061e9a5f6ee8b200e2561852d""#
        );
        let vcsim = "vmware_soap_session=0b7a7a4e-24b1-4a62-8d07-9d33e0a6c4b3; HttpOnly";
        assert_eq!(
            session_cookie_pair(vcsim).unwrap(),
            "vmware_soap_session=0b7a7a4e-24b1-4a62-8d07-9d33e0a6c4b3"
        );
        assert!(session_cookie_pair("vmware-api-session-id=abc; Path=/rest").is_none());
        assert!(session_cookie_pair("vmware_soap_session=; Max-Age=0").is_none());
    }

    #[test]
    fn urls_are_normalised_to_sdk_without_credentials() {
        assert_eq!(
            sdk_url("https://vc.example.com").unwrap().as_str(),
            "https://vc.example.com/sdk"
        );
        assert_eq!(
            sdk_url("http://user:pass@127.0.0.1:18989/sdk")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:18989/sdk"
        );
        assert!(sdk_url("ftp://x").is_err());
        assert!(sdk_url("not a url").is_err());
    }
}
