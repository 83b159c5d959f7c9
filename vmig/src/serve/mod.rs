//! `vmig serve`: a read-only, live view of every vCenter the command names.
//!
//! One in-memory model per vCenter is read once with the inventory reader and then kept
//! current with the incremental property collector ([`watch`], [`model`]); every change is
//! analysed again and rendered once into a [`Snapshot`] (JSON report, HTML page, Prometheus
//! metrics) that the HTTP listener ([`http`]) hands out as is, so a scrape or a page view never
//! costs a vCenter call or an analysis. The server never writes to vCenter.

pub mod http;
pub mod metrics;
pub mod model;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use time::OffsetDateTime;

use crate::inventory::{Scope, VcenterInventory};
use crate::report::{Report, ScopeView};
use crate::{AdminError, Connection, ExitCode, analysis, render};

/// How often the model is analysed again without a change, so the ages on the page move on
/// (`/metrics` writes ages per scrape, and a report turning stale or a reservation expiring
/// is analysed at that moment: [`crate::analysis::Analysis::next_change`]).
const REANALYSE_EVERY: Duration = Duration::from_secs(300);
/// How often the ticker looks whether that moment has come.
const TICK: Duration = Duration::from_secs(2);

/// `vmig serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (plain HTTP unless --tls-cert is given). Anything but loopback
    /// exposes the inventory.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9790")]
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM: the server certificate first, then any
    /// intermediates). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1), readable by its owner
    /// only.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// File holding a bearer token every request must carry (`Authorization: Bearer …`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Only this datacenter.
    #[arg(long, value_name = "NAME")]
    pub datacenter: Option<String>,
    /// Only this cluster.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// The state of one vCenter's watcher, for `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct VcenterState {
    /// Host part of its URL.
    pub name: String,
    /// Whether the model is in step with vCenter (false while (re)reading or after an error).
    pub up: bool,
    /// The last error, while not up.
    pub error: Option<String>,
    /// Update sets applied.
    pub updates: u64,
    /// Full reads (the first one included).
    pub syncs: u64,
}

/// The model behind the listener.
#[derive(Debug, Default)]
struct Model {
    inventories: Vec<Option<VcenterInventory>>,
    vcenters: Vec<VcenterState>,
    /// vCenter's time when it was last read, and the local instant it was read at.
    clock: Option<(OffsetDateTime, Instant)>,
    /// When the last analysis said a status would next change by time alone (vCenter time).
    next_change: Option<OffsetDateTime>,
    /// When the last snapshot was made.
    rebuilt: Option<Instant>,
}

impl Model {
    /// vCenter's time now: the time of the last full read carried forward on the local
    /// clock (the local time before any read).
    fn vcenter_now(&self) -> OffsetDateTime {
        self.clock.map_or_else(OffsetDateTime::now_utc, |(t, at)| {
            t + time::Duration::try_from(at.elapsed()).unwrap_or_default()
        })
    }
}

/// Everything a request is answered from, made once per change. The page and the JSON
/// report (20 MB each at 40,000 VMs) are rendered from the analysed report on their first
/// request and kept with it, so a change, or a re-analysis nobody looks at, costs neither.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Bumped on every new snapshot; what `/events` announces.
    pub generation: u64,
    /// Whether every vCenter has been read at least once.
    pub ready: bool,
    /// The analysed report the views are rendered from.
    report: Option<Report>,
    /// `/api/v1/report`, once asked for.
    report_json: OnceLock<Bytes>,
    /// `/`, once asked for.
    html: OnceLock<Bytes>,
    /// `/metrics`, but for the values that grow with time alone (agent ages, uptime), which
    /// are written per scrape.
    pub metrics: metrics::Exposition,
    /// When the snapshot was made.
    pub made: Option<Instant>,
    /// `/healthz` (the listener adds the number of open event streams).
    pub health: serde_json::Value,
}

impl Snapshot {
    /// `/api/v1/report`.
    pub fn report_json(&self) -> Bytes {
        self.report_json
            .get_or_init(|| {
                let mut json = Vec::new();
                if let Some(r) = &self.report {
                    // Writing to memory cannot fail.
                    let _ = render::json::render(r, &mut json);
                }
                Bytes::from(json)
            })
            .clone()
    }

    /// `/`: the report page with the live-update script.
    pub fn html(&self) -> Bytes {
        self.html
            .get_or_init(|| {
                let mut html = Vec::new();
                if let Some(r) = &self.report {
                    let _ = render::html::render(r, &mut html);
                }
                Bytes::from(http::live_page(html, self.generation))
            })
            .clone()
    }

    /// `/metrics` now.
    pub fn metrics_now(&self, uptime: Duration) -> Bytes {
        let since = self.made.map_or(Duration::ZERO, |m| m.elapsed());
        self.metrics.write(since, uptime)
    }
}

/// Shared between the watchers and the listener.
#[derive(Debug)]
pub struct State {
    model: Mutex<Model>,
    snapshot: RwLock<Arc<Snapshot>>,
    changed: tokio::sync::watch::Sender<u64>,
    scope: ScopeView,
    token: Option<String>,
    started: Instant,
}

impl State {
    /// A state for `names` (one per vCenter), nothing read yet.
    pub fn new(names: Vec<String>, scope: ScopeView, token: Option<String>) -> Arc<Self> {
        let model = Model {
            inventories: names.iter().map(|_| None).collect(),
            vcenters: names
                .into_iter()
                .map(|name| VcenterState {
                    name,
                    ..VcenterState::default()
                })
                .collect(),
            clock: None,
            next_change: None,
            rebuilt: None,
        };
        let (changed, _) = tokio::sync::watch::channel(0);
        let state = Arc::new(State {
            model: Mutex::new(model),
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            changed,
            scope,
            token,
            started: Instant::now(),
        });
        state.rebuild();
        state
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Notified with the generation of every new snapshot.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Open `/events` streams (live pages).
    pub fn event_streams(&self) -> usize {
        self.changed.receiver_count()
    }

    /// The bearer token requests must carry, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn with_model<T>(&self, f: impl FnOnce(&mut Model) -> T) -> T {
        let mut m = self.model.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    /// A full read of vCenter `i` replaces its model.
    pub fn replace(&self, i: usize, inv: VcenterInventory, vcenter_now: OffsetDateTime) {
        self.replace_then_apply(i, inv, vcenter_now, &[]);
    }

    /// A full read replaces vCenter `i`'s model, then the update sets received while it ran
    /// are applied to it again (the read may predate them); one re-analysis for all.
    pub fn replace_then_apply(
        &self,
        i: usize,
        inv: VcenterInventory,
        vcenter_now: OffsetDateTime,
        since: &[vcenter_client::UpdateSet],
    ) -> model::Effect {
        let effect = self.with_model(|m| {
            let mut inv = inv;
            let effect = model::apply_all(&mut inv, since);
            m.inventories[i] = Some(inv);
            m.clock = Some((vcenter_now, Instant::now()));
            let v = &mut m.vcenters[i];
            v.up = true;
            v.error = None;
            v.syncs += 1;
            effect
        });
        self.rebuild();
        effect
    }

    /// Applies an update set to vCenter `i`'s model; `Resync` asks the caller for a full read.
    pub fn apply(&self, i: usize, set: &vcenter_client::UpdateSet) -> model::Effect {
        let effect = self.with_model(|m| {
            m.vcenters[i].updates += 1;
            m.inventories[i]
                .as_mut()
                .map_or(model::Effect::Resync, |inv| model::apply(inv, set))
        });
        tracing::info!("update set: {} object(s), {effect:?}", set.objects.len());
        if effect == model::Effect::Changed {
            self.rebuild();
        }
        effect
    }

    /// Applies the collector's first answer to vCenter `i`'s model, read before it
    /// ([`model::reconcile`]); `Resync` asks the caller for a full read.
    pub fn reconcile(&self, i: usize, answer: &[model::Watched]) -> model::Effect {
        let effect = self.with_model(|m| {
            m.inventories[i]
                .as_mut()
                .map_or(model::Effect::Resync, |inv| model::reconcile(inv, answer))
        });
        tracing::info!("the first answer applied to the read: {effect:?}");
        if effect == model::Effect::Changed {
            self.rebuild();
        }
        effect
    }

    /// vCenter `i` is out of step (its watcher starts over); its last model stays shown.
    pub fn failed(&self, i: usize, error: String) {
        self.with_model(|m| {
            let v = &mut m.vcenters[i];
            v.up = false;
            v.error = Some(error);
        });
        self.rebuild();
    }

    /// Analyses the model and renders every view of it.
    pub fn rebuild(&self) {
        let began = Instant::now();
        let (invs, vcenters, now, ready) = self.with_model(|m| {
            let now = m.vcenter_now();
            (
                m.inventories
                    .iter()
                    .flatten()
                    .cloned()
                    // A full read stamps vCenter's time at that moment; the live view judges
                    // ages at vCenter's time now, which `clock` carries forward.
                    .map(|mut inv| {
                        inv.server_time = Some(now);
                        inv
                    })
                    .collect::<Vec<_>>(),
                m.vcenters.clone(),
                now,
                m.inventories.iter().all(Option::is_some),
            )
        });
        let analysis = analysis::analyse(invs, now);
        let next_change = analysis.next_change();
        let report = analysis.report(self.scope.clone());
        drop(analysis);
        let analysed = began.elapsed();
        let generation = self.snapshot().generation + 1;
        let metrics = metrics::render(&report, &vcenters);
        let health = serde_json::json!({
            "ready": ready,
            "generation": generation,
            "vcenters": vcenters.iter().map(|v| serde_json::json!({
                "name": v.name, "up": v.up, "error": v.error, "updates": v.updates, "syncs": v.syncs,
            })).collect::<Vec<_>>(),
        });
        let snap = Snapshot {
            generation,
            ready,
            report: Some(report),
            report_json: OnceLock::new(),
            html: OnceLock::new(),
            metrics,
            made: Some(Instant::now()),
            health,
        };
        match self.snapshot.write() {
            Ok(mut s) => *s = Arc::new(snap),
            Err(p) => *p.into_inner() = Arc::new(snap),
        }
        self.with_model(|m| {
            m.next_change = next_change;
            m.rebuilt = Some(Instant::now());
        });
        self.changed.send_replace(generation);
        tracing::info!(
            "snapshot {generation}: analysed in {} ms, metrics in {} ms{}",
            analysed.as_millis(),
            began.elapsed().saturating_sub(analysed).as_millis(),
            next_change.map_or_else(String::new, |t| format!(
                "; next change by time alone at {}",
                crate::times::format_time(t)
            ))
        );
    }

    /// Whether time alone calls for a new analysis: a status changes now (a report turns
    /// stale, a reservation expires), or the page's ages are [`REANALYSE_EVERY`] old.
    fn due(&self) -> bool {
        self.with_model(|m| {
            let now = m.vcenter_now();
            m.next_change.is_some_and(|t| t <= now)
                || m.rebuilt.is_none_or(|r| r.elapsed() >= REANALYSE_EVERY)
        })
    }

    /// Seconds since the server started (`vmig_serve_uptime_seconds`).
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The bearer token, from a file only its owner may read: the token is as good as a password
/// for the inventory `serve` shows (the same mode rule as the TLS key and password files).
fn read_token(path: &std::path::Path) -> Result<String, AdminError> {
    if let Err(vcenter_client::PasswordFileError::Mode { who, mode, .. }) =
        vcenter_client::check_private(path)
    {
        return Err(AdminError::Usage(format!(
            "the token file --token-file {} is readable or writable by {who} (mode {mode:o}): \
             chmod 600 it",
            path.display()
        )));
    }
    let raw = std::fs::read_to_string(path).map_err(|source| AdminError::Output {
        what: format!("token file {}", path.display()),
        source,
    })?;
    let token = raw.trim().to_string();
    if token.is_empty() {
        return Err(AdminError::Output {
            what: format!("token file {}", path.display()),
            source: std::io::Error::other("the file is empty"),
        });
    }
    Ok(token)
}

/// Large buffers (a rendered page or report is 20 MB at 40,000 VMs) go back to the system
/// when freed. glibc raises its mmap threshold after the first large free, so without this
/// later ones come from its arenas and stay there: measured, RSS grew from 101 to 228 MiB
/// over a minute of re-analyses, and stayed at 110 MiB with the threshold fixed at 1 MiB
/// (docs/performance.md). The same as `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "one call into glibc's allocator settings")]
fn return_large_buffers() {
    // SAFETY: mallopt only sets a parameter of glibc's allocator; it takes no pointers and
    // is documented safe to call at any time.
    let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20) };
    if done != 1 {
        tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused; large buffers may stay resident");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers() {}

/// Runs the server until the process is stopped.
pub async fn run(conns: &[Connection], a: ServeArgs) -> Result<ExitCode, AdminError> {
    return_large_buffers();
    let token = a.token_file.as_deref().map(read_token).transpose()?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    if tls::token_in_clear(a.listen, token.is_some(), tls.is_some()) {
        tracing::warn!(
            "--token-file without --tls-cert on {}: the token and the inventory cross the \
             network in clear; give --tls-cert/--tls-key or listen on 127.0.0.1 behind a \
             TLS proxy",
            a.listen
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let scope = Scope {
        datacenter: a.datacenter.clone(),
        cluster: a.cluster.clone(),
    };
    let state = State::new(
        conns.iter().map(|c| c.target.host.clone()).collect(),
        ScopeView {
            datacenter: a.datacenter,
            cluster: a.cluster,
        },
        token,
    );
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|source| AdminError::Output {
            what: format!("listening on {}", a.listen),
            source,
        })?;
    let local = listener.local_addr().unwrap_or(a.listen);
    // Scripts and service managers wait for this line (port 0 picks a free port).
    eprintln!("vmig serve: listening on {scheme}://{local}");
    let watchers = futures_util::future::join_all(
        conns
            .iter()
            .enumerate()
            .map(|(i, c)| watch::watch(c, i, &scope, &state)),
    );
    let ticker = async {
        let mut tick = tokio::time::interval(TICK);
        tick.tick().await;
        loop {
            tick.tick().await;
            if state.due() {
                state.rebuild();
            }
        }
    };
    tokio::select! {
        r = http::serve(listener, Arc::clone(&state), tls) => r.map(|()| ExitCode::Ok),
        _ = watchers => Ok(ExitCode::Ok),
        () = ticker => Ok(ExitCode::Ok),
    }
}
