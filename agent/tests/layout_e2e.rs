//! End to end: the real `vmig-agent` binary drives the simulated NVML library (nvml-sim's
//! `libnvml_sim.so`) through `plan`, `apply`, `assert` and `export`, on an A100 40GB and an
//! H100 80GB. Each test has its own temp dir and state file; nothing runs in the background.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use vmig_testkit::{TempDir, nvml_sim_lib, temp_dir, workspace_bin};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/layouts");

struct Bins {
    agent: PathBuf,
    sim: PathBuf,
    lib: PathBuf,
}

fn bins() -> &'static Bins {
    static B: OnceLock<Bins> = OnceLock::new();
    B.get_or_init(|| Bins {
        agent: workspace_bin("vmig-agent"),
        sim: workspace_bin("nvml-sim"),
        lib: nvml_sim_lib(),
    })
}

/// One simulated host.
struct Host {
    dir: TempDir,
    state: PathBuf,
}

impl Host {
    fn new(name: &str, gpus: &[&str], mig: bool) -> Host {
        let dir = temp_dir(&format!("layout-{name}"));
        let state = dir.path().join("sim.json");
        let h = Host { dir, state };
        let mut args = vec!["init"];
        for g in gpus {
            args.extend(["--gpu", g]);
        }
        if mig {
            args.push("--mig");
        }
        h.sim_ok(&args);
        h
    }

    fn sim(&self, args: &[&str]) -> Output {
        Command::new(&bins().sim)
            .arg("--state")
            .arg(&self.state)
            .args(args)
            .env_remove("NVML_SIM_STATE")
            .output()
            .expect("run nvml-sim")
    }

    fn sim_ok(&self, args: &[&str]) -> String {
        let o = self.sim(args);
        assert!(o.status.success(), "nvml-sim {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn agent(&self, args: &[&str]) -> Output {
        Command::new(&bins().agent)
            .arg("--nvml-lib")
            .arg(&bins().lib)
            .args(args)
            .env("NVML_SIM_STATE", &self.state)
            .env_remove("VMIG_NVML_LIB")
            .output()
            .expect("run vmig-agent")
    }

    /// Run the agent, expect `code`, return stdout+stderr.
    fn expect(&self, code: i32, args: &[&str]) -> String {
        let o = self.agent(args);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(code), "vmig-agent {args:?}:\n{t}");
        t
    }

    fn file(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }

    /// The GPUs' layouts as `export` prints them, without comments.
    fn layout(&self) -> String {
        strip_comments(&self.expect(0, &["export"]))
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fixture(name: &str) -> String {
    Path::new(FIXTURES).join(name).display().to_string()
}

fn config_names(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let f = vmig_agent::layout::LayoutFile::parse(file, &text).unwrap();
    f.configs.iter().map(|c| c.name.clone()).collect()
}

/// Every example config applies, asserts, and a second apply does nothing.
fn apply_all_examples(model: &str, file: &str) {
    let h = Host::new(model, &[model], true);
    for name in config_names(file) {
        let out = h.expect(0, &["apply", "-f", file, "-c", &name]);
        if name == "mig-off" {
            // MIG disable is pending until a reset; put it back for the next config.
            assert!(out.contains("mig disable pending"), "{out}");
            h.sim_ok(&["reset"]);
            h.expect(0, &["assert", "-f", file, "-c", &name]);
            h.expect(0, &["mig", "mode", "-i", "0", "--enable"]);
            h.sim_ok(&["reset"]);
            continue;
        }
        h.expect(0, &["assert", "-f", file, "-c", &name]);
        let again = h.expect(0, &["apply", "-f", file, "-c", &name]);
        assert!(again.contains("nothing to do"), "{name}: {again}");
        let plan = h.expect(0, &["plan", "-f", file, "-c", &name]);
        assert!(plan.contains("already as configured"), "{name}: {plan}");
    }
}

#[test]
fn a100_examples_apply_assert_and_are_idempotent() {
    apply_all_examples("a100-pcie-40gb", &fixture("a100-40gb.yaml"));
}

#[test]
fn h100_examples_apply_assert_and_are_idempotent() {
    apply_all_examples("h100-sxm5-80gb", &fixture("h100-80gb.yaml"));
}

#[test]
fn per_index_entries_touch_only_their_gpu() {
    let h = Host::new("per-index", &["a100-pcie-40gb", "a100-pcie-40gb"], true);
    let file = fixture("a100-40gb.yaml");
    h.expect(0, &["apply", "-f", &file, "-c", "per-index", "-i", "1"]);
    let layout = h.layout();
    assert!(layout.contains("\"1g.10gb@0\": 1"), "{layout}");
    assert!(
        !layout.contains("4g.20gb"),
        "GPU 0 must be untouched: {layout}"
    );
    h.expect(3, &["assert", "-f", &file, "-c", "per-index"]);
    h.expect(0, &["apply", "-f", &file, "-c", "per-index"]);
    h.expect(0, &["assert", "-f", &file, "-c", "per-index"]);
}

#[test]
fn built_in_layouts_are_the_default_file() {
    let h = Host::new("builtin", &["a100-pcie-40gb", "h100-sxm5-80gb"], true);
    let out = h.expect(0, &["apply", "-c", "seed-mixed"]);
    assert!(out.contains("the GPU now matches the layout"), "{out}");
    let layout = h.layout();
    for k in [
        "\"3g.20gb@4\": 1",
        "\"2g.10gb@0\": 1",
        "\"1g.5gb@2\": 1",
        "\"1g.5gb@3\": 1",
        "\"3g.40gb@4\": 1",
    ] {
        assert!(layout.contains(k), "{k} in {layout}");
    }
    h.expect(0, &["assert", "-c", "seed-mixed"]);
    h.expect(0, &["apply", "-c", "all-balanced"]);
    h.expect(0, &["assert", "-c", "all-balanced"]);
    // seed-mixed pins placements all-balanced left free: the planner may have to move GIs.
    h.expect(0, &["apply", "-c", "seed-mixed"]);
    h.expect(0, &["assert", "-c", "seed-mixed"]);
    let missing = h.expect(2, &["plan", "-c", "no-such-layout"]);
    assert!(
        missing.contains("seed-mixed") && missing.contains("all-1g"),
        "{missing}"
    );
}

/// The GPU holds 1g.5gb GIs at slices 0, 2 and 4, the one at 2 busy. The wanted layout is a
/// 3g.20gb and three 1g.5gb: mig-parted clears the whole GPU first (refused here: a GI is in
/// use) and would then let the driver place instances. vmig keeps the busy GI, moves only the
/// 1g.5gb that sits where the 3g.20gb must go (4:4), and places around the busy one.
#[test]
fn fragmented_gpu_is_replanned_around_an_in_use_instance() {
    let h = Host::new("fragmented", &["a100-pcie-40gb"], true);
    h.expect(
        0,
        &[
            "mig",
            "cgi",
            "-i",
            "0",
            "1g.5gb,1g.5gb,1g.5gb",
            "--placement",
            "0,2,4",
            "-C",
        ],
    );
    let gis = h.expect(0, &["--json", "mig", "lgi", "-i", "0"]);
    let rows: serde_json::Value = serde_json::from_str(&gis).unwrap();
    let busy = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["placement"]["start"] == 2)
        .expect("GI at slice 2")["gi_id"]
        .to_string();
    h.sim_ok(&[
        "occupy", "-i", "0", "--gi", &busy, "--ci", "0", "--pid", "4242",
    ]);
    // 3g.20gb fits only at 0:4 or 4:4; slice 2 is busy and 0 and 4 hold idle 1g GIs.
    let f = h.file(
        "frag.yaml",
        "version: v1\nmig-configs:\n  want:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb\": 1\n        \"1g.5gb\": 3\n",
    );
    let plan = h.expect(0, &["plan", "-f", &f]);
    assert!(plan.contains("create GI 3g.20gb at 4:4"), "{plan}");
    assert!(!plan.contains(&format!("destroy GI {busy} ")), "{plan}");
    h.expect(0, &["apply", "-f", &f]);
    h.expect(0, &["assert", "-f", &f]);
    let layout = h.layout();
    assert!(layout.contains("\"1g.5gb@2\": 1"), "busy GI kept: {layout}");
}

#[test]
fn in_use_instances_block_apply_unless_allow_partial() {
    let h = Host::new("in-use", &["a100-pcie-40gb"], true);
    h.expect(0, &["apply", "-c", "all-1g"]);
    let rows: serde_json::Value =
        serde_json::from_str(&h.expect(0, &["--json", "mig", "lgi", "-i", "0"])).unwrap();
    let at = |start: u64| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["placement"]["start"] == start)
            .unwrap()["gi_id"]
            .to_string()
    };
    let busy = at(5);
    h.sim_ok(&[
        "occupy", "-i", "0", "--gi", &busy, "--ci", "0", "--pid", "777", "--name", "train",
    ]);
    let before = h.layout();

    let plan = h.expect(3, &["plan", "-c", "seed-mixed"]);
    assert!(
        plan.contains(&format!(
            "blocked: GI {busy} (1g.5gb at 5:1) is in use by process 777"
        )),
        "{plan}"
    );
    assert!(plan.contains("with --allow-partial"), "{plan}");
    let json: serde_json::Value = serde_json::from_str(
        &h.expect(3, &["--json", "plan", "-c", "seed-mixed"])
            .lines()
            .take_while(|l| !l.starts_with("vmig-agent: error"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    assert_eq!(json["gpus"][0]["status"], "blocked");

    let refused = h.expect(3, &["apply", "-c", "seed-mixed"]);
    assert!(refused.contains("nothing was changed"), "{refused}");
    assert_eq!(h.layout(), before, "a refused apply changes nothing");

    let partial = h.expect(0, &["apply", "-c", "seed-mixed", "--allow-partial"]);
    assert!(partial.contains("partially applied"), "{partial}");
    assert!(
        partial.contains(&format!("kept in use: GI {busy}")),
        "{partial}"
    );
    let after = h.layout();
    assert!(
        after.contains("\"1g.5gb@5\": 1"),
        "busy GI survives: {after}"
    );
    assert!(after.contains("\"2g.10gb@0\": 1"), "{after}");
    let diff = h.expect(3, &["assert", "-c", "seed-mixed"]);
    assert!(
        diff.contains("does NOT match") && diff.contains("unexpected GI"),
        "{diff}"
    );

    h.sim_ok(&["release", "--pid", "777"]);
    h.expect(0, &["apply", "-c", "seed-mixed"]);
    h.expect(0, &["assert", "-c", "seed-mixed"]);
}

#[test]
fn pending_mig_mode_flow_then_layout_after_reset() {
    let h = Host::new("pending", &["a100-pcie-40gb"], false);
    let plan = h.expect(0, &["plan", "-c", "seed-mixed"]);
    assert!(
        plan.contains("enable MIG mode") && plan.contains("after the reset"),
        "{plan}"
    );
    let out = h.expect(0, &["apply", "-c", "seed-mixed"]);
    assert!(
        out.contains("mig enable pending") && out.contains("maintenance mode"),
        "{out}"
    );
    let diff = h.expect(3, &["assert", "-c", "seed-mixed"]);
    assert!(
        diff.contains("MIG mode is disabled (pending enabled)"),
        "{diff}"
    );
    let again = h.expect(0, &["apply", "-c", "seed-mixed"]);
    assert!(again.contains("pending reset"), "{again}");
    h.sim_ok(&["reset"]);
    let done = h.expect(0, &["apply", "-c", "seed-mixed"]);
    assert!(done.contains("the GPU now matches the layout"), "{done}");
    h.expect(0, &["assert", "-c", "seed-mixed"]);

    // And back: disable needs every GI gone, then a reset.
    let off = h.expect(0, &["apply", "-c", "all-disabled"]);
    assert!(off.contains("mig disable pending"), "{off}");
    h.sim_ok(&["reset"]);
    h.expect(0, &["assert", "-c", "all-disabled"]);
}

#[test]
fn hopper_with_immediate_mode_change_applies_in_one_go() {
    let h = Host::new("hopper", &["h100-sxm5-80gb"], false);
    h.sim_ok(&[
        "init",
        "--gpu",
        "h100-sxm5-80gb",
        "--force",
        "--mig-activation",
        "immediate",
    ]);
    let out = h.expect(0, &["apply", "-c", "all-balanced"]);
    assert!(out.contains("MIG enabled (took effect at once)"), "{out}");
    h.expect(0, &["assert", "-c", "all-balanced"]);
}

#[test]
fn export_then_apply_reproduces_the_layout_on_a_fresh_gpu() {
    let h = Host::new("export", &["a100-pcie-40gb"], true);
    let ext = fixture("vmig-extensions.yaml");
    h.expect(0, &["apply", "-f", &ext, "-c", "pinned-split"]);
    h.expect(0, &["assert", "-f", &ext, "-c", "pinned-split"]);
    let exported = h.expect(0, &["export"]);
    assert!(
        exported.contains("\"3g.20gb@0\": {count: 1, compute: [\"1c.3g.20gb\", \"2c.3g.20gb\"]}")
            || exported
                .contains("\"3g.20gb@0\": {count: 1, compute: [\"2c.3g.20gb\", \"1c.3g.20gb\"]}"),
        "{exported}"
    );
    let json = h.expect(0, &["--json", "export"]);
    let by_uuid = h.expect(0, &["export", "--by-uuid"]);
    let fu = h.file("by-uuid.yaml", &by_uuid);
    h.expect(0, &["assert", "-f", &fu]);

    let fresh = Host::new("export-fresh", &["a100-pcie-40gb"], true);
    let f = fresh.file("exported.yaml", &exported);
    fresh.expect(0, &["apply", "-f", &f]);
    fresh.expect(0, &["assert", "-f", &f]);
    assert_eq!(fresh.layout(), h.layout());
    let again = fresh.expect(0, &["apply", "-f", &f]);
    assert!(again.contains("nothing to do"), "{again}");

    // The JSON form is valid input too.
    let fj = fresh.file("exported.json", &json);
    fresh.expect(0, &["assert", "-f", &fj]);
}

#[test]
fn invalid_configs_fail_with_line_and_change_nothing() {
    let h = Host::new("invalid", &["a100-pcie-40gb"], true);
    h.expect(0, &["apply", "-c", "all-balanced"]);
    let before = h.layout();
    for (body, line, needle) in [
        (
            "version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"1g.10gb\": 1\n        \"2g.20gb\": 1\n",
            8,
            "unknown GPU instance profile `2g.20gb`",
        ),
        (
            "version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb@3\": 1\n",
            7,
            "legal starts for 3g.20gb: 0, 4",
        ),
        (
            "version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"2g.10gb\": 4\n",
            6,
            "does not fit",
        ),
        (
            "version: v1\nmig-configs:\n  x:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"1g.5gb\": 1\n        \"1g.5gb\": 2\n",
            8,
            "duplicate key `1g.5gb`",
        ),
    ] {
        let f = h.file("bad.yaml", body);
        let out = h.expect(2, &["apply", "-f", &f]);
        assert!(out.contains(&format!("bad.yaml:{line}:")), "{out}");
        assert!(out.contains(needle), "{out}");
        assert_eq!(h.layout(), before);
    }
}

/// 4g.20gb + 1g.10gb + 2 × 1g.5gb fits an A100 40GB, but not in mig-parted's first order
/// (largest first) with the driver choosing placements: the 1g.10gb lands at 4:2 and the
/// second 1g.5gb finds no slot. mig-parted then clears the GPU and tries other orders; vmig
/// places every GI explicitly and gets it right in one pass.
#[test]
fn layout_the_drivers_own_placement_cannot_fit_applies_in_one_pass() {
    let h = Host::new("driver-order", &["a100-pcie-40gb"], true);
    let by_driver = h.agent(&["mig", "cgi", "-i", "0", "4g.20gb,1g.10gb,1g.5gb,1g.5gb"]);
    assert_eq!(by_driver.status.code(), Some(3), "{}", text(&by_driver));
    assert!(
        text(&by_driver).contains("insufficient resources"),
        "{}",
        text(&by_driver)
    );
    let f = h.file(
        "order.yaml",
        "version: v1\nmig-configs:\n  c:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"4g.20gb\": 1\n        \"1g.10gb\": 1\n        \"1g.5gb\": 2\n",
    );
    let out = h.expect(0, &["apply", "-f", &f]);
    assert!(out.contains("the GPU now matches the layout"), "{out}");
    let layout = h.layout();
    assert!(layout.contains("\"1g.10gb@6\": 1"), "{layout}");
    h.expect(0, &["assert", "-f", &f]);
}
