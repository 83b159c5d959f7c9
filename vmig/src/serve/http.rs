//! The listener: hyper's HTTP/1 server, a handful of read-only routes answered from the
//! current [`Snapshot`](super::Snapshot), server-sent events for the live page, the optional
//! bearer token, and optional TLS ([`super::tls`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;

use super::State;
use crate::AdminError;

type Body = BoxBody<Bytes, Infallible>;

/// How often an idle event stream carries a comment, so proxies and browsers keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a client has to finish the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until the listener fails for good; with `tls`, every connection
/// must complete a TLS handshake first (plain HTTP to such a listener gets no answer).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
) -> Result<(), AdminError> {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, state).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection(stream, state).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake: {e}"),
                        Err(_) => tracing::debug!("TLS handshake: no answer in time"),
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection, plain or TLS, until the client closes it.
async fn connection<I>(io: I, state: Arc<State>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let state = Arc::clone(&state);
        async move {
            // The page and the JSON report are rendered on their first request per snapshot:
            // up to a few hundred ms of CPU at vCenter scale, done off the runtime's workers.
            let path = req.uri().path();
            if matches!(path, "/" | "/api/v1/report") && authorised(&state, &req) {
                let snap = state.snapshot();
                let json = path != "/";
                let _ = tokio::task::spawn_blocking(move || {
                    if json {
                        drop(snap.report_json());
                    } else {
                        drop(snap.html());
                    }
                })
                .await;
            }
            Ok::<_, Infallible>(handle(&state, &req))
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await
    {
        tracing::debug!("connection: {e}");
    }
}

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, msg: &'static str) -> Response<Body> {
    full(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(msg.as_bytes()),
    )
}

/// Compares without an early exit, so the time taken says nothing about the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Authorization: Bearer <token>`, or `?token=<token>` (a browser's `EventSource` cannot
/// set headers, so the live page passes the token it was opened with).
fn authorised(state: &State, req: &Request<Incoming>) -> bool {
    let Some(token) = state.token() else {
        return true;
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), token.as_bytes()));
    let query = req.uri().query().is_some_and(|q| {
        q.split('&')
            .filter_map(|kv| kv.strip_prefix("token="))
            .any(|t| same(t.as_bytes(), token.as_bytes()))
    });
    header || query
}

fn handle(state: &State, req: &Request<Incoming>) -> Response<Body> {
    if !authorised(state, req) {
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required\n",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vmig\""),
        );
        return r;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "vmig serve is read-only\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let snap = state.snapshot();
    match req.uri().path() {
        "/" => full(StatusCode::OK, "text/html; charset=utf-8", snap.html()),
        "/api/v1/report" => full(StatusCode::OK, "application/json", snap.report_json()),
        "/metrics" => full(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            snap.metrics_now(state.uptime()),
        ),
        "/healthz" => full(
            if snap.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            "application/json",
            health(state, &snap.health),
        ),
        "/events" => events(state),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn health(state: &State, snap: &serde_json::Value) -> Bytes {
    let mut h = snap.clone();
    if let Some(o) = h.as_object_mut() {
        o.insert("event_streams".into(), state.event_streams().into());
    }
    Bytes::from(h.to_string())
}

/// `text/event-stream`: an `event: report` with the snapshot generation now and after every
/// change, and a comment line when idle.
fn events(state: &State) -> Response<Body> {
    let rx = state.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep(KEEPALIVE) => {
                    let frame = Frame::data(Bytes::from_static(b": keepalive\n\n"));
                    return Some((Ok(frame), (rx, false)));
                }
            }
        }
        let generation = *rx.borrow_and_update();
        let frame = Frame::data(Bytes::from(format!(
            "event: report\ndata: {generation}\n\n"
        )));
        Some((Ok::<_, Infallible>(frame), (rx, false)))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Replaces the page's body with the new page's whenever `/events` announces a generation
/// other than the one shown, and runs the report's own script again. No external assets.
/// `data-live-updates` on `<html>` counts the updates the page applied (visible in the
/// browser's inspector, and what the tests read through Chromium's DevTools protocol).
const LIVE_SCRIPT: &str = r"(function(){
var m=location.search.match(/[?&]token=([^&]*)/),q=m?'?token='+m[1]:'';
var shown=document.documentElement.getAttribute('data-generation'),updates=0;
var es=new EventSource('/events'+q);
es.addEventListener('report',function(e){
if(e.data===shown)return;shown=e.data;
fetch('/'+q,{cache:'no-store'}).then(function(r){return r.text();}).then(function(h){
var d=new DOMParser().parseFromString(h,'text/html');
document.documentElement.setAttribute('data-generation',d.documentElement.getAttribute('data-generation')||e.data);
updates+=1;document.documentElement.setAttribute('data-live-updates',String(updates));
document.body.innerHTML=d.body.innerHTML;
document.body.querySelectorAll('script:not(#vmig-live)').forEach(function(s){var n=document.createElement('script');n.textContent=s.textContent;s.replaceWith(n);});
});});
})();";

/// The report page with the live-update script, and the generation it shows. Edits the
/// page in place: at 40,000 VMs it is 20 MB, and copies of it are what a rebuild's memory
/// peak was made of.
pub fn live_page(mut page: Vec<u8>, generation: u64) -> Vec<u8> {
    const HTML: &[u8] = b"<html lang=\"en\"";
    const END: &[u8] = b"</body>";
    let attr = format!(" data-generation=\"{generation}\"");
    let script = format!("<script id=\"vmig-live\">{LIVE_SCRIPT}</script>");
    page.reserve_exact(attr.len() + script.len());
    if let Some(at) = page.windows(END.len()).rposition(|w| w == END) {
        page.splice(at..at, script.bytes());
    }
    if let Some(at) = page.windows(HTML.len()).position(|w| w == HTML) {
        let at = at + HTML.len();
        page.splice(at..at, attr.bytes());
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_script_goes_before_the_end_of_the_body() {
        let page = live_page(
            b"<html lang=\"en\"><body><p>x</p></body></html>".to_vec(),
            7,
        );
        let page = String::from_utf8(page).unwrap();
        assert!(page.starts_with(
            "<html lang=\"en\" data-generation=\"7\"><body><p>x</p><script id=\"vmig-live\">"
        ));
        assert!(page.ends_with("</script></body></html>"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
