//! `cargo xtask footprint [--minutes N] [--gpus N] [--poll S] [--sample S] [--all-vgpus]`:
//! how much the resident
//! `vmig-agent run` costs on a host. A benchmark, not a test: it prints figures for
//! docs/performance.md ("Agent footprint") and asserts nothing.
//!
//! Set-up: release builds of `vmig-agent` and the simulated NVML, a simulated host with N
//! (default 8) H100-SXM5-80GB GPUs with MIG on and every GPU fully split into 1g.10gb GIs
//! with one CI each (the largest document), two of them backing active vGPUs, and govmomi's
//! vCenter simulator. The agent runs at the default poll interval (5 s) for N minutes
//! (default 3); after a 20 s warm-up it samples its own /proc entries. The simulated NVML
//! counts the agent's NVML calls and writes the total at the agent's `nvmlShutdown`
//! (`NVML_SIM_CALL_COUNT_FILE`), which gives the calls per poll. Utilization sampling runs at
//! `--sample` seconds (default 10, the agent's default; 0 turns it off); `--all-vgpus` makes
//! every GI back a running vGPU with a simulated load (`nvml-sim load`), so the agent samples
//! and summarises all 56 of them.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mig::report::{FIELD_DOCUMENT, FIELD_SUMMARY, HostReport};
use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, TlsPolicy};
use vmig_testkit::Vcsim;

struct Options {
    minutes: f64,
    gpus: u32,
    poll_s: u64,
    sample_s: u64,
    all_vgpus: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        minutes: 3.0,
        gpus: 8,
        poll_s: 5,
        sample_s: 10,
        all_vgpus: false,
    };
    let mut args = super::args::Opts::new(
        args,
        "cargo xtask footprint [--minutes N] [--gpus N] [--poll S] [--sample S] [--all-vgpus]",
    );
    while let Some(a) = args.next_flag() {
        match a {
            "--minutes" => o.minutes = args.parse(a)?,
            "--gpus" => o.gpus = args.parse(a)?,
            "--poll" => o.poll_s = args.parse(a)?,
            "--sample" => o.sample_s = args.parse(a)?,
            "--all-vgpus" => o.all_vgpus = true,
            other => return Err(args.unknown(other)),
        }
    }
    Ok(o)
}

/// Kills the agent if the benchmark stops early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let bins = build_release()?;
    let dir = tempfile_dir()?;
    let state = dir.join("nvml-sim.json");
    prepare_gpus(&o, &bins, &state)?;

    eprintln!("xtask: starting the vCenter simulator");
    let vc = Vcsim::builder().start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let ca = vc.ca_pem_path().context("TLS simulator")?.to_path_buf();
    let connect = || {
        rt.block_on(Client::connect(ConnectOptions::new(
            vc.url(),
            Credentials::new(vc.username(), vc.password()),
            TlsPolicy::CaFile(ca.clone()),
        )))
    };
    let client = connect()?;
    let hosts = rt.block_on(client.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))?;
    let host = hosts.first().context("the simulator has no host")?;
    let host_name = host.name.clone().unwrap_or_default();
    let uuid = host
        .bios_uuid
        .as_ref()
        .context("host without BIOS UUID")?
        .to_string();

    let password = dir.join("password");
    std::fs::write(&password, vc.password())?;
    set_private(&password)?;
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[vcenter]\nurl = {:?}\nusername = {:?}\npassword_file = \"password\"\nca_file = {:?}\n\n[host]\nuuid = {uuid:?}\n\n\
             [agent]\npoll_interval_s = {}\nsample_interval_s = {}\nnvml_lib = {:?}\n",
            vc.url(),
            vc.username(),
            ca.display().to_string(),
            o.poll_s,
            o.sample_s,
            bins.nvml_lib.display().to_string(),
        ),
    )?;
    let log = dir.join("agent.log");
    let calls_file = dir.join("nvml-calls");
    let spawned = Instant::now();
    let child = Command::new(&bins.agent)
        .args(["run", "--config"])
        .arg(&config)
        .env("NVML_SIM_STATE", &state)
        .env("NVML_SIM_CALL_COUNT_FILE", &calls_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("start vmig-agent")?;
    let mut agent = Guard(child);
    let usage = measure(&o, &mut agent, &log)?;

    let values = rt.block_on(async {
        let defs = client.custom_field_defs().await?;
        let host = rt_host(&client, &host_name).await?;
        let get = |name: &str| {
            defs.iter()
                .find(|d| d.name == name)
                .and_then(|d| host.custom_values.get(d.key))
                .map(str::to_string)
                .unwrap_or_default()
        };
        anyhow::Ok((get(FIELD_DOCUMENT), get(FIELD_SUMMARY)))
    })?;
    let (document, summary) = values;
    let report =
        HostReport::from_json(&document).context("no valid vmig.mig document was published")?;
    let gis: usize = report.gpus.iter().map(|g| g.gpu_instances.len()).sum();
    let publications = std::fs::read_to_string(&log)?.matches(" published").count();

    let pid = agent.0.id();
    let term = Instant::now();
    // SIGTERM through kill(1): the benchmark is a tool, not the daemon, so spawning is fine.
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    let status = agent.0.wait()?;
    let stop = term.elapsed();
    // One poll at start, then one per interval until SIGTERM.
    let polls = (term - spawned).as_secs() / o.poll_s.max(1) + 1;
    let calls: Option<u64> = std::fs::read_to_string(&calls_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()));

    let sampled: usize = report
        .usage
        .as_ref()
        .map_or(0, |u| u.gpus.iter().map(|g| g.gpu_instances.len()).sum());
    println!(
        "vmig-agent footprint ({} GPUs × 7 GIs = {gis} GIs, poll {} s, sampling {}, {:.1} min, release build)",
        o.gpus,
        o.poll_s,
        if o.sample_s == 0 {
            "off".to_string()
        } else {
            format!("{} s", o.sample_s)
        },
        o.minutes
    );
    println!("  GIs with utilization in the document:          {sampled}");
    usage.print();
    println!(
        "  published document (vmig.mig):                 {} bytes ({:.1} KiB)",
        document.len(),
        document.len() as f64 / 1024.0
    );
    println!(
        "  summary (vmig.mig.summary):                    {} bytes: {summary}",
        summary.len()
    );
    println!("  publications during the run:                   {publications}");
    match calls {
        Some(calls) => println!(
            "  NVML calls:                                    {calls} in {polls} polls ≈ {:.0} per poll (the first reads everything)",
            calls as f64 / polls as f64
        ),
        None => println!(
            "  NVML calls:                                    not reported (no {} written)",
            calls_file.display()
        ),
    }
    println!("  SIGTERM → exit:                                {stop:?} ({status})");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The release binaries the benchmark runs.
struct Bins {
    agent: PathBuf,
    sim: PathBuf,
    nvml_lib: PathBuf,
}

fn build_release() -> Result<Bins> {
    let root = super::root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    super::run(super::cargo().args([
        "build",
        "--release",
        "-p",
        "vmig-agent",
        "--bin",
        "vmig-agent",
    ]))?;
    super::run(super::cargo().args(["build", "--release", "-p", "nvml-sim"]))?;
    let release = target.join("release");
    Ok(Bins {
        agent: release.join("vmig-agent"),
        sim: release.join("nvml-sim"),
        nvml_lib: release.join("libnvml_sim.so"),
    })
}

/// The simulated host: `o.gpus` H100s, each split into seven 1g.10gb GIs with one CI, two
/// GIs of GPU 0 backing running vGPUs.
fn prepare_gpus(o: &Options, bins: &Bins, state: &Path) -> Result<()> {
    let sim = |args: &[&str]| -> Result<String> {
        let out = Command::new(&bins.sim)
            .arg("--state")
            .arg(state)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "nvml-sim {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut init = vec!["init", "--mig"];
    for _ in 0..o.gpus {
        init.extend(["--gpu", "h100-sxm5-80gb"]);
    }
    sim(&init)?;
    let full = ["1g.10gb"; 7].join(",");
    for i in 0..o.gpus {
        let gpu = i.to_string();
        let out = Command::new(&bins.agent)
            .arg("--nvml-lib")
            .arg(&bins.nvml_lib)
            .args(["mig", "cgi", "-i", &gpu, &full, "-C"])
            .env("NVML_SIM_STATE", state)
            .output()?;
        if !out.status.success() {
            bail!("cgi on GPU {i}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    // Two GIs back running VMs' vGPUs, so the document carries vm / vgpu_type fields too.
    let model = mig::GpuModel::by_key("h100-sxm5-80gb").context("catalog")?;
    let vgpu_type = model
        .gi_profile_by_name("1g.10gb")
        .and_then(|p| mig::vgpu::vgpu_types_for(model, p).into_iter().next())
        .context("vGPU type of 1g.10gb")?;
    let lgi = Command::new(&bins.agent)
        .arg("--nvml-lib")
        .arg(&bins.nvml_lib)
        .args(["--json", "mig", "lgi", "-i", "0"])
        .env("NVML_SIM_STATE", state)
        .output()?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&lgi.stdout).context("lgi --json")?;
    let gi_ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r["gi_id"].as_u64())
        .map(|g| g.to_string())
        .collect();
    if !o.all_vgpus {
        for (gi, vm) in gi_ids.iter().zip(["render-01", "render-02"]) {
            sim(&[
                "occupy", "-i", "0", "--gi", gi, "--vgpu", &vgpu_type, "--vm", vm,
            ])?;
        }
        return Ok(());
    }
    // Every GI of every GPU backs a VM whose load alternates between two levels.
    for i in 0..o.gpus {
        let gpu = i.to_string();
        let lgi = Command::new(&bins.agent)
            .arg("--nvml-lib")
            .arg(&bins.nvml_lib)
            .args(["--json", "mig", "lgi", "-i", &gpu])
            .env("NVML_SIM_STATE", state)
            .output()?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&lgi.stdout).context("lgi --json")?;
        for gi in rows.iter().filter_map(|r| r["gi_id"].as_u64()) {
            let (gi, vm) = (gi.to_string(), format!("vm-{i}-{gi}"));
            sim(&[
                "occupy", "-i", &gpu, "--gi", &gi, "--vgpu", &vgpu_type, "--vm", &vm,
            ])?;
            sim(&[
                "load",
                "--vm",
                &vm,
                "--phase",
                "sm=20,mem=10,fb=3000,s=40",
                "--phase",
                "sm=85,mem=50,fb=8000,s=20",
            ])?;
        }
    }
    Ok(())
}

/// What the agent cost while it ran, from its /proc entries.
struct Usage {
    steady_rss_kib: u64,
    hwm_kib: u64,
    cpu_pct: f64,
    measured: Duration,
    threads: u64,
}

impl Usage {
    fn print(&self) {
        println!(
            "  RSS steady state (max of 2nd half of samples): {:.1} MiB",
            self.steady_rss_kib as f64 / 1024.0
        );
        println!(
            "  RSS high-water mark (VmHWM):                   {:.1} MiB",
            self.hwm_kib as f64 / 1024.0
        );
        println!(
            "  CPU over {:.0} s after warm-up:                 {:.3} % of one core",
            self.measured.as_secs_f64(),
            self.cpu_pct
        );
        println!(
            "  threads:                                       {}",
            self.threads
        );
    }
}

/// Lets the agent warm up, then samples its RSS every 5 s and its CPU time over the rest of
/// `o.minutes`; fails if it exits early.
fn measure(o: &Options, agent: &mut Guard, log: &Path) -> Result<Usage> {
    let pid = agent.0.id();
    let total = Duration::from_secs_f64(o.minutes * 60.0);
    let warmup = Duration::from_secs(20).min(total / 4);
    eprintln!("xtask: agent pid {pid}; warming up {warmup:?}, then measuring until {total:?}");
    let started = Instant::now();
    std::thread::sleep(warmup);
    let ticks = clock_ticks();
    let (cpu0, t0) = (cpu_ticks(pid)?, Instant::now());
    let mut rss = Vec::new();
    while started.elapsed() < total {
        std::thread::sleep(Duration::from_secs(5));
        if let Some(status) = agent.0.try_wait()? {
            bail!(
                "vmig-agent exited early ({status}); log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log)?
            );
        }
        rss.push(status_kib(pid, "VmRSS")?);
    }
    let (cpu1, t1) = (cpu_ticks(pid)?, Instant::now());
    let hwm_kib = status_kib(pid, "VmHWM")?;
    let threads = status_kib(pid, "Threads")?;
    let cpu_pct = (cpu1 - cpu0) as f64 / ticks / (t1 - t0).as_secs_f64() * 100.0;
    Ok(Usage {
        steady_rss_kib: rss.iter().skip(rss.len() / 2).copied().max().unwrap_or(0),
        hwm_kib,
        cpu_pct,
        measured: t1 - t0,
        threads,
    })
}

async fn rt_host(client: &Client, name: &str) -> Result<vcenter_client::HostSystem> {
    client
        .hosts(&[HostProperty::Name, HostProperty::CustomValues])
        .await?
        .into_iter()
        .find(|h| h.name.as_deref() == Some(name))
        .with_context(|| format!("host {name} disappeared"))
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("vmig-footprint-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: field 3 is index 0, so utime (14) is index 11, stime (15) 12.
    Ok(fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?)
}

/// A numeric field of /proc/PID/status (kB values or counts).
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .with_context(|| format!("{key} in status"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

/// Clock ticks per second (USER_HZ). 100 on every Linux this runs on; read from getconf to be
/// sure, since this is a tool and may spawn.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
