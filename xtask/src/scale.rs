//! `cargo xtask scale [--clusters N] [--hosts N] [--vms N] [--gpus N] [--vmig BIN]
//! [--repeat N] [--skip-pyvmomi] [--vmig-serve [--changes N] [--idle S]] [--serve | --url URL]`: `vmig report` at vCenter's maximum
//! inventory. A benchmark, not a test: it prints figures for docs/performance.md ("vmig at
//! vCenter scale") and asserts nothing.
//!
//! Set-up: govmomi's simulator (plain HTTP, so all clients pay the same transport; GOGC=300
//! unless set, see `run`) with `--clusters` × `--hosts` hosts (default 25 × 100 = 2,500) and
//! `--vms` VMs per cluster (default 1,600, i.e. 40,000), every host carrying `--gpus`
//! A100-PCIE-40GB (default 2) and an injected agent document (layouts vary host by host).
//! Then, on the same simulator:
//! 1. the release `vmig report --format json` (wall time and peak RSS via GNU time) and
//! 2. the same SOAP requests sent by curl one after the other, responses written to disk
//!    and not parsed (the raw sequential transfer), alternately, `--repeat` times each;
//! 3. pyVmomi (target/venv-pyvmomi), twice: reading exactly vmig's properties with a
//!    `ContainerView` per compute resource and `RetrievePropertiesEx` (the baseline;
//!    vmig itself reads each compute resource with one traversal call and no view), and as a
//!    typical admin script must without agent documents (one view over all hosts and VMs,
//!    with the VMs' device lists); see `PY_MODES`.
//!
//! `--vmig-serve` then measures `vmig serve` on the same simulator (scale_serve.rs).
//!
//! `--serve` only starts the simulator and prints its URL; `--url` runs the clients against
//! such a simulator (the shape flags must match it), to measure without rebuilding the
//! inventory (minutes) each time.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vcenter_client::soap::encode::Request;
use vcenter_client::{ContainerViewRef, FilterSpec, MoRef, RetrieveOptions};
use vmig::inventory;
use vmig_testkit::{GpuConfig, GpuRule, TlsMode, Vcsim};

use crate::fleet::{A100, host_doc, now_rfc3339};
use crate::probe::{cpu_seconds, load_average};
use crate::scale_serve;

struct Options {
    clusters: u32,
    hosts: u32,
    vms: u32,
    gpus: u32,
    /// A prebuilt release `vmig` instead of building one.
    vmig: Option<PathBuf>,
    /// Only start the simulator, print how to reach it and keep it until stdin closes
    /// (for profiling one client at a time without rebuilding the inventory).
    serve: bool,
    /// Run the clients against this simulator instead of starting one (`--serve` prints it;
    /// credentials from GOVC_USERNAME / GOVC_PASSWORD). The shape flags must match it.
    url: Option<String>,
    /// Runs of vmig and of curl (the median is reported).
    repeat: u32,
    /// Leave pyVmomi out (its device-list variant takes minutes at full scale).
    skip_pyvmomi: bool,
    /// Also measure `vmig serve` (scale_serve.rs): initial sync, change latency, idle CPU, RSS.
    vmig_serve: bool,
    /// Document changes timed by `--vmig-serve`.
    changes: u32,
    /// Seconds of the idle CPU window of `--vmig-serve`.
    idle_s: u64,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        clusters: 25,
        hosts: 100,
        vms: 1600,
        gpus: 2,
        vmig: None,
        serve: false,
        url: None,
        repeat: 3,
        skip_pyvmomi: false,
        vmig_serve: false,
        changes: 3,
        idle_s: 60,
    };
    let mut args = super::args::Opts::new(
        args,
        "cargo xtask scale [--clusters N] [--hosts N] [--vms N-per-cluster] [--gpus N-per-host] [--vmig RELEASE-BINARY] [--serve | --url URL] [--repeat N] [--skip-pyvmomi] [--vmig-serve [--changes N] [--idle SECONDS]]",
    );
    while let Some(a) = args.next_flag() {
        match a {
            "--clusters" => o.clusters = args.parse(a)?,
            "--hosts" => o.hosts = args.parse(a)?,
            "--vms" => o.vms = args.parse(a)?,
            "--gpus" => o.gpus = args.parse(a)?,
            "--vmig" => o.vmig = Some(PathBuf::from(args.value(a)?)),
            "--serve" => o.serve = true,
            "--skip-pyvmomi" => o.skip_pyvmomi = true,
            "--vmig-serve" => o.vmig_serve = true,
            "--changes" => o.changes = args.parse::<u32>(a)?.clamp(1, 7),
            "--idle" => o.idle_s = args.parse(a)?,
            "--url" => o.url = Some(args.value(a)?.to_owned()),
            "--repeat" => o.repeat = args.parse::<u32>(a)?.max(1),
            other => return Err(args.unknown(other)),
        }
    }
    Ok(o)
}

/// The property paths `vmig report` reads of objects of `kind` (`HostSystem`,
/// `VirtualMachine`), taken from vmig's own request so pyVmomi reads the same.
fn vmig_paths(kind: &str) -> Vec<String> {
    inventory::compute_resource_spec(&MoRef::new("ClusterComputeResource", "any"))
        .props
        .into_iter()
        .find(|p| p.type_name == kind)
        .map(|p| p.paths)
        .unwrap_or_default()
}

/// Wall seconds and peak RSS (KiB) of a command, via GNU time.
fn timed(cmd: &mut Command) -> Result<(f64, u64, Output)> {
    let mut t = Command::new("/usr/bin/time");
    t.args(["-f", "VMIG-TIME %e %M"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    let out = t
        .output()
        .with_context(|| format!("cannot run {t:?} (GNU time: apt-get install time)"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("VMIG-TIME "))
        .with_context(|| format!("no timing from {t:?}: {err}"))?;
    let mut f = line.split_whitespace().skip(1);
    let wall: f64 = f.next().unwrap_or("0").parse()?;
    let rss: u64 = f.next().unwrap_or("0").parse()?;
    Ok((wall, rss, out))
}

/// The two pyVmomi clients: `same` reads exactly vmig's property sets the way vmig does (one
/// container view per compute resource); `devices` is what an admin script needs to build
/// the same report without agent documents: one container view over every host and VM,
/// the same host properties plus `parent` (to group by cluster) and the VMs' device lists
/// (`config.hardware.device`) to find their vGPUs.
const PY_MODES: [(&str, &str); 2] = [
    ("same", "same properties, view per cluster"),
    ("devices", "typical script, VM device lists"),
];

/// The pyVmomi client, written to the work directory and run with the venv's python.
const PYVMOMI: &str = include_str!("pyvmomi_report.py");

/// A tiny SOAP-over-curl client: one `curl` process per request, sequentially.
struct Curl {
    url: String,
    jar: PathBuf,
    dir: PathBuf,
    n: usize,
    bytes: u64,
    pc: MoRef,
    views: MoRef,
}

impl Curl {
    fn call(&mut self, body: String) -> Result<String> {
        self.n += 1;
        let req = self.dir.join("req.xml");
        let resp = self.dir.join("resp.xml");
        std::fs::write(&req, body)?;
        let out = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&resp)
            .args(["-w", "%{size_download}", "-b"])
            .arg(&self.jar)
            .arg("-c")
            .arg(&self.jar)
            .args([
                "-H",
                "Content-Type: text/xml; charset=\"utf-8\"",
                "-H",
                "SOAPAction: urn:vim25/6.5",
                "--data-binary",
            ])
            .arg(format!("@{}", req.display()))
            .arg(&self.url)
            .output()
            .context("run curl")?;
        if !out.status.success() {
            bail!("curl failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        self.bytes += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0);
        // Only small answers are read back (view ids, morefs); big ones stay on disk.
        let len = std::fs::metadata(&resp)?.len();
        if len < 4 << 20 {
            Ok(std::fs::read_to_string(&resp)?)
        } else {
            Ok(String::new())
        }
    }
}

/// `<tag type="Kind">value</tag>` values of `kind` in `xml`.
fn morefs(xml: &str, kind: &str) -> Vec<MoRef> {
    let needle = format!("type=\"{kind}\">");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&needle) {
        let tail = &rest[i + needle.len()..];
        let end = tail.find('<').unwrap_or(0);
        let v = &tail[..end];
        if !out.iter().any(|m: &MoRef| m.value() == v) {
            out.push(MoRef::new(kind, v));
        }
        rest = &tail[end..];
    }
    out
}

/// `RetrievePropertiesEx` as vmig's client encodes it (`FilterSpec::retrieve_request`), so
/// curl sends the very bytes vmig sends.
fn retrieve(pc: &MoRef, spec: &FilterSpec) -> Result<String> {
    Ok(spec.retrieve_request(pc, RetrieveOptions::default())?)
}

/// The names of `type_name` objects below `container` through a temporary view, as
/// `Client::for_each_object_in` reads them: create, retrieve, destroy.
fn with_view(curl: &mut Curl, container: &MoRef, type_name: &str) -> Result<String> {
    let mut r = Request::new("CreateContainerView", &curl.views);
    r.moref("container", container);
    r.text("type", type_name)?;
    r.bool("recursive", true);
    let resp = curl.call(r.finish())?;
    let view = morefs(&resp, "ContainerView")
        .into_iter()
        .next()
        .with_context(|| format!("no view in {resp}"))?;
    let view = ContainerViewRef::try_from(view)?;
    let spec = FilterSpec::container_view(&view, type_name, &["name"]);
    let out = curl.call(retrieve(&curl.pc.clone(), &spec)?)?;
    curl.call(Request::new("DestroyView", view.as_moref()).finish())?;
    Ok(out)
}

fn curl_transfer(url: &str, user: &str, password: &str, dir: &Path) -> Result<(f64, usize, u64)> {
    let mut curl = Curl {
        url: url.to_string(),
        jar: dir.join("cookies"),
        dir: dir.to_path_buf(),
        n: 0,
        bytes: 0,
        pc: MoRef::new("PropertyCollector", "propertyCollector"),
        views: MoRef::new("ViewManager", "ViewManager"),
    };
    let _ = std::fs::remove_file(&curl.jar);
    let start = Instant::now();
    let sc = curl.call(
        Request::new(
            "RetrieveServiceContent",
            &MoRef::new("ServiceInstance", "ServiceInstance"),
        )
        .finish(),
    )?;
    let manager = |tag: &str| -> Result<MoRef> {
        let open = format!("<{tag} type=\"");
        let i = sc
            .find(&open)
            .with_context(|| format!("no {tag} in the service content"))?;
        let tail = &sc[i + open.len()..];
        let (kind, rest) = tail.split_once("\">").context("malformed moref")?;
        let value = rest.split('<').next().unwrap_or_default();
        Ok(MoRef::new(kind, value))
    };
    let (pc, views, fields, sessions, root) = (
        manager("propertyCollector")?,
        manager("viewManager")?,
        manager("customFieldsManager")?,
        manager("sessionManager")?,
        manager("rootFolder")?,
    );
    curl.pc = pc.clone();
    curl.views = views;
    let mut login = Request::new("Login", &sessions);
    login.text("userName", user)?;
    login.text("password", password)?;
    curl.call(login.finish())?;
    // Custom field definitions (`Client::custom_field_defs`).
    curl.call(retrieve(
        &pc,
        &FilterSpec::objects(fields.kind(), [&fields], &["field"]),
    )?)?;
    let dcs = with_view(&mut curl, &root, "Datacenter")?;
    for dc in morefs(&dcs, "Datacenter") {
        let crs = with_view(&mut curl, &dc, "ComputeResource")?;
        let mut all = morefs(&crs, "ClusterComputeResource");
        all.extend(morefs(&crs, "ComputeResource"));
        for cr in all {
            curl.call(retrieve(&pc, &inventory::compute_resource_spec(&cr))?)?;
        }
    }
    Ok((start.elapsed().as_secs_f64(), curl.n, curl.bytes))
}

/// Starts the simulator with the benchmark's inventory and agent documents.
fn start_vcsim(o: &Options) -> Result<Vcsim> {
    let observed = now_rfc3339();
    let mut builder = Vcsim::builder()
        .clusters(o.clusters)
        .hosts_per_cluster(o.hosts)
        .standalone_hosts(0)
        .vms(o.vms)
        .tls(TlsMode::Plain)
        .start_timeout(Duration::from_secs(1800))
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters("DC0_C*").gpu(A100, o.gpus)));
    let mut doc_bytes = 0;
    for c in 0..o.clusters {
        for h in 0..o.hosts {
            let doc = host_doc(c * o.hosts + h, o.gpus, &observed).to_json();
            doc_bytes += doc.len();
            builder = builder.custom_value(&format!("DC0_C{c}_H{h}"), "vmig.mig", &doc);
        }
    }
    eprintln!(
        "scale: starting vcsim with {} clusters x {} hosts = {} hosts, {} VMs, {} GPUs/host, {} KiB of agent documents",
        o.clusters,
        o.hosts,
        o.clusters * o.hosts,
        o.clusters * o.vms,
        o.gpus,
        doc_bytes / 1024
    );
    let t0 = Instant::now();
    let vc = builder.start().map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "scale: vcsim ready in {:.0} s at {}",
        t0.elapsed().as_secs_f64(),
        vc.url()
    );
    Ok(vc)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let root = super::root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let vmig = match &o.vmig {
        Some(bin) => bin.clone(),
        None => {
            super::run(super::cargo().args(["build", "--release", "-p", "vmig", "--bin", "vmig"]))?;
            target.join("release").join("vmig")
        }
    };
    let work = target.join("scale");
    std::fs::create_dir_all(&work)?;

    let vc = VcenterUnderTest::new(&o)?;
    if o.serve {
        println!(
            "GOVC_URL={} GOVC_USERNAME={} GOVC_PASSWORD={}",
            vc.url, vc.username, vc.password
        );
        eprintln!("scale: serving until stdin closes");
        std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())?;
        return Ok(());
    }
    let load_before = load_average();
    let runs = run_vmig_and_curl(&o, &vmig, &vc, &work)?;
    let py = run_pyvmomi(&o, &root, &work, &vc)?;
    let serve = if o.vmig_serve {
        let target = scale_serve::Target {
            url: &vc.url,
            username: &vc.username,
            password: &vc.password,
            host: "DC0_C0_H0",
            doc: host_doc(0, o.gpus, &now_rfc3339()),
        };
        Some(scale_serve::measure(
            &vmig,
            &target,
            o.changes,
            Duration::from_secs(o.idle_s),
        )?)
    } else {
        None
    };
    println!("{}", summary(&o, &load_before, &runs, &py)?);
    if let Some(f) = serve {
        println!(
            "{}",
            serve_summary(&f, median(runs.vmig.iter().map(|r| r.0).collect()))?
        );
    }
    Ok(())
}

/// The vCenter the clients read: a simulator of our own, or one already served (`--url`,
/// e.g. by `--serve`).
struct VcenterUnderTest {
    /// Kept for its `Drop`, which stops the simulator.
    _vcsim: Option<Vcsim>,
    /// The simulator's PID when it is ours (to read its CPU time).
    pid: Option<u32>,
    url: String,
    username: String,
    password: String,
}

impl VcenterUnderTest {
    fn new(o: &Options) -> Result<Self> {
        if let Some(url) = &o.url {
            return Ok(Self {
                _vcsim: None,
                pid: None,
                url: url.clone(),
                username: std::env::var("GOVC_USERNAME").unwrap_or_else(|_| "user".into()),
                password: std::env::var("GOVC_PASSWORD").unwrap_or_else(|_| "pass".into()),
            });
        }
        if std::env::var_os("GOGC").is_none() {
            // The simulator holds a 1.7 GB heap at full scale; with Go's default GOGC=100
            // a collection (seconds of CPU on this 2-core machine) lands on every second
            // client run, always the same one when clients alternate. GOGC=300 makes it
            // rare; it applies to every client alike. Set GOGC yourself to override.
            set_gogc();
        }
        let vc = start_vcsim(o)?;
        Ok(Self {
            pid: vc.pid(),
            url: vc.url().to_string(),
            username: vc.username().to_string(),
            password: vc.password().to_string(),
            _vcsim: Some(vc),
        })
    }
}

#[allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; the simulator inherits GOGC from this process"
)]
fn set_gogc() {
    // SAFETY: called from `run` before this process starts any thread or child, so nothing
    // reads the environment concurrently.
    unsafe { std::env::set_var("GOGC", "300") };
}

/// Timings of the alternating vmig and curl runs.
struct Runs {
    /// (wall s, peak RSS KiB) per vmig run.
    vmig: Vec<(f64, u64)>,
    /// Wall s per curl run.
    curl: Vec<f64>,
    /// Requests and bytes of one curl run.
    requests: usize,
    bytes: u64,
}

/// Clients 1 (vmig) and 3 (curl), alternately, `--repeat` times each: the simulator's
/// garbage collector (a 1.7 GB heap at full scale) runs every few clients and costs seconds,
/// so alternating spreads it over both.
fn run_vmig_and_curl(o: &Options, vmig: &Path, vc: &VcenterUnderTest, work: &Path) -> Result<Runs> {
    let (url, username, password, vcsim_pid) = (&vc.url, &vc.username, &vc.password, vc.pid);
    let out_json = work.join("report.json");
    let mut vmig_runs = Vec::new();
    let mut curl_runs = Vec::new();
    let (mut requests, mut bytes) = (0, 0);
    for _ in 0..o.repeat {
        let cpu0 = cpu_seconds(vcsim_pid);
        let (wall, rss, out) = timed(
            Command::new(vmig)
                // The simulator serves plain HTTP, which vmig accepts only with --insecure.
                .args([
                    "--url",
                    url,
                    "--insecure",
                    "report",
                    "--format",
                    "json",
                    "-o",
                ])
                .arg(&out_json)
                .env("GOVC_USERNAME", username)
                .env("GOVC_PASSWORD", password),
        )?;
        if !out.status.success() {
            bail!(
                "vmig report failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!(
            "scale: vmig report: {wall:.2} s, {rss} KiB peak RSS (load {}, simulator CPU {})",
            load_average(),
            cpu_delta(cpu0, vcsim_pid)
        );
        vmig_runs.push((wall, rss));
        let cpu0 = cpu_seconds(vcsim_pid);
        let (wall, n, b) = curl_transfer(url, username, password, work)?;
        eprintln!(
            "scale: curl: {wall:.2} s for {n} requests, {} MiB (load {}, simulator CPU {})",
            b >> 20,
            load_average(),
            cpu_delta(cpu0, vcsim_pid)
        );
        (requests, bytes) = (n, b);
        curl_runs.push(wall);
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_json)?)?;
    let seen_hosts: usize = report["vcenters"][0]["datacenters"]
        .as_array()
        .map(|d| {
            d.iter()
                .flat_map(|d| d["clusters"].as_array().into_iter().flatten())
                .map(|c| c["hosts"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0);
    eprintln!("scale: {seen_hosts} hosts in vmig's report");
    Ok(Runs {
        vmig: vmig_runs,
        curl: curl_runs,
        requests,
        bytes,
    })
}

/// Client 2, pyVmomi, both ways: (label, wall s, peak RSS KiB) per mode; none when skipped.
fn run_pyvmomi(
    o: &Options,
    root: &Path,
    work: &Path,
    vc: &VcenterUnderTest,
) -> Result<Vec<(&'static str, f64, u64)>> {
    let python = root.join("target/venv-pyvmomi/bin/python");
    let mut py = Vec::new();
    if o.skip_pyvmomi {
        eprintln!("scale: pyVmomi skipped (--skip-pyvmomi)");
    } else if python.exists() {
        let script = work.join("pyvmomi_report.py");
        std::fs::write(&script, PYVMOMI)?;
        let (host, port) = host_port(&vc.url)?;
        for (mode, label) in PY_MODES {
            let (wall, rss, out) = timed(
                Command::new(&python)
                    .arg(&script)
                    .args([host.as_str(), &port.to_string(), &vc.username, &vc.password])
                    .arg(serde_json::to_string(&vmig_paths("HostSystem"))?)
                    .arg(serde_json::to_string(&vmig_paths("VirtualMachine"))?)
                    .arg(mode),
            )?;
            if !out.status.success() {
                bail!(
                    "pyVmomi script ({mode}) failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            eprintln!(
                "scale: pyVmomi, {label}: {wall:.2} s, {rss} KiB peak RSS, {} (load {})",
                String::from_utf8_lossy(&out.stdout).trim(),
                load_average()
            );
            py.push((label, wall, rss));
        }
    } else {
        eprintln!(
            "scale: {} missing (scripts/deps.d/30-pyvmomi.sh makes it); pyVmomi skipped",
            python.display()
        );
    }
    Ok(py)
}

/// The table docs/performance.md quotes.
fn summary(o: &Options, load_before: &str, runs: &Runs, py: &[(&str, f64, u64)]) -> Result<String> {
    let hosts = o.clusters * o.hosts;
    let vmig_walls: Vec<f64> = runs.vmig.iter().map(|r| r.0).collect();
    let vmig_wall = median(vmig_walls.clone());
    let vmig_best = vmig_walls.iter().copied().fold(f64::INFINITY, f64::min);
    let vmig_rss = runs.vmig.iter().map(|r| r.1).max().unwrap_or(0);
    let curl_best = runs.curl.iter().copied().fold(f64::INFINITY, f64::min);
    let curl_wall = median(runs.curl.clone());
    let (requests, bytes) = (runs.requests, runs.bytes);

    let mut s = String::new();
    writeln!(
        s,
        "\nvmig at vCenter scale: {hosts} hosts ({} clusters x {}), {} VMs, {} A100 per host, agent documents on every host",
        o.clusters,
        o.hosts,
        o.clusters * o.vms,
        o.gpus
    )?;
    writeln!(
        s,
        "load average (1 min): {load_before} before, {} after; GOGC={} for the simulator; vmig and curl: median of {} runs, alternating",
        load_average(),
        match (&o.url, std::env::var("GOGC")) {
            (None, Ok(v)) => v,
            _ => "as the served one was started (300 unless set)".into(),
        },
        o.repeat
    )?;
    writeln!(s, "{:<44} {:>9} {:>14}", "client", "wall s", "peak RSS MiB")?;
    writeln!(
        s,
        "{:<44} {:>9.2} {:>14.1}",
        "vmig report --format json",
        vmig_wall,
        vmig_rss as f64 / 1024.0
    )?;
    for (label, w, r) in py {
        writeln!(
            s,
            "{:<44} {:>9.2} {:>14.1}",
            format!("pyVmomi, {label}"),
            w,
            *r as f64 / 1024.0
        )?;
    }
    writeln!(
        s,
        "{:<44} {:>9.2} {:>14}",
        format!("curl, {requests} requests sequential ({} MiB)", bytes >> 20),
        curl_wall,
        "-"
    )?;
    for (label, w, _) in py {
        writeln!(
            s,
            "speed-up over pyVmomi, {label}: {:.1}x (target >= 8x)",
            w / vmig_wall
        )?;
    }
    writeln!(
        s,
        "vmig / sequential transfer: {:.2} (target <= 1.0); best runs: {vmig_best:.2} s / {curl_best:.2} s = {:.2}",
        vmig_wall / curl_wall,
        vmig_best / curl_best
    )?;
    writeln!(
        s,
        "vmig peak RSS: {:.1} MiB (target <= 60 MB)",
        vmig_rss as f64 / 1024.0
    )?;
    Ok(s)
}

/// The `vmig serve` figures docs/performance.md quotes.
fn serve_summary(f: &scale_serve::ServeFigures, report_s: f64) -> Result<String> {
    let mut s = String::new();
    writeln!(
        s,
        "vmig serve (load average 1 min at the end: {}; uptime: {})",
        f.load,
        uptime()
    )?;
    writeln!(
        s,
        "initial sync: {:.2} s ({:.2} s CPU), {:.2}x the median vmig report ({report_s:.2} s; target <= 1.5x); RSS then {:.1} MiB",
        f.sync_s,
        f.sync_cpu_s,
        f.sync_s / report_s,
        f.sync_rss_kib as f64 / 1024.0
    )?;
    writeln!(
        s,
        "settled (the start-up's check read done) after {:.2} s; changes are written after that",
        f.settled_s
    )?;
    writeln!(
        s,
        "/metrics {:.1} MiB, / {:.1} MiB",
        f.metrics_bytes as f64 / 1048576.0,
        f.page_bytes as f64 / 1048576.0
    )?;
    for (i, (w, m, p)) in f.changes.iter().enumerate() {
        writeln!(
            s,
            "change {}: SetField {w:.3} s; in /metrics after {m:.3} s; event + page fetched after {p:.3} s (target <= 2 s)",
            i + 1
        )?;
    }
    writeln!(
        s,
        "idle: {:.2} s CPU over {:.0} s = {:.2} % of a core (target < 1 %); RSS {:.1} MiB, peak {:.1} MiB (target <= 150 MB)",
        f.idle_cpu_s,
        f.idle_s,
        100.0 * f.idle_cpu_s / f.idle_s,
        f.rss_kib as f64 / 1024.0,
        f.peak_rss_kib as f64 / 1024.0
    )?;
    Ok(s)
}

/// `uptime`'s line (the machine is shared: its load averages go with the figures).
fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn cpu_delta(before: Option<f64>, pid: Option<u32>) -> String {
    match (before, cpu_seconds(pid)) {
        (Some(a), Some(b)) => format!("{:.2} s", b - a),
        _ => "?".into(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Host and port of an `http://host:port/sdk` URL.
fn host_port(url: &str) -> Result<(String, u16)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: the benchmark speaks plain http"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority
        .rsplit_once(':')
        .with_context(|| format!("{url}: no port"))?;
    Ok((host.to_string(), port.parse().context("port")?))
}
