//! `cargo xtask demo`: vmig's main job, end to end, on the embedded default — no GPU, no
//! vCenter. It starts govmomi's vCenter simulator with 2 clusters and 4 GPU hosts
//! (A100-40GB, A100-80GB, 2× H100 80GB), gives each host its own simulated GPU (`nvml-sim`
//! state file), lays out MIG on two of them with `vmig-agent apply`, runs one `vmig-agent run`
//! per host, assigns a VM to `grid_a100-3-20c` with `vmig assign`, prints `vmig report` and
//! writes the HTML report. Everything it starts is stopped at the end (or on Ctrl-C: the
//! children share the terminal's process group and stop on the same SIGINT), and every file
//! it writes is under `target/demo/`.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use mig::report::{FIELD_DOCUMENT, HostReport};
use vcenter_client::{
    Client, ConnectOptions, Credentials, HostProperty, TaskWait, TlsPolicy, VmProperty,
};
use vmig_testkit::{ChildGuard, GpuConfig, GpuRule, Vcsim};

use crate::{cargo, root, run};

/// The four GPU hosts of the demo: (vCenter host name, nvml-sim model key, GPUs).
const HOSTS: [(&str, &str, u32); 4] = [
    ("DC0_C0_H0", "a100-pcie-40gb", 2),
    ("DC0_C0_H1", "a100-pcie-80gb", 1),
    ("DC0_C1_H0", "h100-sxm5-80gb", 1),
    ("DC0_C1_H1", "h100-sxm5-80gb", 1),
];
/// Poll interval of the demo's agents: short, so the demo does not wait long.
const POLL_S: u64 = 2;

struct Bins {
    agent: PathBuf,
    vmig: PathBuf,
    sim: PathBuf,
    lib: PathBuf,
}

pub fn demo() -> Result<()> {
    let (bins, work) = build_and_clear()?;

    step("starting the vCenter simulator: 2 clusters, 4 GPU hosts");
    let vc = start_vcenter(&work)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = rt
        .block_on(Client::connect(ConnectOptions::new(
            vc.sim.url(),
            Credentials::new(vc.sim.username(), vc.sim.password()),
            TlsPolicy::CaFile(vc.ca.clone()),
        )))
        .context("cannot log in to the simulator")?;
    let hosts = rt.block_on(client.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))?;

    step("simulated GPUs: one nvml-sim state file per host, MIG enabled");
    let states = init_gpus(&bins, &work)?;

    step(
        "MIG layouts: seed-mixed (3g.20gb + 2g.10gb + 1g.5gb + 1g.5gb) on DC0_C0_H0, all-balanced on DC0_C1_H0",
    );
    // GPU 0 only: the host's second A100 stays empty, for vSphere to place vGPU VMs on.
    agent_cli(&bins, &states[0], &["apply", "-c", "seed-mixed", "-i", "0"])?;
    agent_cli(&bins, &states[2], &["apply", "-c", "all-balanced"])?;
    agent_cli(&bins, &states[0], &["mig", "lgi"])?;

    step("a running MIG-backed vGPU VM on DC0_C1_H1 (what ESXi's vGPU manager does at power-on)");
    let vms = rt.block_on(client.vms(&[VmProperty::Name, VmProperty::Host]))?;
    let h1 = hosts
        .iter()
        .find(|h| h.name.as_deref() == Some("DC0_C1_H1"))
        .context("the simulator has no host DC0_C1_H1")?;
    let running = vms
        .iter()
        .find(|v| v.host.as_ref() == Some(&h1.moref))
        .and_then(|v| v.name.clone())
        .context("the simulator has no VM on DC0_C1_H1")?;
    start_vgpu(&bins, &states[3], &running)?;

    step("starting one vmig-agent per host");
    let uuid_of = |name: &str| -> Result<String> {
        hosts
            .iter()
            .find(|h| h.name.as_deref() == Some(name))
            .and_then(|h| h.bios_uuid.as_ref().map(|u| u.to_string()))
            .with_context(|| format!("the simulator has no host {name}"))
    };
    let mut agents = Vec::new();
    for ((host, _, _), state) in HOSTS.iter().zip(&states) {
        agents.push(start_agent(
            &bins,
            &vc,
            &work,
            host,
            &uuid_of(host)?,
            state,
        )?);
    }
    wait_published(&rt, &client, &HOSTS.map(|(h, _, _)| h))?;

    step("assigning a powered-off VM to grid_a100-3-20c with vmig assign");
    let vm = rt
        .block_on(client.vms(&[VmProperty::Name]))?
        .into_iter()
        .filter_map(|v| v.name.clone().map(|n| (n, v)))
        .find(|(n, _)| n.starts_with("DC0_C0_"))
        .context("the simulator has no VM in cluster DC0_C0")?;
    rt.block_on(async {
        let task = client.power_off_vm(&vm.1.moref).await?;
        client.wait_for_task(&task, TaskWait::default()).await
    })
    .with_context(|| format!("cannot power off {}", vm.0))?;
    let _ = rt.block_on(client.logout());
    vc.vmig(
        &bins,
        &["assign", "--vm", &vm.0, "--profile", "grid_a100-3-20c"],
    )?;

    step("vmig report");
    vc.vmig(&bins, &["report", "--format", "table"])?;
    let html = work.join("report.html");
    let html_arg = html.display().to_string();
    vc.vmig(&bins, &["report", "--format", "html", "-o", &html_arg])?;
    println!("\nHTML report: {}", html.display());

    step("stopping everything the demo started");
    for mut agent in agents {
        let _ = agent.stop();
    }
    drop(vc);
    println!("  done; all files are under {}", work.display());
    Ok(())
}

/// Builds the demo's programs; returns them and a fresh `target/demo/`, which also becomes
/// this process's (and so its children's) temporary directory.
fn build_and_clear() -> Result<(Bins, PathBuf)> {
    let root = root();
    // Only Go and govmomi (the vCenter simulator): the demo needs none of the test tools.
    run(Command::new("bash").args(["scripts/install-deps.sh", "20-go-vcsim"]))?;
    run(cargo().args([
        "build",
        "-p",
        "nvml-sim",
        "-p",
        "vmig-agent",
        "-p",
        "vmig",
        "--bins",
        "--lib",
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    let debug = target.join("debug");
    let bins = Bins {
        agent: debug.join("vmig-agent"),
        vmig: debug.join("vmig"),
        sim: debug.join("nvml-sim"),
        lib: debug.join("libnvml_sim.so"),
    };
    let work = target.join("demo");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("cannot clear {}", work.display()))?;
    }
    let tmp = work.join("tmp");
    fs::create_dir_all(&tmp)?;
    set_tmpdir(&tmp);
    Ok((bins, work))
}

#[allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe in edition 2024; TMPDIR must reach the harness's own tempfile calls too"
)]
fn set_tmpdir(tmp: &Path) {
    // SAFETY: called before this process starts any thread (the tokio runtime and every child
    // come later), so nothing reads the environment concurrently. It keeps the simulator's and
    // the harness's temporary files under target/demo instead of /tmp.
    unsafe { std::env::set_var("TMPDIR", tmp) };
}

/// The vCenter simulator the demo runs against, with what a client needs to log in to it.
struct Vcenter {
    sim: Vcsim,
    ca: PathBuf,
    password_file: PathBuf,
}

impl Vcenter {
    /// `vmig <args>` against this vCenter.
    fn vmig(&self, bins: &Bins, args: &[&str]) -> Result<()> {
        run(Command::new(&bins.vmig)
            .args(["--url", self.sim.url(), "--username", self.sim.username()])
            .arg("--password-file")
            .arg(&self.password_file)
            .arg("--ca-file")
            .arg(&self.ca)
            .args(args))
    }
}

/// Starts the simulator with [`HOSTS`] as GPU hosts and writes its password for `vmig`.
fn start_vcenter(work: &Path) -> Result<Vcenter> {
    let mut gpus = GpuConfig::default();
    for (host, model, count) in HOSTS {
        gpus = gpus.rule(GpuRule::hosts(host).gpu(model, count));
    }
    let sim = Vcsim::builder()
        .datacenters(1)
        .clusters(2)
        .hosts_per_cluster(2)
        .standalone_hosts(0)
        .vms(2)
        .gpu_hosts(gpus)
        .start()
        .context("cannot start the vCenter simulator")?;
    let ca = sim
        .ca_pem_path()
        .context("the simulator serves TLS")?
        .to_path_buf();
    println!("  vCenter: {} (CA {})", sim.url(), ca.display());
    let password_file = work.join("password");
    fs::write(&password_file, format!("{}\n", sim.password()))?;
    fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600))?;
    Ok(Vcenter {
        sim,
        ca,
        password_file,
    })
}

/// One nvml-sim state file per host of [`HOSTS`], MIG enabled; returns their paths in order.
fn init_gpus(bins: &Bins, work: &Path) -> Result<Vec<PathBuf>> {
    let mut states = Vec::new();
    for (host, model, count) in HOSTS {
        let state = work.join(format!("{host}.nvml.json"));
        let mut init = Command::new(&bins.sim);
        init.arg("--state").arg(&state).args(["init", "--mig"]);
        for _ in 0..count {
            init.args(["--gpu", model]);
        }
        run(&mut init)?;
        println!("  {host}: {count} × {model}");
        states.push(state);
    }
    Ok(states)
}

/// Creates a 3g.40gb GPU instance on GPU 0 of `state` and starts VM `vm`'s vGPU on it.
fn start_vgpu(bins: &Bins, state: &Path, vm: &str) -> Result<()> {
    agent_cli(bins, state, &["mig", "cgi", "-i", "0", "3g.40gb", "-C"])?;
    let gi = gi_id_of(bins, state, "3g.40gb")?;
    run(Command::new(&bins.sim).arg("--state").arg(state).args([
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi.to_string(),
        "--vgpu",
        "nvidia_h100xm-3-40c",
        "--vm",
        vm,
    ]))?;
    println!("  {vm}: nvidia_h100xm-3-40c on GPU 0, GPU instance {gi}");
    Ok(())
}

/// `vmig-agent run` for `host` (BIOS UUID `uuid`) on its simulated GPUs `state`, with its
/// config and log under `work/<host>/`.
fn start_agent(
    bins: &Bins,
    vc: &Vcenter,
    work: &Path,
    host: &str,
    uuid: &str,
    state: &Path,
) -> Result<ChildGuard> {
    let dir = work.join(host);
    fs::create_dir_all(&dir)?;
    let config = dir.join("agent.toml");
    fs::write(
        &config,
        format!(
            "[vcenter]\nurl = {url:?}\nusername = {user:?}\npassword_file = {pw:?}\nca_file = {ca:?}\n\n\
             [host]\nuuid = {uuid:?}\n\n[agent]\npoll_interval_s = {POLL_S}\nheartbeat_interval_s = 60\nnvml_lib = {lib:?}\n",
            url = vc.sim.url(),
            user = vc.sim.username(),
            pw = vc.password_file.display().to_string(),
            ca = vc.ca.display().to_string(),
            lib = bins.lib.display().to_string(),
        ),
    )?;
    let log = fs::File::create(dir.join("agent.log"))?;
    let mut cmd = Command::new(&bins.agent);
    cmd.arg("run")
        .arg("--config")
        .arg(&config)
        .env("NVML_SIM_STATE", state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let agent = ChildGuard::spawn("vmig-agent run", &mut cmd)?;
    println!("  {host}: vmig-agent run --config {}", config.display());
    Ok(agent)
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn agent_cli(bins: &Bins, state: &Path, args: &[&str]) -> Result<()> {
    run(Command::new(&bins.agent)
        .arg("--nvml-lib")
        .arg(&bins.lib)
        .args(args)
        .env("NVML_SIM_STATE", state))
}

/// The id of the first GPU instance of `profile` on GPU 0, from `vmig-agent --json mig lgi`.
fn gi_id_of(bins: &Bins, state: &Path, profile: &str) -> Result<u64> {
    let out = Command::new(&bins.agent)
        .arg("--nvml-lib")
        .arg(&bins.lib)
        .args(["--json", "mig", "lgi", "-i", "0"])
        .env("NVML_SIM_STATE", state)
        .output()
        .context("cannot run vmig-agent mig lgi")?;
    if !out.status.success() {
        bail!(
            "vmig-agent mig lgi failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let gis: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("vmig-agent --json mig lgi output")?;
    gis.iter()
        .find(|gi| gi["name"] == profile)
        .and_then(|gi| gi["gi_id"].as_u64())
        .with_context(|| format!("no {profile} GPU instance on GPU 0"))
}

/// Wait until every host carries an agent document.
fn wait_published(rt: &tokio::runtime::Runtime, client: &Client, hosts: &[&str]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = rt.block_on(async {
            let defs = client.custom_field_defs().await.ok()?;
            let key = defs.iter().find(|d| d.name == FIELD_DOCUMENT)?.key;
            let all = client
                .hosts(&[HostProperty::Name, HostProperty::CustomValues])
                .await
                .ok()?;
            let published = all
                .iter()
                .filter(|h| hosts.contains(&h.name.as_deref().unwrap_or_default()))
                .filter(|h| {
                    h.custom_values
                        .get(key)
                        .is_some_and(|doc| HostReport::from_json(doc).is_ok())
                })
                .count();
            Some(published == hosts.len())
        });
        if done == Some(true) {
            println!("  all {} agents have published to vCenter", hosts.len());
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the agents did not publish within 120 s; see target/demo/*/agent.log");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
