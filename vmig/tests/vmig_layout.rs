//! `vmig layout set | show | clear` against vcsim: the desired layout lands in the cluster's
//! or host's `vmig.layout` attribute (host over cluster), versions count up, an impossible or
//! unknown layout is refused with nothing written, hostile values read back are reported and
//! never trusted, and `show` joins desired with the per-GPU state agents publish.

mod vmig_support;

use mig::report::{GpuLayoutState, LayoutSource, LayoutStateKind};
use vmig_support::{Env, doc, gpu};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim};

const A100: &str = "a100-pcie-40gb";

/// The `show --json` row of `host`.
fn host<'a>(shown: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    shown["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["host"] == name)
        .unwrap_or_else(|| panic!("no {name} in {shown:#}"))
}

fn scene() -> Env {
    // H0 reports an A100 whose agent already applied cluster layout all-balanced v2; H1 has
    // no report; H2 carries a hostile desired-layout value.
    let mut g = gpu(0, A100, true, false, &[]);
    g.layout_state = Some(GpuLayoutState {
        state: LayoutStateKind::Applied,
        layout: "all-balanced".into(),
        version: Some(2),
        source: LayoutSource::VcenterCluster,
        reason: None,
        action: None,
        blocked_by: vec![],
    });
    let builder = Vcsim::builder()
        .hosts_per_cluster(3)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters("*").gpu(A100, 1)))
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(1, 3600, vec![g]))
        .custom_value(
            "DC0_C0_H2",
            "vmig.layout",
            "{\"schema\":\"vmig.layout/v1\",\"name\":\"\u{1b}[31mx\"",
        );
    Env::start(builder, "vmig-layout")
}

#[test]
fn set_show_clear_with_host_over_cluster_and_refusals() {
    let env = scene();
    // A hostile value is reported as unreadable, never used.
    let shown = env.vmig_json(&["layout", "show"], 0);
    let h2 = host(&shown, "DC0_C0_H2");
    assert!(h2["desired"].is_null(), "{h2:#}");
    assert!(
        h2["desired_error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{h2:#}"
    );
    let table = env.vmig(&["layout", "show"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(!text.contains('\u{1b}'), "{text}");

    // Cluster v1, then v2: the counter goes up per object.
    let a = env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            "DC0_C0",
            "--layout",
            "all-balanced",
        ],
        0,
    );
    assert_eq!(a["layout"]["version"], 1, "{a:#}");
    assert_eq!(a["layout"]["set_by"], env.vc.username());
    assert!(
        a["notes"]
            .to_string()
            .contains("DC0_C0_H1 has no agent report"),
        "{a:#}"
    );
    let a = env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            "DC0_C0",
            "--layout",
            "all-balanced",
        ],
        0,
    );
    assert_eq!(a["layout"]["version"], 2, "{a:#}");
    assert_eq!(a["previous"], "v1");

    let shown = env.vmig_json(&["layout", "show", "--cluster", "DC0_C0"], 0);
    let h0 = host(&shown, "DC0_C0_H0");
    assert_eq!(h0["desired"]["name"], "all-balanced");
    assert_eq!(h0["desired"]["version"], 2);
    assert_eq!(h0["desired"]["from"], "cluster");
    assert_eq!(h0["gpus"][0]["state"], "applied", "{h0:#}");
    assert_eq!(host(&shown, "DC0_C0_H1")["agent"], "no report");
    // H2's own (hostile) value still overrides the cluster's: it is reported, not skipped.
    assert!(host(&shown, "DC0_C0_H2")["desired_error"].is_string());

    // The host's own value wins; the agent has not caught up with it yet.
    env.vmig_json(
        &[
            "layout",
            "set",
            "--host",
            "DC0_C0_H0",
            "--layout",
            "seed-mixed",
        ],
        0,
    );
    let shown = env.vmig_json(&["layout", "show", "--host", "DC0_C0_H0"], 0);
    let h0 = host(&shown, "DC0_C0_H0");
    assert_eq!(h0["desired"]["name"], "seed-mixed");
    assert_eq!(h0["desired"]["from"], "host");
    assert_eq!(h0["gpus"][0]["state"], "waiting-for-agent", "{h0:#}");
    assert_eq!(shown["hosts"].as_array().unwrap().len(), 1);

    refusals_write_nothing(&env);

    // A layout from a file: its whole text travels; the hostile host value is overwritten and
    // counts up from nothing it could claim.
    let mine = env.path("mine.yaml");
    std::fs::write(
        &mine,
        "version: v1\nmig-configs:\n  halves:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb\": 2\n",
    )
    .unwrap();
    let a = env.vmig_json(
        &[
            "layout",
            "set",
            "--host",
            "DC0_C0_H2",
            "--layout",
            "halves",
            "--file",
            mine.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(a["layout"]["version"], 1, "{a:#}");
    assert!(a["layout"]["file"].as_str().unwrap().contains("3g.20gb"));

    // Clear: H0 follows its cluster again; clearing twice says there was nothing.
    let a = env.vmig_json(&["layout", "clear", "--host", "DC0_C0_H0"], 0);
    assert_eq!(a["previous"], "seed-mixed v1");
    let shown = env.vmig_json(&["layout", "show"], 0);
    assert_eq!(host(&shown, "DC0_C0_H0")["desired"]["from"], "cluster");
    assert_eq!(host(&shown, "DC0_C0_H0")["gpus"][0]["state"], "applied");
    let a = env.vmig_json(&["layout", "clear", "--host", "DC0_C0_H0"], 0);
    assert!(a["previous"].is_null(), "{a:#}");
    two_admins_at_once(&env);
    env.vmig_json(&["layout", "clear", "--cluster", "DC0_C0"], 0);
    let shown = env.vmig_json(&["layout", "show"], 0);
    assert!(host(&shown, "DC0_C0_H1")["desired"].is_null());
    assert_eq!(host(&shown, "DC0_C0_H0")["gpus"][0]["state"], "applied");
}

/// Refusals, each with nothing written: an impossible layout on the reported A100, an
/// unknown name, an unknown cluster, a broken file, a missing target.
fn refusals_write_nothing(env: &Env) {
    let seven = env.path("seven.yaml");
    std::fs::write(
        &seven,
        "version: v1\nmig-configs:\n  big:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"7g.80gb\": 1\n",
    )
    .unwrap();
    let f = seven.to_str().unwrap();
    for (args, needle) in [
        (
            vec![
                "layout",
                "set",
                "--cluster",
                "DC0_C0",
                "--layout",
                "big",
                "--file",
                f,
            ],
            "DC0_C0_H0 GPU 0",
        ),
        (
            vec!["layout", "set", "--cluster", "DC0_C0", "--layout", "nope"],
            "no config named `nope`",
        ),
        (
            vec!["layout", "set", "--cluster", "NoSuch", "--layout", "all-1g"],
            "no cluster named `NoSuch`",
        ),
    ] {
        let e = env.vmig_json(&args, 3);
        assert!(
            e["error"].as_str().unwrap().contains(needle),
            "{args:?}: {e:#}"
        );
        assert!(
            e["error"].as_str().unwrap().contains("nothing was written"),
            "{e:#}"
        );
    }
    let broken = env.path("broken.yaml");
    std::fs::write(&broken, "version: v1\nmig-configs:\n  x: [\n").unwrap();
    let e = env.vmig_json(
        &[
            "layout",
            "set",
            "--host",
            "DC0_C0_H1",
            "--layout",
            "x",
            "--file",
            broken.to_str().unwrap(),
        ],
        3,
    );
    assert!(
        e["error"].as_str().unwrap().contains("broken.yaml"),
        "{e:#}"
    );
    // Exactly one of --cluster / --host.
    assert_eq!(
        env.vmig(&["layout", "set", "--layout", "all-1g"])
            .status
            .code(),
        Some(2)
    );

    let shown = env.vmig_json(&["layout", "show"], 0);
    assert_eq!(host(&shown, "DC0_C0_H1")["desired"]["version"], 2);
    assert_eq!(host(&shown, "DC0_C0_H1")["desired"]["name"], "all-balanced");
    assert!(host(&shown, "DC0_C0_H1")["desired_error"].is_null());
}

/// Two admins set the cluster's layout at the same moment: both succeed, the last write wins,
/// and what is left is one whole, readable document with a version above the one before.
fn two_admins_at_once(env: &Env) {
    let before = env.vmig_json(&["layout", "show", "--host", "DC0_C0_H1"], 0);
    let v0 = before["hosts"][0]["desired"]["version"].as_u64().unwrap();
    let spawn = |layout: &str| {
        env.vmig_cmd(&[
            "--json",
            "layout",
            "set",
            "--cluster",
            "DC0_C0",
            "--layout",
            layout,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn("all-1g"), spawn("seed-mixed"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", vmig_support::text(&out));
    }
    let after = env.vmig_json(&["layout", "show", "--host", "DC0_C0_H1"], 0);
    let d = &after["hosts"][0]["desired"];
    assert!(after["hosts"][0]["desired_error"].is_null(), "{after:#}");
    assert!(d["name"] == "all-1g" || d["name"] == "seed-mixed", "{d:#}");
    assert!(d["version"].as_u64().unwrap() > v0, "{d:#}");
}
