//! Shared helpers of the `vmig_*` integration tests: agent documents built from `mig`'s own
//! types, a simulator per test with documents injected as the agents would publish them, and
//! the real `vmig` binary run against it (credentials through the environment, as admins do
//! with govc; never on the command line).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mig::report::{CiReport, GiReport, GpuReport, HostReport, MigModeReport, SCHEMA_V1};
use mig::{ComputeInstanceId, GpuModel, MigState, Placement};
use vcenter_client::{Client, ConnectOptions, Credentials, TlsPolicy, VmProperty, VmRef};
use vmig_testkit::{
    GpuConfig, GpuRule, TempDir, Vcsim, VcsimBuilder, nvml_sim_lib, temp_dir, workspace_bin,
};
#[allow(
    unused_imports,
    reason = "a shared test module: not every test binary drives nvml-sim"
)]
pub use vmig_testkit::{nvml_sim, wait_for};

/// One GI of a test layout: profile name, start slice, in use by this VM (if any).
pub struct Gi<'a> {
    pub profile: &'a str,
    pub start: u32,
    pub vm: Option<&'a str>,
}

pub fn gi<'a>(profile: &'a str, start: u32, vm: Option<&'a str>) -> Gi<'a> {
    Gi { profile, start, vm }
}

/// A GPU of `model` with the GIs given, as an agent would report it.
pub fn gpu(
    index: u32,
    model_key: &str,
    mig_current: bool,
    mig_pending: bool,
    gis: &[Gi<'_>],
) -> GpuReport {
    let model = GpuModel::by_key(model_key).expect("catalog model");
    let mut state = MigState::new(model);
    let mut out = Vec::new();
    for g in gis {
        let p = model.gi_profile_by_name(g.profile).expect("profile");
        let placement = Placement::new(g.start, p.memory_slices);
        let id = state
            .create_gi(p.id, Some(placement))
            .expect("legal layout");
        let default_ci = p
            .ci_profiles
            .iter()
            .find(|c| c.is_default)
            .unwrap_or(&p.ci_profiles[0]);
        out.push(GiReport {
            vgpus: Vec::new(),
            gi_id: id,
            profile_id: p.id,
            profile: p.name.to_string(),
            placement,
            compute_instances: vec![CiReport {
                ci_id: ComputeInstanceId(0),
                profile_id: Some(default_ci.id),
                profile: default_ci.name.to_string(),
                uuid: format!("MIG-{index}-{}-0", id.0),
            }],
            in_use: g.vm.is_some(),
            vm: g.vm.map(str::to_string),
            vgpu_type: g.vm.map(|_| mig::vgpu::vgpu_types_for(model, p).remove(0)),
            processes: vec![],
        });
    }
    GpuReport {
        sliced_types: Vec::new(),
        timesliced: None,
        index,
        uuid: format!("GPU-{model_key}-{index:04}"),
        name: model.nvml_name.to_string(),
        pci_bus_id: format!("00000000:{:02X}:00.0", 0x3b + index),
        model: Some(model.key.to_string()),
        mig_mode: Some(MigModeReport {
            current: mig_current,
            pending: mig_pending,
        }),
        gpu_instances: out,
        free: Default::default(),
        largest_placeable: state.largest_placeable().map(|p| p.name.to_string()),
        fragmentation: state.fragmentation(),
        placeable_vgpu_types: vec![],
        error: None,
        nvml_free: None,
        layout_state: None,
        geometry: None,
    }
}

/// `gpu(index, model_key, …)` as a newer agent reports a GPU that this build's catalog lacks:
/// the model's geometry published under `nvml_name`, no catalog key, and the vGPU types of
/// its GIs spelled with `board` (`nvidia_<board>-3-40c`).
pub fn unknown_gpu(gpu: GpuReport, nvml_name: &str, board: &str) -> GpuReport {
    let model = gpu.catalog_model().expect("a catalog model to borrow");
    let geometry = mig::report::ModelGeometry::of_catalog(model);
    let rename = |t: String| match t.split_once('-') {
        Some((_, rest)) => format!("nvidia_{board}-{rest}"),
        None => t,
    };
    let mut g = GpuReport {
        name: nvml_name.to_string(),
        model: None,
        geometry: Some(geometry),
        ..gpu
    };
    assert!(g.catalog_model().is_none(), "{nvml_name} must be unknown");
    for gi in &mut g.gpu_instances {
        gi.vgpu_type = gi.vgpu_type.take().map(rename);
    }
    g
}

/// The same GPU rebuilt as a `MigState` (what the planner sees).
pub fn state_of(g: &GpuReport) -> MigState {
    let model = GpuModel::by_key(g.model.as_deref().expect("model")).expect("catalog");
    let mut s = MigState::new(model);
    for gi in &g.gpu_instances {
        s.create_gi(gi.profile_id, Some(gi.placement))
            .expect("legal");
    }
    s
}

/// An RFC 3339 time `ago_s` seconds in the past.
pub fn time_ago(ago_s: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(ago_s);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A whole document.
pub fn doc(observed_ago_s: i64, heartbeat_s: u64, gpus: Vec<GpuReport>) -> String {
    HostReport {
        schema: SCHEMA_V1.to_string(),
        agent_version: "0.1.0-test".to_string(),
        host_uuid: "injected".to_string(),
        generation: 7,
        observed_at: time_ago(observed_ago_s),
        heartbeat_interval_s: heartbeat_s,
        usage: None,
        gpus,
    }
    .to_json()
}

/// A simulator plus a scratch directory.
pub struct Env {
    pub vc: Vcsim,
    pub dir: TempDir,
}

impl Env {
    pub fn start(builder: vmig_testkit::VcsimBuilder, name: &str) -> Env {
        // Build first: documents are timestamped when the scene is made.
        workspace_bin("vmig");
        let vc = builder.start().unwrap_or_else(|e| panic!("{e}"));
        Env {
            vc,
            dir: temp_dir(name),
        }
    }

    /// The `vmig` command, pointed at the simulator (CA-verified TLS), credentials in env.
    pub fn vmig_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(workspace_bin("vmig"));
        for (k, _) in std::env::vars() {
            if k.starts_with("GOVC_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--url")
            .arg(self.vc.url())
            .arg("--ca-file")
            .arg(self.vc.ca_pem_path().expect("TLS simulator"))
            .args(args)
            .env("GOVC_USERNAME", self.vc.username())
            .env("GOVC_PASSWORD", self.vc.password())
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs `vmig ARGS` to completion.
    pub fn vmig(&self, args: &[&str]) -> Output {
        self.vmig_cmd(args).output().expect("run vmig")
    }

    /// Runs `vmig --json ARGS`, expecting exit status `code`, and parses stdout.
    pub fn vmig_json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.vmig(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "vmig {all:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "vmig {all:?} printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    /// A client of the simulator, for setting the scene.
    pub fn client(&self, rt: &tokio::runtime::Runtime) -> Client {
        rt.block_on(Client::connect(ConnectOptions::new(
            self.vc.url(),
            Credentials::new(self.vc.username(), self.vc.password()),
            TlsPolicy::CaFile(self.vc.ca_pem_path().expect("TLS").to_path_buf()),
        )))
        .unwrap_or_else(|e| panic!("connect to vcsim: {e}"))
    }
}

/// VMs by name: (ref, host name, powered on).
pub fn vms(rt: &tokio::runtime::Runtime, c: &Client) -> Vec<(String, VmRef, String)> {
    rt.block_on(async {
        let hosts = c
            .hosts(&[vcenter_client::HostProperty::Name])
            .await
            .expect("hosts");
        let vms = c
            .vms(&[VmProperty::Name, VmProperty::Host])
            .await
            .expect("vms");
        let mut out: Vec<(String, VmRef, String)> = vms
            .into_iter()
            .map(|v| {
                let host = hosts
                    .iter()
                    .find(|h| Some(&h.moref) == v.host.as_ref())
                    .and_then(|h| h.name.clone())
                    .unwrap_or_default();
                (v.name.unwrap_or_default(), v.moref, host)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    })
}

/// The host ref of `name`.
pub fn host_ref(rt: &tokio::runtime::Runtime, c: &Client, name: &str) -> vcenter_client::HostRef {
    rt.block_on(c.hosts(&[vcenter_client::HostProperty::Name]))
        .expect("hosts")
        .into_iter()
        .find(|h| h.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no host {name}"))
        .moref
}

/// Moves `vm` to `host` and powers it off (the simulator starts VMs powered on).
pub fn park(rt: &tokio::runtime::Runtime, c: &Client, vm: &VmRef, host: &str) {
    let h = host_ref(rt, c, host);
    rt.block_on(async {
        let t = c
            .relocate_vm(
                vm,
                &vcenter_client::RelocateSpec {
                    host: h,
                    pool: None,
                },
            )
            .await
            .expect("relocate");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("relocate task");
        let on = c
            .vm(vm, &[VmProperty::PowerState])
            .await
            .expect("vm")
            .power_state;
        if on != Some(vcenter_client::PowerState::PoweredOff) {
            let t = c.power_off_vm(vm).await.expect("power off");
            c.wait_for_task(&t, vcenter_client::TaskWait::default())
                .await
                .expect("power off task");
        }
    });
}

/// `stdout` and `stderr` as text, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Cluster DC0_C0 of three hosts with one A100-PCIE-40GB each and `vms` VMs per pool: H0 and
/// H1 report an empty GPU (room for one 7g.40gb each), H2 a full one (`big-vm` runs there).
pub fn two_free_one_full_a100(vms: u32) -> VcsimBuilder {
    const A100: &str = "a100-pcie-40gb";
    Vcsim::builder()
        .hosts_per_cluster(3)
        .standalone_hosts(0)
        .vms(vms)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters("DC0_C0").gpu(A100, 1)))
        .custom_value(
            "DC0_C0_H0",
            "vmig.mig",
            &doc(1, 3600, vec![gpu(0, A100, true, true, &[])]),
        )
        .custom_value(
            "DC0_C0_H1",
            "vmig.mig",
            &doc(1, 3600, vec![gpu(0, A100, true, true, &[])]),
        )
        .custom_value(
            "DC0_C0_H2",
            "vmig.mig",
            &doc(
                1,
                3600,
                vec![gpu(
                    0,
                    A100,
                    true,
                    true,
                    &[gi("7g.40gb", 0, Some("big-vm"))],
                )],
            ),
        )
}

/// Writes `dir/agent.toml` (and its 0600 password file) for a real agent on nvml-sim that
/// reports `host_uuid` to `vc` every second; `rest` continues the `[agent]` table (e.g.
/// `heartbeat_interval_s = 60\n`) and may open further tables.
pub fn agent_config(dir: &Path, vc: &Vcsim, host_uuid: &str, rest: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let pw = dir.join("password");
    std::fs::write(&pw, format!("{}\n", vc.password())).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[vcenter]\nurl = {url:?}\nusername = {user:?}\npassword_file = \"password\"\nca_file = {ca:?}\n\n\
         [host]\nuuid = {host_uuid:?}\n\n[agent]\npoll_interval_s = 1\nnvml_lib = {lib:?}\n{rest}",
        url = vc.url(),
        user = vc.username(),
        ca = vc.ca_pem_path().unwrap().display().to_string(),
        lib = nvml_sim_lib().display().to_string(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Debian's `faketime`, to run `vmig` with a skewed clock; `None` (the check is skipped)
/// when it is absent outside CI.
pub fn faketime() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("faketime"))
            .find(|f| f.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "faketime is missing in CI: scripts/deps.d/60-faketime.sh installs Debian's faketime"
        );
        eprintln!("SKIPPED: Debian's `faketime` is not installed (apt-get install faketime)");
    }
    found
}

/// The BIOS UUID vcsim gives host `name` (what an agent on it reports as `host_uuid`).
pub fn host_bios_uuid(rt: &tokio::runtime::Runtime, c: &Client, name: &str) -> String {
    rt.block_on(c.hosts(&[
        vcenter_client::HostProperty::Name,
        vcenter_client::HostProperty::BiosUuid,
    ]))
    .unwrap()
    .into_iter()
    .find(|h| h.name.as_deref() == Some(name))
    .and_then(|h| h.bios_uuid)
    .expect("host uuid")
    .as_str()
    .to_string()
}

/// `two_free_one_full_a100(vms)` with vcsim's per-method `delays`, and every DC0_C0 VM
/// powered off and parked on the full host H2, so that any assign must move it. Returns the
/// environment, a runtime, a client and the VMs (name, reference).
pub fn parked_scene(
    name: &str,
    vms_n: u32,
    delays: &[(&str, u32)],
) -> (Env, tokio::runtime::Runtime, Client, Vec<(String, VmRef)>) {
    let mut builder = two_free_one_full_a100(vms_n);
    for (m, ms) in delays {
        builder = builder.method_delay(m, *ms);
    }
    let env = Env::start(builder, name);
    let rt = Env::runtime();
    let c = env.client(&rt);
    let all: Vec<(String, VmRef)> = vms(&rt, &c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .map(|(n, r, _)| (n, r))
        .collect();
    assert!(all.len() >= 3, "{all:?}");
    for (_, r) in &all {
        park(&rt, &c, r, "DC0_C0_H2");
    }
    (env, rt, c, all)
}

/// (vGPU profiles sorted, reservation JSON, host name among `hosts`) of a VM.
pub fn vm_state(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
    hosts: &[&str],
) -> (Vec<String>, Option<serde_json::Value>, Option<String>) {
    let (vgpus, res, host) = rt.block_on(async {
        let defs = c.custom_field_defs().await.expect("defs");
        let key = defs
            .iter()
            .find(|d| d.name == "vmig.reservation")
            .map(|d| d.key);
        let v = c
            .vm(
                vm,
                &[
                    VmProperty::Vgpus,
                    VmProperty::CustomValues,
                    VmProperty::Host,
                ],
            )
            .await
            .expect("vm");
        let res = key
            .and_then(|k| v.custom_values.get(k))
            .filter(|t| !t.is_empty())
            .map(|t| serde_json::from_str(t).expect("reservation JSON"));
        let mut vgpus: Vec<String> = v
            .vgpus
            .iter()
            .map(|d| d.profile.as_str().to_string())
            .collect();
        vgpus.sort();
        (vgpus, res, v.host)
    });
    let on = host.and_then(|h| {
        hosts
            .iter()
            .find(|n| host_ref(rt, c, n) == h)
            .map(|n| (*n).to_string())
    });
    (vgpus, res, on)
}

/// `vmig-agent ARGS` on the simulated GPU machine whose nvml-sim state is `state` (the
/// admin's one-shot commands: `mig cgi`, `mig mode`); its stdout, after asserting success.
pub fn agent_cli(state: &Path, args: &[&str]) -> String {
    let out = Command::new(workspace_bin("vmig-agent"))
        .arg("--nvml-lib")
        .arg(nvml_sim_lib())
        .args(args)
        .env("NVML_SIM_STATE", state)
        .env_remove("VMIG_LOG")
        .output()
        .expect("run vmig-agent");
    assert!(out.status.success(), "vmig-agent {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Host `name` in a `vmig --json report` of one vCenter and datacenter.
pub fn host_json<'a>(r: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    r["vcenters"][0]["datacenters"][0]["clusters"]
        .as_array()?
        .iter()
        .flat_map(|c| c["hosts"].as_array().into_iter().flatten())
        .find(|h| h["name"] == name)
}

/// Runs `cmds` at once (two admins racing), their output captured, and asserts that exactly
/// one of them succeeded; the outputs, in the order given.
pub fn race_one_wins(cmds: impl IntoIterator<Item = Command>) -> Vec<Output> {
    let running: Vec<_> = cmds
        .into_iter()
        .map(|mut cmd| {
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn vmig")
        })
        .collect();
    let outs: Vec<Output> = running
        .into_iter()
        .map(|c| c.wait_with_output().expect("vmig"))
        .collect();
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "exactly one wins: {codes:?}\n{}",
        outs.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    outs
}
