//! `cargo xtask scale --vmig-serve`: `vmig serve` on the same simulator as `vmig report`
//! (see scale.rs). A benchmark, not a test: it prints figures for docs/performance.md
//! ("`vmig serve` at vCenter scale") and asserts nothing.
//!
//! 1. initial sync: from starting the process to `/healthz` answering 200 (every vCenter
//!    read once), with the process's CPU time and RSS then;
//!    Then the start-up's check read (one more full read once the collector's first answer
//!    is in, see vmig/src/serve/watch.rs) is waited for (`syncs` reaching 2 in `/healthz`),
//!    and its end reported: changes are measured on a settled server;
//! 2. a change: one host's agent document is rewritten (`SetField`, as an agent does) with
//!    one more GPU instance in use, `--changes` times; measured from just before the write
//!    to (a) `/metrics` showing the new count (polled every 50 ms) and (b) the first
//!    `/events` announcement after which `/` (the page an open browser fetches then) holds
//!    the new VM's name;
//! 3. steady state: CPU time of the process over `--idle` seconds (default 60) with no
//!    change and one open event stream (a page left open), then RSS and peak RSS.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mig::report::{CiReport, GiReport, GpuReport};
use mig::{ComputeInstanceId, GpuModel, MigState, Placement};
use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, TlsPolicy};

/// What was measured.
pub struct ServeFigures {
    pub sync_s: f64,
    pub sync_cpu_s: f64,
    pub sync_rss_kib: u64,
    /// From the start to the end of the check read.
    pub settled_s: f64,
    /// Per change: (`SetField` s, in `/metrics` s, event + page fetched s).
    pub changes: Vec<(f64, f64, f64)>,
    pub idle_s: f64,
    pub idle_cpu_s: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub metrics_bytes: usize,
    pub page_bytes: usize,
    pub load: String,
}

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the simulator is and what to write.
pub struct Target<'a> {
    pub url: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// The host whose document is rewritten.
    pub host: &'a str,
    /// Its agent document as the simulator started with it (GPU 0 gets the extra instances).
    pub doc: mig::report::HostReport,
}

pub fn measure(vmig: &Path, t: &Target<'_>, changes: u32, idle: Duration) -> Result<ServeFigures> {
    let started = Instant::now();
    let server = start(vmig, t)?;
    let pid = server.child.id();
    let sync_s = wait_for_health(&server, started, "its first read", |_| true)?;
    let sync_cpu_s = super::probe::cpu_seconds(Some(pid)).unwrap_or(0.0);
    let sync_rss_kib = status_kib(pid, "VmRSS:");
    eprintln!(
        "scale: vmig serve ready in {sync_s:.2} s ({sync_cpu_s:.2} s CPU, {} MiB RSS, load {})",
        sync_rss_kib >> 10,
        super::probe::load_average()
    );
    let settled_s = wait_for_health(&server, started, "its check read", |health| {
        health["vcenters"][0]["syncs"].as_u64().unwrap_or(0) >= 2
    })?;
    eprintln!("scale: vmig serve settled (check read done) after {settled_s:.2} s");
    let metrics_bytes = get(&server.addr, "/metrics")?.1.len();
    let page_bytes = get(&server.addr, "/")?.1.len();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = rt.block_on(Client::connect(ConnectOptions::new(
        t.url,
        Credentials::new(t.username, t.password),
        TlsPolicy::Insecure,
    )))?;
    let host = rt
        .block_on(client.hosts(&[HostProperty::Name]))?
        .into_iter()
        .find(|h| h.name.as_deref() == Some(t.host))
        .with_context(|| format!("no host {}", t.host))?
        .moref;
    let key = rt
        .block_on(client.custom_field_defs())?
        .into_iter()
        .find(|d| d.name == "vmig.mig")
        .context("vmig.mig is not defined")?
        .key;

    let waiting: Arc<Mutex<Option<(String, Instant)>>> = Arc::default();
    let seen = page_watcher(&server.addr, Arc::clone(&waiting))?;
    let mut figures = Vec::new();
    for k in 1..=changes {
        let marker = format!("scale-live-{k}-0");
        let mut doc = t.doc.clone();
        doc.generation += u64::from(k);
        doc.gpus[0] = with_instances(&doc.gpus[0], k)?;
        doc.observed_at = super::fleet::now_rfc3339();
        let t0 = Instant::now();
        *waiting.lock().unwrap_or_else(|p| p.into_inner()) = Some((marker, t0));
        rt.block_on(client.set_custom_value(host.as_moref(), key, &doc.to_json()))?;
        let written = t0.elapsed().as_secs_f64();
        // The server's -v lines carry UTC times: this one places the write among them.
        eprintln!(
            "scale: change {k} written at {}",
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        );
        let metrics = loop {
            let m = get(&server.addr, "/metrics")?.1;
            if in_use(&m, t.host, "0") == Some(f64::from(k)) {
                break t0.elapsed().as_secs_f64();
            }
            if t0.elapsed() > Duration::from_secs(120) {
                bail!("change {k} not in /metrics after 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let page = seen
            .recv_timeout(Duration::from_secs(120))
            .with_context(|| format!("change {k} not on the page after 120 s"))?;
        eprintln!(
            "scale: change {k}: SetField {written:.3} s, /metrics {metrics:.3} s, event + page {page:.3} s"
        );
        figures.push((written, metrics, page));
        std::thread::sleep(Duration::from_secs(2));
    }

    // Steady state: nothing changes, one page stays open (the watcher's event stream).
    std::thread::sleep(Duration::from_secs(5));
    let cpu0 = super::probe::cpu_seconds(Some(pid)).unwrap_or(0.0);
    let t0 = Instant::now();
    std::thread::sleep(idle);
    let idle_cpu_s = super::probe::cpu_seconds(Some(pid)).unwrap_or(0.0) - cpu0;
    let idle_s = t0.elapsed().as_secs_f64();
    Ok(ServeFigures {
        sync_s,
        sync_cpu_s,
        sync_rss_kib,
        settled_s,
        changes: figures,
        idle_s,
        idle_cpu_s,
        rss_kib: status_kib(pid, "VmRSS:"),
        peak_rss_kib: status_kib(pid, "VmHWM:"),
        metrics_bytes,
        page_bytes,
        load: super::probe::load_average(),
    })
}

/// Seconds from `started` until `/healthz` answers 200 with a body `done` accepts (polled
/// every 50 ms; the server is still starting while it refuses to connect).
fn wait_for_health(
    server: &Server,
    started: Instant,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<f64> {
    loop {
        if let Ok((200, body)) = get(&server.addr, "/healthz")
            && done(&serde_json::from_str(&body).unwrap_or_default())
        {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("vmig serve did not finish {what} in 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(vmig: &Path, t: &Target<'_>) -> Result<Server> {
    let mut child = Command::new(vmig)
        // The simulator serves plain HTTP, which vmig accepts only with --insecure.
        .args([
            "--url",
            t.url,
            "--insecure",
            // Its update sets and snapshot timings go to stderr, echoed with the figures.
            "-v",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("GOVC_USERNAME", t.username)
        .env("GOVC_PASSWORD", t.password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {} serve", vmig.display()))?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("vmig serve: listening on http://") {
                let _ = tx.send(addr.to_string());
            } else {
                eprintln!("[vmig serve] {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("vmig serve did not say where it listens")?;
    Ok(Server { child, addr })
}

/// One `GET` over HTTP/1.1: status and body (the server sends `Content-Length` bodies).
fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").context("no HTTP answer")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    Ok((status, body.to_string()))
}

/// Follows `/events`; after each announcement while a change is awaited, fetches `/` as an
/// open page does and, once the page holds the awaited marker, sends the seconds since the
/// change was written.
fn page_watcher(
    addr: &str,
    waiting: Arc<Mutex<Option<(String, Instant)>>>,
) -> Result<Receiver<f64>> {
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let (tx, rx) = channel();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            let event = line.starts_with("event: report");
            line.clear();
            let pending = waiting.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let (true, Some((marker, t0))) = (event, pending) else {
                continue;
            };
            let Ok((_, page)) = get(&addr, "/") else {
                continue;
            };
            if page.contains(&marker) {
                *waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
                if tx.send(t0.elapsed().as_secs_f64()).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// The `vmig_gpu_instances` sample of `host`'s GPU `index` with `in_use="true"`.
fn in_use(metrics: &str, host: &str, index: &str) -> Option<f64> {
    let (h, g) = (format!("host=\"{host}\""), format!("gpu_index=\"{index}\""));
    metrics
        .lines()
        .filter(|l| l.starts_with("vmig_gpu_instances{"))
        .find(|l| l.contains(&h) && l.contains(&g) && l.contains("in_use=\"true\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `gpu` with its instances replaced by `k` `1g.5gb` instances, each in use by
/// `scale-live-{k}-{i}`, and its free-space fields to match (agents' documents are checked).
fn with_instances(gpu: &GpuReport, k: u32) -> Result<GpuReport> {
    let model = GpuModel::by_key(super::fleet::A100).context("catalog")?;
    let p = model.gi_profile_by_name("1g.5gb").context("profile")?;
    let ci = p
        .ci_profiles
        .iter()
        .find(|c| c.is_default)
        .unwrap_or(&p.ci_profiles[0]);
    let mut state = MigState::new(model);
    let mut g = gpu.clone();
    g.gpu_instances = Vec::new();
    for i in 0..k {
        let placement = Placement::new(i, p.memory_slices);
        let id = state
            .create_gi(p.id, Some(placement))
            .map_err(|e| anyhow::anyhow!("1g.5gb at {i}: {e}"))?;
        g.gpu_instances.push(GiReport {
            vgpus: Vec::new(),
            gi_id: id,
            profile_id: p.id,
            profile: p.name.to_string(),
            placement,
            compute_instances: vec![CiReport {
                ci_id: ComputeInstanceId(0),
                profile_id: Some(ci.id),
                profile: ci.name.to_string(),
                uuid: format!("MIG-live-{k}-{i}"),
            }],
            in_use: true,
            vm: Some(format!("scale-live-{k}-{i}")),
            vgpu_type: Some(mig::vgpu::vgpu_types_for(model, p).remove(0)),
            processes: vec![],
        });
    }
    g.largest_placeable = state.largest_placeable().map(|p| p.name.to_string());
    g.fragmentation = state.fragmentation();
    Ok(g)
}

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`), 0 if unknown.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
