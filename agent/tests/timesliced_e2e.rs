//! Time-sliced vGPUs (issue 18) end to end: the real `vmig-agent run` over nvml-sim (loaded
//! through nvml-wrapper's real FFI path) publishing into govmomi's vCenter simulator.
//! - an RTX PRO 6000 Blackwell SE in MIG mode: one 1g.24gb GI filled with `NVIDIA DC-1-8C`
//!   vGPUs slot by slot; the document follows each slot, the driver refuses the fourth;
//! - a host with one GPU in MIG mode and one not: the document has `gpu_instances` on the
//!   first and `timesliced` on the second.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mig::report::{FIELD_DOCUMENT, GpuReport, HostReport};
use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, TlsPolicy};
use vmig_testkit::{
    RunningAgent, TempDir, Vcsim, agent_cli_output, nvml_sim, nvml_sim_lib, temp_dir, wait_for,
    workspace_bin_in,
};

const POLL_S: u64 = 1;
/// Long enough for a loaded 2-core machine to start and publish.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// One poll, a publication, and slack for a loaded machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);
const RTX: &str = "rtx-pro-6000-bse-96gb";
/// A driver with the per-GI vGPU calls (R575 and later, as nvml-sim simulates them).
const DRIVER: &str = "575.57.08";

struct Rig {
    dir: TempDir,
    rt: tokio::runtime::Runtime,
    vc: Vcsim,
    host: String,
    state: PathBuf,
    _agent: Option<RunningAgent>,
}

impl Rig {
    fn new(test: &str, init: &[&str]) -> Rig {
        let dir = temp_dir(test);
        let vc = Vcsim::builder().start().unwrap_or_else(|e| panic!("{e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = dir.path().join("nvml-sim.json");
        let mut args = vec!["init"];
        args.extend_from_slice(init);
        nvml_sim(&state, &args);
        let mut rig = Rig {
            dir,
            rt,
            vc,
            host: String::new(),
            state,
            _agent: None,
        };
        let c = rig.client();
        let mut hosts: Vec<(String, String)> = rig
            .rt
            .block_on(c.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))
            .expect("hosts")
            .into_iter()
            .map(|h| {
                (
                    h.name.unwrap_or_default(),
                    h.bios_uuid.map(|u| u.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let _ = rig.rt.block_on(c.logout());
        hosts.sort();
        let (host, uuid) = hosts.into_iter().next().expect("the simulator has hosts");
        rig.host = host;
        let config = rig.write_config(&uuid);
        let log = rig.dir.path().join("agent.log");
        rig._agent = Some(RunningAgent::start(&config, &rig.state, &log));
        rig
    }

    fn client(&self) -> Client {
        let ca = self.vc.ca_pem_path().expect("TLS simulator").to_path_buf();
        self.rt
            .block_on(Client::connect(ConnectOptions::new(
                self.vc.url(),
                Credentials::new(self.vc.username(), self.vc.password()),
                TlsPolicy::CaFile(ca),
            )))
            .unwrap_or_else(|e| panic!("test client cannot connect to vcsim: {e}"))
    }

    fn write_config(&self, uuid: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.path();
        let password = dir.join("password");
        std::fs::write(&password, format!("{}\n", self.vc.password())).expect("password");
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let text = format!(
            "[vcenter]\nurl = {url:?}\nusername = {user:?}\npassword_file = \"password\"\n\
             ca_file = {ca:?}\n\n[host]\nuuid = {uuid:?}\n\n[agent]\npoll_interval_s = {POLL_S}\n\
             heartbeat_interval_s = 60\nnvml_lib = {lib:?}\n",
            url = self.vc.url(),
            user = self.vc.username(),
            ca = self.vc.ca_pem_path().expect("TLS").display().to_string(),
            lib = nvml_sim_lib().display().to_string(),
        );
        let path = dir.join("agent.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    /// The published document, if any.
    fn published(&self) -> Option<HostReport> {
        let c = self.client();
        let doc = self.rt.block_on(async {
            let defs = c.custom_field_defs().await.ok()?;
            let key = defs.iter().find(|d| d.name == FIELD_DOCUMENT)?.key;
            let hosts = c
                .hosts(&[HostProperty::Name, HostProperty::CustomValues])
                .await
                .ok()?;
            let h = hosts
                .into_iter()
                .find(|h| h.name.as_deref() == Some(self.host.as_str()))?;
            Some(HostReport::from_json(h.custom_values.get(key)?).expect("a valid document"))
        });
        let _ = self.rt.block_on(c.logout());
        doc
    }

    /// Wait until the published document satisfies `ok`.
    fn wait_doc(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&HostReport) -> bool,
    ) -> HostReport {
        wait_for(timeout, what, || self.published().filter(|d| ok(d)))
    }

    fn sim(&self, args: &[&str]) -> String {
        nvml_sim(&self.state, args)
    }

    /// `nvml-sim ARGS` expected to be refused; its stderr.
    fn sim_refused(&self, args: &[&str]) -> String {
        let out = Command::new(workspace_bin_in("nvml-sim", "nvml-sim"))
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .output()
            .expect("run nvml-sim");
        assert!(
            !out.status.success(),
            "nvml-sim {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `vmig-agent ARGS` on this machine, as an admin in the ESXi shell.
    fn agent_cli(&self, args: &[&str]) -> String {
        let out = agent_cli_output(&self.state, args);
        assert!(
            out.status.success(),
            "vmig-agent {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

fn gi_vgpus(g: &GpuReport) -> usize {
    g.gpu_instances.first().map_or(0, |gi| gi.vgpus.len())
}

fn only_gi_id(g: &GpuReport) -> String {
    g.gpu_instances[0].gi_id.0.to_string()
}

#[test]
fn an_rtx_pro_6000_gi_fills_slot_by_slot_until_the_driver_refuses() {
    let rig = Rig::new(
        "timesliced-fill",
        &["--mig", "--driver-version", DRIVER, "--gpu", RTX],
    );
    rig.wait_doc("the first publication", START_TIMEOUT, |_| true);
    rig.agent_cli(&["mig", "cgi", "-i", "0", "1g.24gb", "-C"]);
    let doc = rig.wait_doc("the GI and its time-sliced types", CHANGE_TIMEOUT, |d| {
        !d.gpus[0].gpu_instances.is_empty() && !d.gpus[0].sliced_types.is_empty()
    });
    let g = &doc.gpus[0];
    let dc18 = g
        .sliced_types
        .iter()
        .find(|t| t.vgpu_type == "NVIDIA DC-1-8C")
        .unwrap_or_else(|| panic!("DC-1-8C published: {:?}", g.sliced_types));
    assert_eq!((dc18.gi_profile_id.0, dc18.max_per_gi), (14, 3));
    assert!(
        g.sliced_types.iter().all(|t| t.max_per_gi >= 2),
        "types one GI runs once are not listed: {:?}",
        g.sliced_types
    );
    assert!(g.timesliced.is_none());
    let gi = only_gi_id(g);
    let t = g
        .sliced_types()
        .into_iter()
        .find(|t| t.name == "dc-1-8c")
        .expect("DC-1-8C as a slot type");
    assert_eq!(g.gpu_slots().gis[0].free_for(&t), 3);

    for n in 1..=3 {
        let vm = format!("vm-{n}");
        rig.sim(&[
            "occupy",
            "-i",
            "0",
            "--gi",
            &gi,
            "--vgpu",
            "NVIDIA DC-1-8C",
            "--vm",
            &vm,
        ]);
        let doc = rig.wait_doc(&format!("{n} vGPU(s) in the GI"), CHANGE_TIMEOUT, |d| {
            gi_vgpus(&d.gpus[0]) == n
        });
        let g = &doc.gpus[0];
        let gi = &g.gpu_instances[0];
        assert!(gi.in_use);
        assert_eq!(
            gi.vm.as_deref(),
            Some("vm-1"),
            "the GI's vm is its first vGPU's"
        );
        assert_eq!(gi.vgpus[n - 1].vm.as_deref(), Some(vm.as_str()));
        assert!(gi.vgpus.iter().all(|v| v.vgpu_type == "NVIDIA DC-1-8C"));
        let slots = g.gpu_slots();
        assert_eq!(slots.gis[0].used, n as u32);
        assert_eq!(slots.gis[0].free_for(&t), 3 - n as u32);
    }
    let err = rig.sim_refused(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi,
        "--vgpu",
        "NVIDIA DC-1-8C",
        "--vm",
        "vm-4",
    ]);
    assert!(err.contains("NVML_ERROR_INSUFFICIENT_RESOURCES"), "{err}");
    let err = rig.sim_refused(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi,
        "--vgpu",
        "NVIDIA DC-1-12C",
        "--vm",
        "vm-4",
    ]);
    assert!(err.contains("one type"), "{err}");
    // A VM stops: its slot is free again in the next document.
    rig.sim(&["release", "--vm", "vm-2"]);
    let doc = rig.wait_doc("the freed slot", CHANGE_TIMEOUT, |d| {
        gi_vgpus(&d.gpus[0]) == 2
    });
    assert_eq!(doc.gpus[0].gpu_slots().gis[0].free_for(&t), 1);
    assert!(!rig.log().contains("panicked"), "{}", rig.log());
}

#[test]
fn a_host_mixes_a_mig_gpu_and_a_time_sliced_gpu() {
    let rig = Rig::new(
        "timesliced-mixed",
        &[
            "--mig",
            "--driver-version",
            DRIVER,
            "--gpu",
            RTX,
            "--gpu",
            RTX,
        ],
    );
    // GPU 1 leaves MIG mode (pending until its reset, as on the driver).
    rig.agent_cli(&["mig", "mode", "-i", "1", "--disable"]);
    rig.sim(&["reset", "-i", "1"]);
    rig.agent_cli(&["mig", "cgi", "-i", "0", "1g.24gb", "-C"]);
    let doc = rig.wait_doc("both GPUs", START_TIMEOUT, |d| {
        d.gpus.len() == 2 && !d.gpus[0].gpu_instances.is_empty() && d.gpus[1].timesliced.is_some()
    });
    let gi = only_gi_id(&doc.gpus[0]);
    let ts = doc.gpus[1].timesliced.as_ref().expect("timesliced");
    assert!(ts.vgpus.is_empty());
    let dc24 = ts
        .types
        .iter()
        .find(|t| t.vgpu_type == "NVIDIA DC-24C")
        .expect("DC-24C");
    assert_eq!((dc24.max, dc24.more), (4, 4));

    rig.sim(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi,
        "--vgpu",
        "NVIDIA DC-1-8C",
        "--vm",
        "vm-mig",
    ]);
    rig.sim(&[
        "occupy",
        "-i",
        "1",
        "--vgpu",
        "NVIDIA DC-24C",
        "--vm",
        "vm-ts-1",
    ]);
    rig.sim(&[
        "occupy",
        "-i",
        "1",
        "--vgpu",
        "NVIDIA DC-24C",
        "--vm",
        "vm-ts-2",
    ]);
    let doc = rig.wait_doc("the three vGPUs", CHANGE_TIMEOUT, |d| {
        gi_vgpus(&d.gpus[0]) == 1
            && d.gpus[1]
                .timesliced
                .as_ref()
                .is_some_and(|t| t.vgpus.len() == 2)
    });
    let (mig_gpu, ts_gpu) = (&doc.gpus[0], &doc.gpus[1]);
    assert!(mig_gpu.timesliced.is_none() && !mig_gpu.sliced_types.is_empty());
    assert!(ts_gpu.gpu_instances.is_empty() && ts_gpu.sliced_types.is_empty());
    assert_eq!(
        mig_gpu.gpu_instances[0].vgpus[0].vm.as_deref(),
        Some("vm-mig")
    );
    let ts = ts_gpu.timesliced.as_ref().expect("timesliced");
    let more: Vec<(&str, u32, u32)> = ts
        .types
        .iter()
        .map(|t| (t.vgpu_type.as_str(), t.max, t.more))
        .collect();
    assert!(more.contains(&("NVIDIA DC-24C", 4, 2)), "{more:?}");
    assert!(
        more.iter()
            .filter(|t| t.0 != "NVIDIA DC-24C")
            .all(|t| t.2 == 0),
        "equal-size mode: no other size fits: {more:?}"
    );
    let err = rig.sim_refused(&[
        "occupy",
        "-i",
        "1",
        "--vgpu",
        "NVIDIA DC-8C",
        "--vm",
        "vm-ts-3",
    ]);
    assert!(err.contains("NVML_ERROR_INSUFFICIENT_RESOURCES"), "{err}");
}

/// A driver without the per-GI calls (FUNCTION_NOT_FOUND) still gets the document it got
/// before: the GI with its vGPU's VM and type, no time-sliced fields, no failed GPU.
#[test]
fn an_older_driver_leaves_the_time_sliced_fields_empty() {
    let rig = Rig::new(
        "timesliced-old-driver",
        &["--mig", "--driver-version", "550.54.15", "--gpu", RTX],
    );
    rig.agent_cli(&["mig", "cgi", "-i", "0", "1g.24gb", "-C"]);
    let doc = rig.wait_doc("the GI", START_TIMEOUT, |d| {
        !d.gpus[0].gpu_instances.is_empty()
    });
    let gi = only_gi_id(&doc.gpus[0]);
    rig.sim(&[
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi,
        "--vgpu",
        "NVIDIA DC-1-8C",
        "--vm",
        "vm-1",
    ]);
    let doc = rig.wait_doc("the vGPU", CHANGE_TIMEOUT, |d| {
        d.gpus[0].gpu_instances[0].in_use
    });
    let g = &doc.gpus[0];
    assert!(g.error.is_none(), "{:?}", g.error);
    assert!(g.sliced_types.is_empty() && g.timesliced.is_none());
    let gi = &g.gpu_instances[0];
    assert_eq!(
        (gi.vm.as_deref(), gi.vgpu_type.as_deref()),
        (Some("vm-1"), Some("NVIDIA DC-1-8C"))
    );
    assert!(gi.vgpus.is_empty());
    assert!(g.gpu_slots().gis.is_empty(), "no published type, no slots");
}
