//! `vmig report` against a simulator with injected agent documents, in every format: JSON
//! and CSV are parsed back and checked against the layouts injected (free capacity computed
//! independently with `mig`), the table is read for its key lines, and the HTML file is
//! rendered by headless Chromium (its script must run: it marks `<body data-ready="1">`).

mod vmig_support;

use std::process::Command;

use mig::{GpuModel, VgpuType};
use vmig_support::{Env, doc, gi, gpu, park, state_of, text, vms};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim};

const A100: &str = "a100-pcie-40gb";

struct Scene {
    env: Env,
    h0: Vec<mig::report::GpuReport>,
    vgpu_vm: String,
}

fn scene() -> Scene {
    let h0 = vec![
        gpu(
            0,
            A100,
            true,
            true,
            &[gi("3g.20gb", 4, Some("render-01")), gi("1g.5gb", 0, None)],
        ),
        gpu(1, A100, true, true, &[]),
    ];
    let h1 = vec![gpu(
        0,
        A100,
        true,
        true,
        &[gi("7g.40gb", 0, Some("train-01"))],
    )];
    let h100 = vec![gpu(0, "h100-sxm5-80gb", false, true, &[])];
    let builder = Vcsim::builder()
        .clusters(2)
        .hosts_per_cluster(3)
        .vms(2)
        .gpu_hosts(
            GpuConfig::default()
                .rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 2))
                .rule(GpuRule::hosts("DC0_C0_H1").gpu(A100, 1))
                .rule(GpuRule::hosts("DC0_C0_H2").gpu(A100, 1))
                .rule(GpuRule::hosts("DC0_C1_H0").gpu("h100-sxm5-80gb", 1)),
        )
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(5, 3600, h0.clone()))
        // More than a day old with a 1 h heartbeat: stale.
        .custom_value("DC0_C0_H1", "vmig.mig", &doc(100_000, 3600, h1))
        .custom_value("DC0_C1_H0", "vmig.mig", &doc(5, 3600, h100));
    let env = Env::start(builder, "vmig-report");
    // A VM with a MIG-backed vGPU on the GPU host.
    let rt = Env::runtime();
    let c = env.client(&rt);
    let (name, vm, _) = vms(&rt, &c)
        .into_iter()
        .find(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .expect("a cluster VM");
    park(&rt, &c, &vm, "DC0_C0_H0");
    rt.block_on(async {
        let spec = vcenter_client::VmConfigSpec::new()
            .add_vgpu(vcenter_client::VgpuProfile::new("grid_a100-3-20c").unwrap())
            .memory_reservation_locked_to_max(true);
        let t = c.reconfigure_vm(&vm, &spec).await.expect("reconfigure");
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .expect("task");
    });
    Scene {
        env,
        h0,
        vgpu_vm: name,
    }
}

fn capacity_of(states: &[mig::MigState], vtype: &str) -> u32 {
    let t = VgpuType::parse(vtype).unwrap();
    states
        .iter()
        .map(|s| {
            let p = t.gi_profile(s.gpu_model()).unwrap();
            s.remaining_gi_capacity(p.id).unwrap()
        })
        .sum()
}

fn find_host<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["vcenters"][0]["datacenters"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["hosts"].as_array().unwrap())
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("host {name} not in the report"))
}

#[test]
fn report_in_every_format() {
    let s = scene();
    let env = &s.env;
    let states: Vec<mig::MigState> = s.h0.iter().map(state_of).collect();

    // ---- JSON
    let r = env.vmig_json(&["report"], 0);
    assert_eq!(r["schema"], "vmig.report/v1");
    let clusters: Vec<&str> = r["vcenters"][0]["datacenters"][0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["DC0_C0", "DC0_C1", "DC0_H0"]);
    let h0 = find_host(&r, "DC0_C0_H0");
    assert_eq!(h0["agent"]["status"], "ok");
    let g0 = &h0["gpus"][0];
    assert_eq!(g0["model"], A100);
    assert_eq!(g0["memory_slices"], 8);
    assert_eq!(g0["instances"][0]["profile"], "3g.20gb");
    assert_eq!(g0["instances"][0]["vm"], "render-01");
    assert_eq!(
        g0["instances"][0]["placement"],
        serde_json::json!({"start": 4, "size": 4})
    );
    // Free capacity per profile and per vGPU type, as mig computes it on the same layout.
    let model = GpuModel::by_key(A100).unwrap();
    for p in model.gi_profiles {
        let want = states[0].remaining_gi_capacity(p.id).unwrap();
        let got = g0["free_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["profile"] == p.name)
            .map_or(0, |f| f["count"].as_u64().unwrap() as u32);
        assert_eq!(got, want, "free {} on GPU 0", p.name);
    }
    assert_eq!(
        g0["largest_placeable"].as_str(),
        states[0].largest_placeable().map(|p| p.name)
    );
    assert!((g0["fragmentation"].as_f64().unwrap() - states[0].fragmentation()).abs() < 1e-9);
    // Cluster capacity: only the fresh host counts (H1 is stale, H2 has no report).
    let c0 = &r["vcenters"][0]["datacenters"][0]["clusters"][0];
    for t in ["grid_a100-3-20c", "grid_a100-1-5c", "grid_a100-7-40c"] {
        let got = c0["capacity"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["vgpu_type"] == t)
            .map_or(0, |c| c["count"].as_u64().unwrap() as u32);
        assert_eq!(got, capacity_of(&states, t), "cluster capacity for {t}");
    }
    assert_eq!(
        r["capacity"], c0["capacity"],
        "the H100 has MIG pending only: no capacity"
    );
    // MIG pending is reported.
    let h100 = find_host(&r, "DC0_C1_H0");
    assert_eq!(
        h100["gpus"][0]["mig_mode"],
        serde_json::json!({"current": false, "pending": true})
    );
    // Flagged hosts.
    let flagged: Vec<(&str, &str)> = r["flagged_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["host"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(flagged, [("DC0_C0_H1", "stale"), ("DC0_C0_H2", "missing")]);
    // The vGPU VM.
    let v = r["vgpu_vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vm"] == s.vgpu_vm.as_str())
        .expect("vGPU VM listed");
    assert_eq!(v["vgpu_types"], serde_json::json!(["grid_a100-3-20c"]));
    assert_eq!(v["profiles"], serde_json::json!(["3g.20gb"]));
    assert_eq!(v["power_state"], "poweredOff");
    assert_eq!(v["host"], "DC0_C0_H0");

    // ---- filters
    let only = env.vmig_json(&["report", "--cluster", "DC0_C1"], 0);
    let cl = only["vcenters"][0]["datacenters"][0]["clusters"]
        .as_array()
        .unwrap();
    assert_eq!(cl.len(), 1);
    assert_eq!(cl[0]["name"], "DC0_C1");
    let none = env.vmig_json(&["report", "--datacenter", "nope"], 0);
    assert!(
        none["vcenters"][0]["datacenters"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // ---- CSV, parsed back
    let out = env.vmig(&["report", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, vmig::render::csv::COLUMNS);
    let rows: Vec<Vec<String>> = lines.map(parse_csv_line).collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let h0_rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[col("host")] == "DC0_C0_H0")
        .collect();
    assert_eq!(h0_rows.len(), 2, "one row per GPU");
    assert_eq!(
        h0_rows[0][col("gpu_instances")],
        format!(
            "{}:3g.20gb@4:4;{}:1g.5gb@0:1",
            s.h0[0].gpu_instances[0].gi_id, s.h0[0].gpu_instances[1].gi_id
        )
    );
    assert_eq!(h0_rows[0][col("in_use_by")], "render-01");
    let free_3g = states[0]
        .remaining_gi_capacity(model.gi_profile_by_name("1g.5gb").unwrap().id)
        .unwrap();
    assert!(h0_rows[0][col("free_profiles")].contains(&format!("1g.5gb={free_3g}")));
    let status: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[col("host")].as_str(), r[col("agent_status")].as_str()))
        .collect();
    assert!(status.contains(&("DC0_C0_H2", "missing")), "{status:?}");
    assert!(status.contains(&("DC0_C0_H1", "stale")), "{status:?}");

    // ---- table
    let out = env.vmig(&["report"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8(out.stdout).unwrap();
    assert!(t.contains("Cluster DC0_C0: can still place "), "{t}");
    assert!(t.contains("in use by render-01 (grid_a100-3-20c)"), "{t}");
    assert!(t.contains("DC0_C0_H2 (DC0/DC0_C0): MISSING"), "{t}");
    assert!(t.contains(&s.vgpu_vm), "{t}");

    // ---- HTML, rendered by Chromium
    let html = env.path("report.html");
    let out = env.vmig(&["report", "--format", "html", "-o", html.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        only_namespace_urls(&page),
        "the page must reference no external asset"
    );
    let Some(dom) = chromium_dom(&html) else {
        return;
    };
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not run:\n{dom}"
    );
    for host in ["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2", "DC0_C1_H0"] {
        assert!(dom.contains(host), "{host} missing from the rendered page");
    }
    assert!(dom.contains("<svg"), "GPU diagrams rendered");
    assert!(dom.contains("render-01"));
}

/// The only URLs allowed in the page are XML namespace names (never fetched).
fn only_namespace_urls(page: &str) -> bool {
    let mut rest = page;
    while let Some(i) = rest.find("http") {
        let tail = &rest[i..];
        if !tail.starts_with("http://www.w3.org/2000/svg") {
            return false;
        }
        rest = &tail[4..];
    }
    true
}

fn parse_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The DOM after Chromium ran the page; `None` (test passes) only outside CI when Chromium
/// is not installed. Under CI a missing Chromium fails the test.
fn chromium_dom(file: &std::path::Path) -> Option<String> {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(bin) = bin else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; CI needs it (scripts/deps.d/50-chromium.sh: apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED the HTML rendering check: chromium is not installed (scripts/deps.d/50-chromium.sh)"
        );
        return None;
    };
    let profile = vmig_testkit::temp_dir("chromium-profile");
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom"])
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    assert!(
        !stderr.contains("Uncaught"),
        "JavaScript error in the report page: {stderr}"
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Issue 18: a GI running several time-sliced vGPUs shows each of them and how many more fit,
/// and a GPU without MIG shows its whole-GPU time-sliced vGPUs, in every format.
#[test]
fn time_sliced_vgpus_in_every_format() {
    use mig::report::{SlicedTypeReport, TimeslicedReport, TimeslicedTypeReport, VgpuReport};
    const RTX: &str = "rtx-pro-6000-bse-96gb";
    let vgpu = |vm: &str, t: &str| VgpuReport {
        vm: Some(vm.to_string()),
        vgpu_type: t.to_string(),
    };
    let mut sliced = gpu(0, RTX, true, true, &[gi("1g.24gb", 0, None)]);
    sliced.sliced_types = vec![SlicedTypeReport {
        vgpu_type: "NVIDIA DC-1-8C".into(),
        gi_profile_id: sliced.gpu_instances[0].profile_id,
        max_per_gi: 3,
    }];
    {
        let g = &mut sliced.gpu_instances[0];
        g.vgpus = vec![
            vgpu("vdi-01", "NVIDIA DC-1-8C"),
            vgpu("vdi-02", "NVIDIA DC-1-8C"),
        ];
        g.in_use = true;
        g.vm = Some("vdi-01".into());
        g.vgpu_type = Some("NVIDIA DC-1-8C".into());
    }
    let mut whole = gpu(1, RTX, false, false, &[]);
    whole.timesliced = Some(TimeslicedReport {
        vgpus: vec![vgpu("cad-01", "NVIDIA DC-24C")],
        types: vec![TimeslicedTypeReport {
            vgpu_type: "NVIDIA DC-24C".into(),
            max: 4,
            more: 3,
        }],
    });
    let builder = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(1)
        .standalone_hosts(0)
        .vms(0)
        // No GPU rule: vcsim's GPU injection knows no RTX PRO 6000; the report reads the
        // agent's document.
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(5, 3600, vec![sliced, whole]));
    let env = Env::start(builder, "vmig-report-sliced");

    let r = env.vmig_json(&["report"], 0);
    let h = find_host(&r, "DC0_C0_H0");
    let gi0 = &h["gpus"][0]["instances"][0];
    assert_eq!(gi0["vgpus"].as_array().map(Vec::len), Some(2), "{gi0}");
    assert_eq!(gi0["more_vgpus"], 1, "{gi0}");
    assert_eq!(h["gpus"][1]["timesliced"]["types"][0]["more"], 3);
    assert!(h["gpus"][1]["instances"].as_array().unwrap().is_empty());

    let out = env.vmig(&["report"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.contains("time-sliced: 2\u{d7} NVIDIA DC-1-8C (vdi-01, vdi-02); 1 more fits"),
        "{}",
        text(&out)
    );
    assert!(
        table.contains(
            "time-sliced vGPUs: 1\u{d7} NVIDIA DC-24C (cad-01); more fit: 3\u{d7} NVIDIA DC-24C"
        ),
        "{}",
        text(&out)
    );

    let out = env.vmig(&["report", "--format", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(csv.contains("vdi-01;vdi-02"), "{}", text(&out));

    let html = env.path("sliced.html");
    let out = env.vmig(&["report", "--format", "html", "-o", html.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = std::fs::read_to_string(&html).expect("page written");
    assert!(page.contains("2× NVIDIA DC-1-8C (vdi-01, vdi-02); 1 more fits"));
    assert!(page.contains("more fit: 3× NVIDIA DC-24C"));
}
